/*
 * migtrace-record: a QEMU TCG plugin that sees every guest store to RAM and streams it to
 * `migtrace record` as compact binary records.
 *
 * For each store it learns the address QEMU's plugin API gives for the access
 * (qemu_plugin_get_hwaddr + qemu_plugin_hwaddr_phys_addr), skips stores to I/O
 * (qemu_plugin_hwaddr_is_io), and keeps the first store to each page per vCPU per epoch
 * (epoch 0: every store). Each kept store is stamped in guest virtual time (instructions executed
 * by the vCPU / ips, plus the host time the vCPU spent idle) or in host time.
 *
 * Address meaning: QEMU 8.2 and later return the guest-physical address. QEMU 4.2 to 8.1 return
 * `block->offset + offset + block->mr->addr` for RAM (plugins/api.c of those versions), i.e. the
 * RAM block's ram_addr plus the offset in the block plus the block's MemoryRegion address in its
 * container. The plugin passes the value on as it is; migtrace maps it to a guest-physical
 * address with the layout it reads over QMP (src/record/address-map.ts).
 *
 * Arguments (-plugin FILE,key=value,...):
 *   fd=N         write records to file descriptor N (inherited from migtrace), or
 *   out=PATH     write records to PATH (a file or a FIFO)
 *   epoch_ns=N   coalescing epoch in ns (0: every store)
 *   clock=guest|host
 *   ips=N        instructions per second of the guest virtual clock (clock=guest)
 *   arm=PATH     record nothing until the file PATH exists (looked for every 10 ms of host time
 *                while stores come): the lab arms it once its guest is booted, so boot and the
 *                workload's fill run with a cheap early return instead of an address lookup per
 *                store, and the recording holds only the part worth replaying
 *
 * Output: a stream of 24-byte little-endian records (struct rec below, FORMAT_VERSION). Writes
 * block when the reader is slow: the guest is paused, no store is dropped, and memory stays
 * bounded (one 48 KiB buffer and one page bitmap per vCPU).
 *
 * QEMU's plugin API is declared here rather than included: Debian's QEMU accepts -plugin but
 * ships no qemu-plugin.h. The declarations below are written from QEMU's documented plugin API
 * (include/qemu/qemu-plugin.h, docs/devel/tcg-plugins.rst), API version 1 as in QEMU 6.0-8.x.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- QEMU plugin API (version 1): the subset this plugin uses ---------------------------- */

#define MT_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_hwaddr;

typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                                          uint64_t vaddr, void *userdata);

void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
void qemu_plugin_register_vcpu_idle_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
void qemu_plugin_register_vcpu_resume_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
struct qemu_plugin_hwaddr *qemu_plugin_get_hwaddr(qemu_plugin_meminfo_t info, uint64_t vaddr);
bool qemu_plugin_hwaddr_is_io(const struct qemu_plugin_hwaddr *haddr);
uint64_t qemu_plugin_hwaddr_phys_addr(const struct qemu_plugin_hwaddr *haddr);
void qemu_plugin_outs(const char *string);

MT_EXPORT int qemu_plugin_version = 1;

/* ---- records ------------------------------------------------------------------------------ */

#define FORMAT_VERSION 1

enum rec_type {
    REC_HELLO = 1, /* t = host start (CLOCK_REALTIME ns), addr = max vCPUs, aux = FORMAT_VERSION */
    REC_WRITE = 2, /* t = time ns, addr = address (see top), aux = bytes, vcpu */
    REC_CLOCK = 3, /* t = vCPU time ns, addr = host CLOCK_REALTIME ns, aux = CLOCK_* reason, vcpu */
    REC_STATS = 4, /* at exit, per vCPU: t = stores seen, addr = I/O stores skipped, vcpu */
    REC_STATS2 = 5, /* at exit, per vCPU: t = records written, addr = instructions, vcpu */
    REC_END = 6,   /* last record: t = host end ns, addr = total records before it */
};

enum clock_reason { CLOCK_TICK = 0, CLOCK_IDLE = 1, CLOCK_RESUME = 2, CLOCK_INIT = 3 };

