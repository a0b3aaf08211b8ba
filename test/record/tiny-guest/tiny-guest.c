/*
 * A tiny multiboot guest for the `migtrace record` end-to-end test: no kernel, no firmware work of
 * its own. QEMU's -kernel loads it (multiboot v1, 32-bit protected mode, paging off: addresses
 * are guest-physical). It stores a known pattern, then exits QEMU through isa-debug-exit
 * (-device isa-debug-exit,iobase=0xf4,iosize=0x04: QEMU exits with (value << 1) | 1 = 99).
 *
 * Pattern: ROUNDS rounds over PAGES pages from 4 MiB; round r stores the 8-byte value at word
 * (p + r) & 511 of page p. In 32-bit mode gcc stores a uint64_t as two 4-byte stores, both in the
 * same page: 2 * ROUNDS * PAGES stores, all within a few microseconds of guest time. The bench
 * (bench/sections/record.js) builds it with larger -DPAGES / -DROUNDS.
 */
#include <stdint.h>

#define MB_MAGIC 0x1BADB002u
#define MB_FLAGS 0x00000000u
#define BASE 0x400000u
#ifndef PAGES
#define PAGES 256u
#endif
#ifndef ROUNDS
#define ROUNDS 3u
#endif

__attribute__((section(".multiboot"), aligned(4), used))
static const uint32_t mb_header[3] = {MB_MAGIC, MB_FLAGS, (uint32_t)(-(MB_MAGIC + MB_FLAGS))};

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

void tiny_main(void)
{
    volatile uint64_t *mem = (volatile uint64_t *)BASE;
    for (uint32_t r = 0; r < ROUNDS; r++)
        for (uint32_t p = 0; p < PAGES; p++)
            mem[p * 512 + ((p + r) & 511)] = 0x1000u * r + p + 1;
    outb(0xf4, 0x31);
    for (;;)
        __asm__ volatile("hlt");
}

__attribute__((naked, used)) void _start(void)
{
    __asm__ volatile("mov $0x200000, %esp\n call tiny_main\n1: hlt\n jmp 1b");
}
