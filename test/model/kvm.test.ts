/**
 * Each KVM dirty-logging mode against a brute-force reference model (one boolean per page, the
 * kernel's rules written the obvious way) on small random operation sequences (seeded PRNG).
 */
import test from 'ava'
import {Bitmap} from '../../src/model/bitmap.js'
import {KvmBitmapLog} from '../../src/model/kvm/bitmap-log.js'
import {KvmDirtyRing} from '../../src/model/kvm/dirty-ring.js'
import {KvmIoctlError} from '../../src/model/kvm/types.js'
import {dirtyLogMode, type DirtyLogModeName} from '../../src/model/kvm/modes.js'
import {machine, prng, MiB} from '../replay/helpers.js'

/** The reference: kvm_main.c / dirty_ring.c semantics, page by page. */
class RefKvm {
  dirty: boolean[]
  initial: boolean[]
  prot: boolean[]
  rings: number[][]
  logging: boolean[]
  fullExits = 0
  constructor(
    readonly mode: DirtyLogModeName,
    readonly pages: number,
    readonly slots: {first: number; pages: number}[],
    vcpus: number,
    readonly soft: number,
  ) {
    this.dirty = new Array<boolean>(pages).fill(false)
    this.initial = new Array<boolean>(pages).fill(false)
    this.prot = new Array<boolean>(pages).fill(false)
    this.rings = Array.from({length: vcpus}, () => [])
    this.logging = slots.map(() => false)
  }
  slotOf(p: number): number {
    return this.slots.findIndex((s) => p >= s.first && p < s.first + s.pages)
  }
  start(s: number): void {
    this.logging[s] = true
    const {first, pages} = this.slots[s]!
    for (let p = first; p < first + pages; p++) {
      if (this.mode === 'ring') this.prot[p] = true
      else if (this.mode === 'manual-initially-set') this.dirty[p] = this.initial[p] = true
      else this.dirty[p] = false
    }
  }
  write(p: number, v: number): number[] | undefined {
    const s = this.slotOf(p)
    if (s < 0 || !this.logging[s]) return undefined
    if (this.mode !== 'ring') {
      this.dirty[p] = true
      return undefined
    }
    if (!this.prot[p]) return undefined
    this.prot[p] = false
    this.rings[v]!.push(p)
    if (this.rings[v]!.length >= this.soft) {
      this.fullExits++
      return this.reap()
    }
    return undefined
  }
  get(s: number): boolean[] {
    const {first, pages} = this.slots[s]!
    const out = this.dirty.slice(first, first + pages)
    if (this.mode === 'bitmap') for (let p = first; p < first + pages; p++) this.dirty[p] = false
    return out
  }
  clear(s: number, first: number, num: number, mask: (p: number) => boolean): number {
    const slot = this.slots[s]!
    if (first % 64 !== 0 || first + num > slot.pages || (num % 64 !== 0 && first + num !== slot.pages)) throw new Error('EINVAL')
    let n = 0
    for (let p = slot.first + first; p < slot.first + first + num; p++) {
      if (mask(p) && this.dirty[p]) {
        this.dirty[p] = false
        this.initial[p] = false
        n++
      }
    }
    return n
  }
  reap(): number[] {
    const out: number[] = []
    for (const r of this.rings) {
      for (const p of r) {
        out.push(p)
        this.prot[p] = true
      }
      r.length = 0
    }
    return out
  }
}

const bits = (b: Bitmap, a: number, n: number): boolean[] => Array.from({length: n}, (_, i) => b.get(a + i))