struct rec {
    uint8_t type;
    uint8_t flags;
    uint16_t vcpu;
    uint32_t aux;
    uint64_t t;
    uint64_t addr;
};
_Static_assert(sizeof(struct rec) == 24, "record layout");

/* ---- per-vCPU state ----------------------------------------------------------------------- */

#define BUF_RECS 2048
#define LEAF_PAGES_LOG2 15 /* one leaf bitmap covers 2^15 pages = 128 MiB, 4 KiB of bits */
#define LEAF_WORDS ((1u << LEAF_PAGES_LOG2) / 64)
#define TOUCHED_MAX (1u << 20) /* past this, clear whole leaves instead of page by page */
#define CLOCK_EVERY_NS 10000000ull /* a CLOCK record at least every 10 ms of host time */
#define FLUSH_EVERY_NS 50000000ull /* hand buffered records over at least every 50 ms */

struct vcpu {
    uint64_t insns; /* instructions executed (per-TB count) */
    double idle_ns; /* host time spent idle, added to the guest clock */
    uint64_t idle_since; /* host monotonic ns when it went idle, 0 when running */
    uint64_t epoch_end; /* time at which the current epoch ends */
    uint64_t cached_t; /* host clock: last read, reused between reads */
    uint32_t clock_skip;
    uint64_t last_clock_host; /* monotonic ns of the last CLOCK record */
    uint64_t last_flush_host;
    uint64_t stores, io_stores, records;
    /* first-write bitmap: leaves[page >> LEAF_PAGES_LOG2], each LEAF_WORDS words */
    uint64_t **leaves;
    size_t nleaves;
    uint64_t *touched; /* pages whose bit was set this epoch */
    size_t ntouched, touched_cap;
    bool touched_overflow;
    struct rec buf[BUF_RECS];
    size_t nbuf;
    bool init;
};

static struct vcpu *vcpus;
static unsigned max_vcpus;
static int out_fd = -1;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static bool out_failed;
static uint64_t total_records; /* under out_lock */
static uint64_t epoch_ns = 1000000;
static double ns_per_insn = 0.5; /* 2e9 instructions/s */
static bool host_clock;
static bool inline_count; /* one vCPU: count instructions inline, no callback per TB */
static uint64_t start_mono, start_real;
static const char *arm_path; /* arm=PATH: not armed until it exists */
static bool armed = true;
static uint64_t arm_next_check; /* monotonic ns of the next look for arm_path */
#define ARM_CHECK_NS 10000000ull

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void write_all(const void *p, size_t n)
{
    const char *c = p;
    while (n > 0 && !out_failed) {
        ssize_t w = write(out_fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* The reader is gone: migtrace reports the recording as failed; stop writing. */
            out_failed = true;
            char msg[160];
            snprintf(msg, sizeof msg, "migtrace-record: writing records failed: %s\n", strerror(errno));
            qemu_plugin_outs(msg);
            return;
        }
        c += w;
        n -= (size_t)w;
    }
}

static void flush_vcpu(struct vcpu *v)
{
    if (v->nbuf == 0)
        return;
    pthread_mutex_lock(&out_lock);
    write_all(v->buf, v->nbuf * sizeof(struct rec));
    total_records += v->nbuf;
    pthread_mutex_unlock(&out_lock);
    v->nbuf = 0;
    v->last_flush_host = now_ns(CLOCK_MONOTONIC);
}

static inline void put(struct vcpu *v, uint8_t type, unsigned vcpu, uint32_t aux, uint64_t t, uint64_t addr)
{
    struct rec *r = &v->buf[v->nbuf++];
    r->type = type;
    r->flags = 0;
    r->vcpu = (uint16_t)vcpu;
    r->aux = aux;
    r->t = t;
    r->addr = addr;
    if (v->nbuf == BUF_RECS)
        flush_vcpu(v);
}

/* The vCPU's clock: guest virtual time (instructions / ips + idle host time) or host time. */
static inline uint64_t vcpu_time(struct vcpu *v, uint64_t mono)
{
    if (host_clock)
        return mono - start_mono;
    return (uint64_t)((double)v->insns * ns_per_insn + v->idle_ns);
}

