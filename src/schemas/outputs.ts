/**
 * The JSON every command prints (--json, --format json), as zod types: one place that says what a
 * tool reading migtrace's output may rely on. docs/schemas/*.schema.json are generated from these
 * (scripts/json-schemas.ts, z.toJSONSchema); test/cli/json-schemas.test.ts fails when the docs and
 * these types drift apart, and when a command prints a field these types do not declare.
 *
 * Each document's top level is strict (an undeclared field is drift); nested sections that other
 * parts of migtrace own and extend (settings, KVM counters, device and mode sections) are declared
 * by their shape where it is stable and left open (looseObject) where it grows.
 */
import {z} from 'zod'

const num = z.number()
const int = z.number().int()
const counts = z.record(z.string(), z.number())
const open = z.looseObject({})

export const ErrorOutput = z.strictObject({
  schema: z.literal('migtrace.error/1'),
  error: z.looseObject({
    message: z.string().describe('the one line printed on stderr without --json'),
    file: z.string().optional(),
    line: int.optional(),
    field: z.string().optional(),
    expected: z.string().optional(),
    found: z.string().optional(),
  }),
})

const traceError = z.looseObject({message: z.string(), file: z.string().optional(), line: int.optional(), field: z.string().optional(), expected: z.string().optional(), found: z.string().optional()})

export const ValidateOutput = z.strictObject({
  schema: z.literal('migtrace.validate/1'),
  file: z.string(),
  valid: z.boolean(),
  format: z.enum(['csv', 'jsonl']).nullable().describe('null when the file could not be read at all'),
  gzip: z.boolean(),
  headerFile: z.string().nullable().optional(),
  events: int.describe('events read'),
  errors: z.array(traceError),
  stoppedEarly: z.boolean().describe('--max-errors was reached'),
})

export const InspectOutput = z.strictObject({
  schema: z.literal('migtrace.inspect/1'),
  file: z.string(),
  format: z.enum(['csv', 'jsonl']),
  gzip: z.boolean(),
  headerFile: z.string(),
  events: int,
  eventsByKind: counts,
  firstNs: num,
  lastNs: num,
  durationNs: num,
  vcpus: int,
  pageSize: int,
  guestMemoryBytes: num,
  totalPages: int,
  memory: z.looseObject({ramBlocks: z.array(open), memslots: z.array(open), populated: z.unknown(), dirtyTracking: open}),
  distinctPagesWritten: int,
  distinctBytesWritten: num,
  writes: z.looseObject({events: int, bytes: num, byKind: open, byVcpu: z.array(int), readsByVcpu: z.array(int)}),
  writeRate: z.looseObject({bucketNs: num, buckets: z.array(open)}),
  virtioMem: z.array(open),
  vfio: z.array(open),
  kvm: open,
  migration: z.looseObject({events: z.array(open), syncs: int, pagesSent: open}),
})

export const ConvertOutput = z.strictObject({
  schema: z.literal('migtrace.convert/1'),
  input: z.string(),
  output: z.string(),
  events: int,
})

export const GenerateOutput = z.strictObject({
  schema: z.literal('migtrace.generate/1'),
  path: z.string().describe('the file written (.gz appended with --gzip)'),
  events: int,
  guestTimeNs: num,
  seed: int,
})

export const ImportQemuOutput = z.strictObject({
  schema: z.literal('migtrace.import-qemu/1'),
  log: z.string(),
  out: z.string(),
  events: int.describe('trace events written'),
  lines: int.describe('log lines read'),
  layoutFrom: z.string().describe('where the guest layout came from'),
  used: counts.describe('QEMU trace events used, by name'),
  unknown: counts.describe('QEMU trace events not used, by name'),
  otherLines: int.describe('lines that are not trace events'),
  unmappedPagesSent: z.unknown().optional(),
  skippedEvents: z.unknown().optional(),
  workload: open.optional(),
  destinationFaults: int.describe("postcopy: page faults in the destination's trace (--dst-trace), kept as observation").optional(),
})