for (const mode of ['bitmap', 'manual', 'manual-initially-set'] as const) {
  test(`KVM ${mode} agrees with the reference on random traces`, (t) => {
    for (let seed = 1; seed <= 25; seed++) {
      const rnd = prng(seed * 7919)
      // Two slots: 96 pages low, and a high slot whose length is not a multiple of 64.
      const {layout} = machine({ramBlocks: [{name: 'a', size: 96 * 4096}, {name: 'b', size: 200 * 4096}]})
      const kvm = new KvmBitmapLog(layout, dirtyLogMode(mode))
      const slots = layout.slots.map((s) => ({first: s.firstPage, pages: s.pages}))
      const ref = new RefKvm(mode, layout.totalPages, slots, 1, 0)
      const cache = new Bitmap(layout.totalPages)
      kvm.startLogging(0)
      ref.start(0)
      for (let op = 0; op < 400; op++) {
        const r = rnd()
        const s = rnd() < 0.5 ? 0 : 1
        const slot = slots[s]!
        if (r < 0.6) {
          const p = slot.first + Math.floor(rnd() * slot.pages)
          kvm.write(p, 0)
          ref.write(p, 0)
        } else if (r < 0.7) {
          if (!kvm.isLogging(1)) {
            kvm.startLogging(1)
            ref.start(1)
          }
        } else if (r < 0.82) {
          if (!kvm.isLogging(s)) continue
          kvm.getDirtyLog(s, cache)
          t.deepEqual(bits(cache, slot.first, slot.pages), ref.get(s), `seed ${seed} op ${op}: GET slot ${s}`)
        } else if (mode !== 'bitmap' && kvm.isLogging(s)) {
          // A CLEAR with a random (sometimes invalid) range and a random user mask.
          const first = rnd() < 0.9 ? Math.floor((rnd() * slot.pages) / 64) * 64 : 1 + Math.floor(rnd() * 10)
          const rest = slot.pages - first
          const num = rnd() < 0.5 ? rest : Math.min(rest, 64 * (1 + Math.floor(rnd() * 2)) + (rnd() < 0.1 ? 3 : 0))
          const mask = new Bitmap(layout.totalPages)
          for (let p = slot.first; p < slot.first + slot.pages; p++) if (rnd() < 0.5) mask.set(p)
          const lo = slot.first + first
          let got: number | string
          try {
            got = kvm.clearDirtyLog(s, first, num, mask, lo, lo + num)
          } catch (e) {
            t.true(e instanceof KvmIoctlError)
            got = 'EINVAL'
          }
          let want: number | string
          try {
            want = ref.clear(s, first, num, (p) => mask.get(p))
          } catch {
            want = 'EINVAL'
          }
          t.is(got, want, `seed ${seed} op ${op}: CLEAR ${first}+${num}`)
        }
      }
      for (let p = 0; p < layout.totalPages; p++) {
        if (kvm.dirty.get(p) !== ref.dirty[p]) t.fail(`seed ${seed}: page ${p} dirty bit differs at the end`)
        if (mode === 'manual-initially-set' && kvm.isInitialBit(p) !== ref.initial[p]) t.fail(`seed ${seed}: page ${p} initial bit differs`)
      }
    }
  })
}

test('KVM dirty ring agrees with the reference on random traces (ring-full exits included)', (t) => {
  let exits = 0
  for (let seed = 1; seed <= 25; seed++) {
    const rnd = prng(seed * 104729)
    const {layout} = machine({memory: 8 * MiB, vcpus: 3})
    // ring 1024, PML off: soft limit 960; use many writes to reach it.
    const ring = new KvmDirtyRing(layout, 3, 1024, false)
    const ref = new RefKvm('ring', layout.totalPages, layout.slots.map((s) => ({first: s.firstPage, pages: s.pages})), 3, 960)
    const cache = new Bitmap(layout.totalPages)
    ring.startLogging(0)
    ref.start(0)
    const refCache = new Set<number>()
    for (let op = 0; op < 6000; op++) {
      const r = rnd()
      if (r < 0.9997) {
        const p = Math.floor(rnd() * layout.totalPages)
        const v = rnd() < 0.8 ? 0 : Math.floor(rnd() * 3)
        ring.write(p, v)
        if (ring.fullPending) ring.reap(cache)
        const reaped = ref.write(p, v)
        if (reaped) for (const q of reaped) refCache.add(q)
      } else {
        const n = ring.reap(cache)
        const want = ref.reap()
        for (const q of want) refCache.add(q)
        t.is(n, want.length, `seed ${seed} op ${op}: reap count`)
      }
    }
    t.is(ring.stats.ringFullExits, ref.fullExits, `seed ${seed}: ring-full exits`)
    exits += ref.fullExits
    for (let p = 0; p < layout.totalPages; p++) {
      if (cache.get(p) !== refCache.has(p)) t.fail(`seed ${seed}: harvested page ${p} differs`)
      if (ring.prot.get(p) !== ref.prot[p]) t.fail(`seed ${seed}: protection of page ${p} differs`)
    }
  }
  t.true(exits >= 10, `the sequences reach the soft limit (${exits} exits)`)
})