static void clock_record(struct vcpu *v, unsigned idx, uint32_t reason, uint64_t mono)
{
    put(v, REC_CLOCK, idx, reason, vcpu_time(v, mono), now_ns(CLOCK_REALTIME));
    v->last_clock_host = mono;
}

/* ---- first write per page per epoch ------------------------------------------------------- */

static void clear_touched(struct vcpu *v)
{
    if (v->touched_overflow) {
        for (size_t i = 0; i < v->nleaves; i++)
            if (v->leaves[i])
                memset(v->leaves[i], 0, LEAF_WORDS * sizeof(uint64_t));
        v->touched_overflow = false;
    } else {
        for (size_t i = 0; i < v->ntouched; i++) {
            uint64_t pg = v->touched[i];
            v->leaves[pg >> LEAF_PAGES_LOG2][(pg & ((1u << LEAF_PAGES_LOG2) - 1)) >> 6] = 0;
        }
    }
    v->ntouched = 0;
}

/* Test and set the page's bit; true when this is the first store to it in the epoch. */
static bool first_in_epoch(struct vcpu *v, uint64_t pg)
{
    size_t li = (size_t)(pg >> LEAF_PAGES_LOG2);
    if (li >= v->nleaves) {
        size_t n = v->nleaves ? v->nleaves : 64;
        while (n <= li)
            n *= 2;
        uint64_t **l = realloc(v->leaves, n * sizeof *l);
        if (!l) {
            qemu_plugin_outs("migtrace-record: out of memory\n");
            abort();
        }
        memset(l + v->nleaves, 0, (n - v->nleaves) * sizeof *l);
        v->leaves = l;
        v->nleaves = n;
    }
    uint64_t *leaf = v->leaves[li];
    if (!leaf) {
        leaf = v->leaves[li] = calloc(LEAF_WORDS, sizeof(uint64_t));
        if (!leaf) {
            qemu_plugin_outs("migtrace-record: out of memory\n");
            abort();
        }
    }
    uint32_t bit = (uint32_t)(pg & ((1u << LEAF_PAGES_LOG2) - 1));
    uint64_t m = 1ull << (bit & 63);
    uint64_t *w = &leaf[bit >> 6];
    if (*w & m)
        return false;
    /* Remember the word to clear; a word already non-zero is in the list already. */
    if (*w == 0 && !v->touched_overflow) {
        if (v->ntouched == v->touched_cap) {
            if (v->touched_cap >= TOUCHED_MAX) {
                v->touched_overflow = true;
            } else {
                size_t n = v->touched_cap ? v->touched_cap * 2 : 4096;
                uint64_t *t = realloc(v->touched, n * sizeof *t);
                if (!t) {
                    v->touched_overflow = true;
                } else {
                    v->touched = t;
                    v->touched_cap = n;
                }
            }
        }
        if (!v->touched_overflow)
            v->touched[v->ntouched++] = pg;
    }
    *w |= m;
    return true;
}

static void new_epoch(struct vcpu *v, unsigned idx, uint64_t t, uint64_t mono)
{
    clear_touched(v);
    v->epoch_end = (t / epoch_ns + 1) * epoch_ns;
    if (mono - v->last_clock_host >= CLOCK_EVERY_NS)
        clock_record(v, idx, CLOCK_TICK, mono);
    if (mono - v->last_flush_host >= FLUSH_EVERY_NS)
        flush_vcpu(v);
}

/* ---- callbacks ---------------------------------------------------------------------------- */

static void record_store(struct vcpu *v, unsigned idx, uint64_t t, uint64_t addr, uint32_t len)
{
    if (epoch_ns != 0 && !first_in_epoch(v, addr >> 12))
        return;
    put(v, REC_WRITE, idx, len, t, addr);
    v->records++;
}

/* arm=PATH: has the file appeared? Looked for at most every ARM_CHECK_NS (a vDSO clock read every
 * 256 stores, an access() every 10 ms), so an unarmed store costs a counter and a branch. */
