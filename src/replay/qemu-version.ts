/**
 * The QEMU version a replay follows (setting `qemu-version`): ONE table of the migration rules that
 * changed between QEMU 7.2 and 10.x, each row citing the QEMU function (and commit where the
 * reference names one) it mirrors. Everything version-dependent in the model reads this table:
 * - `default` rows: a setting's default follows the version (an explicit setting wins);
 * - `needs` rows: a setting value the version does not have is refused (one-line UserError);
 * - `behaviour` rows: a rule of the engine with no QEMU parameter (the 5 s periodic sync, VFIO's
 *   sync without dirty tracking), asked through `hasRule`.
 * docs/qemu-versions.md shows the table as `rulesMarkdown()` renders it (scripts/gen-docs.ts
 * writes it; test/replay/qemu-version.test.ts fails when it drifts).
 * This module imports no other replay module: settings.ts takes QEMU_VERSIONS from it.
 */

/** The versions a replay can follow: the releases from 7.2 on (x.y; the micro release changes no rule). */
export const QEMU_VERSIONS = ['7.2', '8.0', '8.1', '8.2', '9.0', '9.1', '9.2', '10.0', '10.1', '10.2'] as const
export type QemuVersion = (typeof QEMU_VERSIONS)[number]

/**
 * The default: 9.2. The model applied 9.x rules before it had a version (zero pages found in
 * multifd's channels, one multifd flush per round, VFIO without dirty tracking reported all dirty
 * at every sync); 9.2 adds the 5 s dirty-sync timer under auto-converge, which changes no figure
 * of the golden files and oracles. 10.0 would skip the sync of a VFIO container without dirty
 * tracking, so the device's DMA writes would be lost (QEMU's behaviour, see the table): not a
 * default to give without asking (docs/qemu-versions.md).
 */
export const DEFAULT_QEMU_VERSION: QemuVersion = '9.2'

const index = (v: QemuVersion): number => QEMU_VERSIONS.indexOf(v)

/** `v` is `since` or later. */
export function atLeast(v: QemuVersion, since: QemuVersion): boolean {
  return index(v) >= index(since)
}

/** The version a QEMU version string names ("QEMU emulator version 7.2.22 (...)", "9.2.1", "10.0"), or undefined. */
export function versionOf(text: string): QemuVersion | undefined {
  const m = /(\d+)\.(\d+)/.exec(text)
  if (!m) return undefined
  const v = `${Number(m[1])}.${Number(m[2])}`
  return (QEMU_VERSIONS as readonly string[]).includes(v) ? (v as QemuVersion) : undefined
}

interface RuleBase {
  id: string
  /** The first version with the new rule. */
  since: QemuVersion
  /** What older versions do. */
  before: string
  /** What `since` and later do. */
  from: string
  /** The QEMU function(s), file and commit the rule mirrors. */
  cite: string
}

/** A setting whose default is `before` up to `since` (exclusive) and `from` after. */
export interface DefaultRule extends RuleBase {
  kind: 'default'
  setting: string
  values: {before: string | number | boolean; from: string | number | boolean}
}

/** A setting value that exists only from `since`: refused on older versions. */
export interface NeedsRule extends RuleBase {
  kind: 'needs'
  setting: string
  /** The values that need the version (any other value is fine everywhere). */
  needs: (value: unknown) => boolean
  /** The value as the error and the docs name it. */
  valueText: string
}

/** An engine rule with no QEMU parameter. */
export interface BehaviourRule extends RuleBase {
  kind: 'behaviour'
}

export type QemuRule = DefaultRule | NeedsRule | BehaviourRule