test('ring soft limit: 4096 entries with PML leave 3520 (O15)', (t) => {
  const {layout} = machine({memory: 64 * MiB})
  t.is(new KvmDirtyRing(layout, 1, 4096, true).softLimit, 3520)
  t.is(new KvmDirtyRing(layout, 1, 4096, false).softLimit, 4032)
})

test('only the first write to a protected page is logged', (t) => {
  const {layout} = machine({memory: 8 * MiB})
  const legacy = new KvmBitmapLog(layout, dirtyLogMode('bitmap'))
  legacy.startLogging(0)
  legacy.write(5, 0)
  legacy.write(5, 0)
  t.is(legacy.stats.loggedWrites, 1)
  const cache = new Bitmap(layout.totalPages)
  t.is(legacy.getDirtyLog(0, cache), 1)
  t.true(cache.get(5))
  // legacy GET re-protected page 5: the next write is logged again, and the next GET is empty before it.
  t.is(legacy.getDirtyLog(0, cache), 0)
  legacy.write(5, 0)
  t.is(legacy.stats.loggedWrites, 2)

  const manual = new KvmBitmapLog(layout, dirtyLogMode('manual'))
  manual.startLogging(0)
  manual.write(7, 0)
  t.is(manual.getDirtyLog(0, cache), 1)
  t.is(manual.getDirtyLog(0, cache), 1, 'manual GET does not clear')
  manual.write(7, 0)
  t.is(manual.stats.loggedWrites, 1, 'the page stays writable until a CLEAR')
  t.is(manual.clearDirtyLog(0, 0, 64, cache, 0, 64), 1)
  manual.write(7, 0)
  t.is(manual.stats.loggedWrites, 2)

  const init = new KvmBitmapLog(layout, dirtyLogMode('manual-initially-set'))
  init.startLogging(0)
  t.is(init.getDirtyLog(0, cache), layout.totalPages, 'INITIALLY_SET: the first GET reports every page')
  init.write(9, 0)
  t.is(init.stats.loggedWrites, 0, 'no faults before the first CLEAR')
})

test('KVM_CLEAR_DIRTY_LOG alignment rules', (t) => {
  const {layout} = machine({ramBlocks: [{name: 'a', size: 100 * 4096}]})
  const kvm = new KvmBitmapLog(layout, dirtyLogMode('manual'))
  kvm.startLogging(0)
  t.throws(() => kvm.clearDirtyLog(0, 32, 64, null, 0, 100), {instanceOf: KvmIoctlError, message: /first_page 32/})
  t.throws(() => kvm.clearDirtyLog(0, 0, 65, null, 0, 100), {instanceOf: KvmIoctlError, message: /num_pages 65/})
  t.notThrows(() => kvm.clearDirtyLog(0, 64, 36, null, 0, 100), 'an unaligned count that reaches the slot end is fine')
  t.throws(() => kvm.clearDirtyLog(0, 64, 64, null, 0, 100), {instanceOf: KvmIoctlError, message: /past the slot/})
  t.throws(() => new KvmBitmapLog(layout, dirtyLogMode('bitmap')).clearDirtyLog(0, 0, 64, null, 0, 64), {instanceOf: KvmIoctlError})
})