export const ImportKvmOutput = z.strictObject({
  schema: z.literal('migtrace.import-kvm/1'),
  log: z.string(),
  out: z.string(),
  format: z.string().describe('qemu-log, perf or bpftrace'),
  writes: int.describe('write events written'),
  lines: int,
  harvests: int,
  layoutFrom: z.string(),
  skipped: counts,
  reordered: int,
})

export const RecordOutput = z.strictObject({
  schema: z.literal('migtrace.record/1'),
  out: z.string(),
  events: int,
  writes: int,
  hostSeconds: num,
  recording: open.describe("the trace header's source.recording"),
})

export const TrimOutput = z.strictObject({
  schema: z.literal('migtrace.trim/1'),
  input: z.string(),
  output: z.string(),
  fromNs: num.describe('the window, in trace time'),
  toNs: num,
  events: int,
  populatedPages: int.describe('pages that hold data when the window opens'),
})

const nullableOpen = open.nullable()

export const ReplayOutput = z.strictObject({
  schema: z.literal('migtrace.replay/1'),
  trace: z.string(),
  driver: z.enum(['qemu', 'recorded']),
  stopPolicy: z.string(),
  verdict: z.string().describe('converged, not-converged, inconclusive, cancelled, postcopy, ...'),
  stopReason: z.string(),
  iterations: int,
  dirtySyncCount: int,
  totalTimeMs: num,
  setupTimeMs: num,
  downtimeMs: num,
  downtime: z.strictObject({
    ramMs: num,
    deviceStateMs: num,
    ramPages: int,
    ramBytes: num,
    deviceStateBytes: num,
    vfioStateMs: num,
    vfioStateBytes: num,
    limitMs: num,
  }),
  pagesSent: int,
  bytesSent: num,
  transferredBytes: num,
  ratioToRam: num,
  firstPages: int,
  redirtiedPages: int,
  zeroPages: int,
  redundantPages: int.describe('double-copies: re-sends of unchanged pages'),
  redundantBytes: num,
  redundantByCause: counts.describe('double-copied pages by cause id'),
  lostWrites: int,
  guest: z.strictObject({bytes: num, pages: int, pageSize: int}),
  traceEndedFirst: z.boolean(),
  traceEndMs: num,
  migrationStartMs: num,
  stall: z.unknown().nullable(),
  sendHistogram: z.array(int).describe('pages sent k times, k = 0..15+'),
  kvm: open,
  lazyClears: int,
  events: open,
  settings: z.record(z.string(), z.unknown()).describe('every setting as resolved for this run'),
  notes: z.array(z.string()),
  vfio: open.optional(),
  virtioMem: open.optional(),
  postcopy: nullableOpen,
  snapshot: nullableOpen,
  throttle: nullableOpen,
  transport: nullableOpen,
  stream: open.optional().describe('the migration stream (docs/stream.md): sender CPU, multifd, compression, XBZRLE (query-migrate xbzrle-cache); only when one is on'),
  perIteration: z.array(z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()]))),
  expect: z.unknown().optional().describe("model against QEMU's observed figures (--expect or an imported trace)"),
})

const diffCell = z.strictObject({delta: num, ratio: num.nullable(), pct: num.nullable()})
const metricDef = z.strictObject({name: z.string(), unit: z.string(), better: z.string()})

const diffSide = z.strictObject({file: z.string(), trace: z.string(), driver: z.string(), verdict: z.string(), stopReason: z.string(), metrics: counts})

export const DiffOutput = z.strictObject({
  schema: z.literal('migtrace.diff/1'),
  baseline: diffSide,
  other: diffSide,
  settingsChanged: z.record(z.string(), z.tuple([z.unknown(), z.unknown()])),
  metrics: z.array(metricDef),
  diff: z.record(z.string(), diffCell),
})

const failIf = z.array(z.looseObject({condition: z.string(), failed: z.boolean(), checks: z.array(open)}))

export const CompareOutput = z.strictObject({
  schema: z.literal('migtrace.compare/1'),
  trace: z.string(),
  driver: z.string(),
  baseline: z.string(),
  base: z.record(z.string(), z.unknown()),
  metrics: z.array(metricDef),
  variants: z.array(
    z.strictObject({name: z.string(), settings: z.record(z.string(), z.string()), effective: z.record(z.string(), z.unknown()), verdict: z.string(), stopReason: z.string(), metrics: counts}),
  ),
  diffs: z.array(z.strictObject({variant: z.string(), metrics: z.record(z.string(), diffCell)})),
  failIf: failIf.optional(),
  failed: z.boolean().optional(),
})