export const QEMU_RULES = [
  {
    kind: 'behaviour',
    id: 'periodic-dirty-sync',
    since: '9.2',
    before: 'auto-converge: the bitmap is synced only when the migration thread asks (pending below the threshold)',
    from: 'auto-converge: a timer started with the migration syncs every 5 s when no sync happened since its last tick and dirty-sync-count > 1, so the throttle trigger runs during a long pass',
    cite: 'cpu_throttle_dirty_sync_timer_tick (migration/cpu-throttle.c, CPU_THROTTLE_DIRTY_SYNC_TIMESLICE_MS), started in migration_thread',
  },
  {
    kind: 'default',
    id: 'zero-page-detection',
    setting: 'zero-page-detection',
    since: '9.0',
    values: {before: 'legacy', from: 'multifd'},
    before: 'the migration thread finds zero pages (save_zero_page), also with multifd; no parameter',
    from: 'parameter zero-page-detection, default multifd: with multifd the channel threads find them (9-byte records in packets)',
    cite: 'multifd_send_zero_page_detect (migration/multifd-zero-page.c), parameter zero-page-detection (qapi/migration.json, 9.0)',
  },
  {
    kind: 'default',
    id: 'multifd-flush-after-each-section',
    setting: 'multifd-flush-after-each-section',
    since: '8.1',
    values: {before: true, from: false},
    before: 'multifd_send_sync_main after every RAM section (each ram_save_iterate)',
    from: 'one flush per full round of the dirty bitmap (find_dirty_block; multifd_ram_sync_per_round since 10.0); the property stays true for machine types <= 7.2',
    cite: 'migration property multifd-flush-after-each-section (migration/options.c), find_dirty_block (migration/ram.c)',
  },
  {
    kind: 'needs',
    id: 'switchover-ack',
    setting: 'switchover-ack',
    since: '8.1',
    needs: (v) => v === true,
    valueText: 'switchover-ack=on',
    before: 'no such capability: the source switches over whenever the pending size fits',
    from: 'capability switchover-ack: with a VFIO device that has precopy initial data, the source does not switch over (nor start postcopy) until the destination acks that the data is loaded',
    cite: 'migration_can_switchover (migration/migration.c), vfio_switchover_ack_needed / VFIO_MIG_FLAG_DEV_INIT_DATA_SENT (hw/vfio/migration.c), qemu_loadvm_approve_switchover (migration/savevm.c)',
  },
  {
    kind: 'needs',
    id: 'dirty-limit',
    setting: 'dirty-limit',
    since: '8.1',
    needs: (v) => v === true,
    valueText: 'dirty-limit=on',
    before: 'no dirty-limit capability in migration (the throttle trigger only does auto-converge)',
    from: 'capability dirty-limit: the trigger caps every vCPU at vcpu-dirty-limit',
    cite: 'migration_dirty_limit_guest (migration/ram.c), system/dirtylimit.c',
  },
  {
    kind: 'needs',
    id: 'avail-switchover-bandwidth',
    setting: 'avail-switchover-bandwidth',
    since: '8.2',
    needs: (v) => typeof v === 'number' && v > 0,
    valueText: 'avail-switchover-bandwidth > 0',
    before: 'the threshold always uses the measured bandwidth',
    from: 'parameter avail-switchover-bandwidth replaces the measured bandwidth in threshold_size',
    cite: 'migration_update_counters (migration/migration.c)',
  },
  {
    kind: 'needs',
    id: 'multifd-compression-qpl-uadk',
    setting: 'multifd-compression',
    since: '9.1',
    needs: (v) => v === 'qpl' || v === 'uadk',
    valueText: 'multifd-compression=qpl or uadk',
    before: 'multifd compression none, zlib, zstd',
    from: 'qpl (Intel IAA, migration/multifd-qpl.c) and uadk (Huawei Kunpeng, migration/multifd-uadk.c) too',
    cite: 'MultiFDCompression (qapi/migration.json), multifd_qpl_send_prepare, multifd_uadk_send_prepare',
  },
  {
    kind: 'needs',
    id: 'multifd-compression-qatzip',
    setting: 'multifd-compression',
    since: '9.2',
    needs: (v) => v === 'qatzip',
    valueText: 'multifd-compression=qatzip',
    before: 'no qatzip',
    from: 'qatzip (Intel QAT, migration/multifd-qatzip.c)',
    cite: 'MultiFDCompression (qapi/migration.json), qatzip_send_prepare',
  },
  {
    kind: 'behaviour',
    id: 'virtio-mem-early-prealloc',
    since: '8.0',
    before: "the destination learns a virtio-mem device's plugged blocks with its device state, after RAM (virtio_mem_post_load), and prealloc=on preallocates a block only when it is plugged: every page of the device that precopy loads is the destination's first touch of it (dest-first-touch-cost)",
    from: 'the plugged-block bitmap migrates before RAM (vmstate_virtio_mem_device_early) and the destination preallocates those blocks before the first page arrives (virtio_mem_post_load_early)',
    cite: '"virtio-mem: Proper support for preallocation with migration" (d71920d425, 8.0), hw/virtio/virtio-mem.c',
  },
  {
    kind: 'needs',
    id: 'vfio-no-dirty-tracking',
    setting: 'vfio-tracking',
    since: '8.0',
    needs: (v) => v === 'none',
    valueText: 'a VFIO container without dirty tracking (vfio-tracking none)',
    before: 'a VFIO device whose IOMMU cannot track dirty pages blocks migration',
    from: 'migration allowed: QEMU marks every mapped page dirty at each sync (vfio_get_dirty_bitmap falls back to cpu_physical_memory_set_dirty_range)',
    cite: '"vfio/migration: Allow migration without VFIO IOMMU dirty tracking support" (8.0)',
  },
  {
    kind: 'behaviour',
    id: 'vfio-no-tracking-skips-sync',
    since: '10.0',
    before: 'a VFIO container without dirty tracking reports every mapped page dirty at every sync (8.0-9.2)',
    from: 'the sync of such a container is skipped (vfio_log_sync_needed needs tracking started, which nothing can start): its DMA writes are never reported and are lost unless the guest writes the pages too (read from the source, not run; needs enable-migration=on)',
    cite: 'commit 0ae05e087f "Refactor vfio_devices_all_dirty_tracking() logic", vfio_log_sync_needed / vfio_container_dirty_tracking_is_started (hw/vfio/listener.c)',
  },
] as const satisfies readonly QemuRule[]