static bool became_armed(struct vcpu *v)
{
    if ((++v->clock_skip & 255) != 0)
        return false;
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    if (mono < __atomic_load_n(&arm_next_check, __ATOMIC_RELAXED))
        return false;
    __atomic_store_n(&arm_next_check, mono + ARM_CHECK_NS, __ATOMIC_RELAXED);
    if (access(arm_path, F_OK) != 0)
        return false;
    __atomic_store_n(&armed, true, __ATOMIC_RELAXED);
    return true;
}

static void on_store(unsigned int idx, qemu_plugin_meminfo_t info, uint64_t vaddr, void *ud)
{
    (void)ud;
    if (idx >= max_vcpus)
        return;
    struct vcpu *v = &vcpus[idx];
    if (!__atomic_load_n(&armed, __ATOMIC_RELAXED) && !became_armed(v))
        return;
    v->stores++;
    struct qemu_plugin_hwaddr *h = qemu_plugin_get_hwaddr(info, vaddr);
    if (!h || qemu_plugin_hwaddr_is_io(h)) {
        v->io_stores++;
        return;
    }
    uint64_t addr = qemu_plugin_hwaddr_phys_addr(h);
    uint32_t len = 1u << qemu_plugin_mem_size_shift(info);

    uint64_t t;
    uint64_t mono = 0;
    if (host_clock) {
        /* Reading the clock costs ~20 ns: read it every 64 stores and at every kept store. */
        if ((++v->clock_skip & 63) == 0 || v->cached_t == 0)
            v->cached_t = now_ns(CLOCK_MONOTONIC) - start_mono;
        t = v->cached_t;
    } else {
        t = vcpu_time(v, 0);
    }
    if (epoch_ns != 0 && t >= v->epoch_end) {
        mono = now_ns(CLOCK_MONOTONIC);
        if (host_clock)
            t = v->cached_t = mono - start_mono;
        new_epoch(v, idx, t, mono);
    } else if (epoch_ns == 0 && (v->records & 1023) == 1023) {
        mono = now_ns(CLOCK_MONOTONIC);
        if (mono - v->last_clock_host >= CLOCK_EVERY_NS)
            clock_record(v, idx, CLOCK_TICK, mono);
    }

    uint32_t in_page = (uint32_t)(addr & 4095);
    if (in_page + len <= 4096) {
        record_store(v, idx, t, addr, len);
        return;
    }
    /* A store across a page boundary dirties two pages; look the second one up on its own. */
    uint32_t first = 4096 - in_page;
    record_store(v, idx, t, addr, first);
    struct qemu_plugin_hwaddr *h2 = qemu_plugin_get_hwaddr(info, vaddr + first);
    if (h2 && !qemu_plugin_hwaddr_is_io(h2))
        record_store(v, idx, t, qemu_plugin_hwaddr_phys_addr(h2), len - first);
}

static void on_tb_exec(unsigned int idx, void *ud)
{
    if (idx < max_vcpus)
        vcpus[idx].insns += (uintptr_t)ud;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (!host_clock) {
        if (inline_count)
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &vcpus[0].insns, n);
        else
            qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    }
    for (size_t i = 0; i < n; i++)
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_store, QEMU_PLUGIN_CB_NO_REGS,
                                         QEMU_PLUGIN_MEM_W, NULL);
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int idx)
{
    (void)id;
    if (idx >= max_vcpus)
        return;
    struct vcpu *v = &vcpus[idx];
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    /* A vCPU created late was not running before: its guest clock starts at the host time. */
    v->idle_ns = (double)(mono - start_mono);
    v->init = true;
    v->last_flush_host = mono;
    clock_record(v, idx, CLOCK_INIT, mono);
}

static void on_vcpu_idle(qemu_plugin_id_t id, unsigned int idx)
{
    (void)id;
    if (idx >= max_vcpus)
        return;
    struct vcpu *v = &vcpus[idx];
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    v->idle_since = mono;
    clock_record(v, idx, CLOCK_IDLE, mono);
    /* An idle vCPU hands over what it holds, so the reader's merge does not wait for it. */
    flush_vcpu(v);
}