export const GridOutput = z.strictObject({
  schema: z.literal('migtrace.grid/1'),
  trace: z.string(),
  driver: z.string(),
  base: z.record(z.string(), z.unknown()),
  bandwidthSetting: z.enum(['both', 'max-bandwidth', 'link-bandwidth']),
  bandwidths: z.array(z.strictObject({text: z.string(), bytesPerSec: num})),
  downtimes: z.array(z.strictObject({text: z.string(), ms: num})),
  cells: z.array(
    z.strictObject({
      bandwidth: z.string(),
      bandwidthBytesPerSec: num,
      downtimeLimit: z.string(),
      downtimeLimitMs: num,
      verdict: z.string(),
      stopReason: z.string(),
      totalTimeMs: num,
      downtimeMs: num,
      metrics: counts,
    }),
  ),
})

export const ShardOutput = z.strictObject({
  schema: z.literal('migtrace.shard/1'),
  command: z.enum(['compare', 'grid']),
  shard: z.strictObject({index: int, count: int}),
  total: int,
  definition: open,
  results: z.array(z.looseObject({index: int, name: z.string(), verdict: z.string(), stopReason: z.string(), metrics: counts})),
})

export const ReportOutput = z.strictObject({
  schema: z.literal('migtrace.report/1'),
  trace: z.string(),
  verdict: z.string(),
  totalTimeMs: num,
  downtimeMs: num,
  html: z.string().describe('the HTML file written'),
  csvDir: z.string().describe('the folder of the CSV table behind each chart'),
  charts: z.array(z.looseObject({id: z.string()})),
  tables: z.array(z.unknown()),
})

export const SettingsOutput = z.strictObject({
  schema: z.literal('migtrace.settings/1'),
  settings: z.array(
    z.strictObject({
      key: z.string(),
      qemu: z.boolean().describe('QEMU has a parameter or capability of this name'),
      type: z.string(),
      unit: z.string(),
      choices: z.array(z.string()).nullable(),
      min: num.nullable(),
      max: num.nullable(),
      default: z.string(),
      fixed: z.boolean().describe('fixed once the replay starts: a trace mig_set cannot change it'),
      doc: z.string(),
    }),
  ),
})

const expectRow = z.object({
  metric: z.string(),
  unit: z.string(),
  observed: num.nullable(),
  predicted: num.nullable(),
  error: num.nullable(),
  relError: num.nullable(),
  target: z.string().nullable(),
  pass: z.boolean().nullable(),
  note: z.string().optional(),
})

export const LabImageOutput = z.strictObject({
  schema: z.literal('migtrace.lab-image/1'),
  rebuilt: z.boolean().describe('false: the image was current and nothing was built'),
  kernelVersion: z.string(),
  kernel: z.string().describe('the kernel image file'),
  initrd: z.string().describe('the initramfs file'),
})

export const LabRunOutput = z.strictObject({
  schema: z.literal('migtrace.lab-run/1'),
  dir: z.string().describe('the run directory (docs/lab.md lists its files)'),
  status: z.string().describe("the source's final migration status (completed, cancelled, failed)"),
  summary: open.describe("the run's summary.json"),
  analysis: z
    .strictObject({
      trace: z.string().describe('the imported trace'),
      events: int,
      settings: z.array(z.string()).describe('the replay settings used'),
      expect: z.array(expectRow).describe('predicted against observed, metric by metric (replay --expect)'),
    })
    .nullable()
    .describe('null with --no-analyze, --trace none, or when the analysis failed'),
  analysisError: z.string().nullable().describe('why the analysis failed (exit 1), else null'),
})

export const LabMatrixOutput = z.strictObject({
  schema: z.literal('migtrace.lab-matrix/1'),
  doc: z.string().describe('the document whose lab tables were regenerated'),
  tableRuns: int.describe('runs in the regenerated tables'),
  runs: z.array(z.strictObject({name: z.string(), exitCode: int, ran: z.boolean().describe('false with --keep-only'), dir: z.string().describe('where its small results were kept'), kept: z.array(z.string())})),
  failed: z.array(z.string()).describe('runs whose lab run failed (exit 1)'),
})