export type RuleId = (typeof QEMU_RULES)[number]['id']
export type BehaviourId = Extract<(typeof QEMU_RULES)[number], {kind: 'behaviour'}>['id']

const RULES: readonly QemuRule[] = QEMU_RULES

/** A behaviour rule in force at version `v`. */
export function hasRule(v: QemuVersion, id: BehaviourId): boolean {
  const r = RULES.find((x) => x.id === id)!
  return atLeast(v, r.since)
}

/** The version default of a setting at `v`, or undefined when the version does not decide it. */
export function versionDefault(setting: string, v: QemuVersion): string | number | boolean | undefined {
  const r = RULES.find((x): x is DefaultRule => x.kind === 'default' && x.setting === setting)
  if (!r) return undefined
  return atLeast(v, r.since) ? r.values.from : r.values.before
}

/** Settings whose default the version decides. */
export const VERSION_DEFAULT_KEYS: readonly string[] = RULES.filter((r): r is DefaultRule => r.kind === 'default').map((r) => r.setting)

/** The first `needs` rule a setting's value breaks at version `v`, or undefined. */
export function missingAt(v: QemuVersion, setting: string, value: unknown): NeedsRule | undefined {
  return RULES.find((r): r is NeedsRule => r.kind === 'needs' && r.setting === setting && r.needs(value) && !atLeast(v, r.since))
}

/** Every `needs` rule, for callers that check a value the settings do not hold (VFIO's resolved tracking). */
export function needsRules(): readonly NeedsRule[] {
  return RULES.filter((r): r is NeedsRule => r.kind === 'needs')
}

/** The table as docs/qemu-versions.md shows it. */
export function rulesMarkdown(): string {
  const cell = (t: string): string => t.replace(/\|/g, '\\|')
  const what = (r: QemuRule): string => {
    if (r.kind === 'default') return `default of \`${r.setting}\`: ${String(r.values.before)} before, ${String(r.values.from)} from ${r.since}`
    if (r.kind === 'needs') return `${r.valueText} refused before ${r.since}`
    return 'engine rule'
  }
  const rows = RULES.map((r) => `| \`${r.id}\` | ${r.since} | ${cell(what(r))} | ${cell(r.before)} | ${cell(r.from)} | ${cell(r.cite)} |`)
  return ['| rule | since | in migtrace | before | from that version | QEMU |', '|---|---|---|---|---|---|', ...rows].join('\n')
}