static void on_vcpu_resume(qemu_plugin_id_t id, unsigned int idx)
{
    (void)id;
    if (idx >= max_vcpus)
        return;
    struct vcpu *v = &vcpus[idx];
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    if (v->idle_since != 0) {
        v->idle_ns += (double)(mono - v->idle_since);
        v->idle_since = 0;
    }
    clock_record(v, idx, CLOCK_RESUME, mono);
}

static void on_qemu_exit(qemu_plugin_id_t id, void *ud)
{
    (void)id;
    (void)ud;
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    for (unsigned i = 0; i < max_vcpus; i++) {
        struct vcpu *v = &vcpus[i];
        if (!v->init)
            continue;
        clock_record(v, i, CLOCK_TICK, mono);
        put(v, REC_STATS, i, 0, v->stores, v->io_stores);
        put(v, REC_STATS2, i, 0, v->records, v->insns);
        flush_vcpu(v);
    }
    pthread_mutex_lock(&out_lock);
    struct rec end = {.type = REC_END, .t = now_ns(CLOCK_REALTIME), .addr = total_records};
    write_all(&end, sizeof end);
    pthread_mutex_unlock(&out_lock);
    if (out_fd > 2)
        close(out_fd);
}

/* ---- installation ------------------------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

static int fail(const char *what, const char *arg)
{
    char msg[256];
    snprintf(msg, sizeof msg, "migtrace-record: %s: '%s'\n", what, arg);
    qemu_plugin_outs(msg);
    return -1;
}

MT_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (!info->system_emulation) {
        qemu_plugin_outs("migtrace-record: needs system emulation (qemu-system-*)\n");
        return -1;
    }
    uint64_t ips = 2000000000ull;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        if (!eq)
            return fail("argument is not key=value", a);
        size_t k = (size_t)(eq - a);
        const char *val = eq + 1;
        uint64_t n;
        if (k == 2 && !strncmp(a, "fd", k)) {
            if (!parse_u64(val, &n))
                return fail("bad fd", a);
            out_fd = (int)n;
        } else if (k == 3 && !strncmp(a, "out", k)) {
            out_fd = open(val, O_WRONLY | O_CLOEXEC);
            if (out_fd < 0)
                return fail("cannot open out", val);
        } else if (k == 8 && !strncmp(a, "epoch_ns", k)) {
            if (!parse_u64(val, &epoch_ns))
                return fail("bad epoch_ns", a);
        } else if (k == 3 && !strncmp(a, "ips", k)) {
            if (!parse_u64(val, &ips) || ips == 0)
                return fail("bad ips", a);
        } else if (k == 3 && !strncmp(a, "arm", k)) {
            if (!*val)
                return fail("empty arm path", a);
            arm_path = strdup(val);
            armed = false;
        } else if (k == 5 && !strncmp(a, "clock", k)) {
            if (!strcmp(val, "host"))
                host_clock = true;
            else if (strcmp(val, "guest"))
                return fail("clock must be guest or host", a);
        } else {
            return fail("unknown argument", a);
        }
    }
    if (out_fd < 0) {
        qemu_plugin_outs("migtrace-record: no output (fd=N or out=PATH)\n");
        return -1;
    }
    ns_per_insn = 1e9 / (double)ips;
    max_vcpus = info->system.max_vcpus > 0 ? (unsigned)info->system.max_vcpus : 1;
    /* The 7.2 inline add is one shared, non-atomic counter: exact only with one vCPU. */
    inline_count = max_vcpus == 1;
    vcpus = calloc(max_vcpus, sizeof *vcpus);
    if (!vcpus)
        return fail("out of memory", "vcpus");
    start_mono = now_ns(CLOCK_MONOTONIC);
    start_real = now_ns(CLOCK_REALTIME);

    struct rec hello = {.type = REC_HELLO, .vcpu = (uint16_t)max_vcpus, .aux = FORMAT_VERSION, .t = start_real, .addr = max_vcpus};
    write_all(&hello, sizeof hello);

    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_idle_cb(id, on_vcpu_idle);
    qemu_plugin_register_vcpu_resume_cb(id, on_vcpu_resume);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