export const LabTableOutput = z.strictObject({
  schema: z.literal('migtrace.lab-table/1'),
  doc: z.string().nullable().describe('the document written; null with --print'),
  runs: int,
  markdown: z.string().describe('the tables, as written between the markers'),
})

export const CalibrateOutput = z.strictObject({
  schema: z.literal('migtrace.calibrate/1'),
  runs: z.array(z.strictObject({name: z.string(), dir: z.string(), role: z.enum(['fit', 'check'])})),
  params: z.array(
    z.strictObject({
      name: z.string().describe('the setting fitted'),
      value: num.describe('fitted value, in the setting unit (ms, ms per GiB, bytes/s)'),
      start: num.describe('where the search started'),
      sigmaLog: num.nullable().describe('1-sigma of ln(value), from s^2 (J^T J)^-1 at the optimum: the relative uncertainty; null when the fit runs cannot tell it'),
      sensitivity: num.describe('root of the summed squared change of the residuals per unit change of ln(value)'),
    }),
  ),
  evals: int.describe('candidates evaluated (each replays every fit run)'),
  converged: z.boolean().describe('false: stopped at --max-evals'),
  sumOfSquares: z.strictObject({fitBefore: num, fitAfter: num, checkBefore: num, checkAfter: num}).describe('squared relative residuals summed, before (nothing fitted) and with the fitted values'),
  residuals: z.array(
    z.strictObject({
      run: z.string(),
      role: z.enum(['fit', 'check']),
      metric: z.string().describe('transferred (bytes), total-time, downtime (ms), dirty-sync-count'),
      observed: num,
      before: num.describe("predicted with the runs' own and the --config/--set settings, nothing fitted"),
      after: num.nullable().describe('predicted with the fitted values'),
      relBefore: num,
      relAfter: num.nullable(),
    }),
  ),
  settings: z.record(z.string(), z.union([z.string(), num, z.boolean()])).describe('the settings file: what the fit runs share of their own settings, the --config/--set ones, the fitted values'),
  out: z.string().nullable().describe('where the settings file was written (--out), else null'),
})

export type CalibrateDoc = z.infer<typeof CalibrateOutput>
export type LabImageDoc = z.infer<typeof LabImageOutput>
export type LabRunDoc = z.infer<typeof LabRunOutput>
export type LabMatrixDoc = z.infer<typeof LabMatrixOutput>
export type LabTableDoc = z.infer<typeof LabTableOutput>

/** Every output document by file name (docs/schemas/<name>.schema.json) and schema id. */
export const OUTPUT_SCHEMAS = {
  error: ErrorOutput,
  validate: ValidateOutput,
  inspect: InspectOutput,
  convert: ConvertOutput,
  generate: GenerateOutput,
  'import-qemu': ImportQemuOutput,
  'import-kvm': ImportKvmOutput,
  record: RecordOutput,
  trim: TrimOutput,
  replay: ReplayOutput,
  diff: DiffOutput,
  compare: CompareOutput,
  grid: GridOutput,
  shard: ShardOutput,
  report: ReportOutput,
  settings: SettingsOutput,
  'lab-image': LabImageOutput,
  'lab-run': LabRunOutput,
  'lab-matrix': LabMatrixOutput,
  'lab-table': LabTableOutput,
  calibrate: CalibrateOutput,
} as const

export type OutputName = keyof typeof OUTPUT_SCHEMAS

/** The JSON Schema of one output, as written to docs/schemas (stable key order, 2-space indent). */
export function jsonSchemaText(name: OutputName): string {
  const schema = z.toJSONSchema(OUTPUT_SCHEMAS[name], {target: 'draft-2020-12'}) as Record<string, unknown>
  const id = (OUTPUT_SCHEMAS[name].shape.schema as z.ZodLiteral<string>).value
  return `${JSON.stringify({$id: `https://migtrace.invalid/schemas/${name}.schema.json`, title: id, ...schema}, null, 2)}\n`
}
