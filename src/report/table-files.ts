/**
 * A replay's tables as files for analysts: CSV, Arrow IPC and Parquet, one file per table.
 *
 * Arrow: arquero's toArrowIPC (flechette, already a dependency), in the IPC *file* format
 * (Feather v2: pyarrow.ipc.open_file, pandas.read_feather, polars, DuckDB and R arrow read it).
 * Parquet: hyparquet-writer (pure JavaScript, no native code, no engines restriction), snappy
 * compressed; counts are INT64, times, rates and ratios DOUBLE (by column name, so a column has one
 * type in every run even when a run's values happen to be whole), text STRING, flags BOOLEAN.
 */
import {join} from 'node:path'
import type {AtomicOutput} from '../io/atomic-output.js'

export const TABLE_FORMATS = ['csv', 'arrow', 'parquet'] as const
export type TableFormat = (typeof TABLE_FORMATS)[number]
export type Columns = Record<string, (number | string | boolean | null)[]>

const EXT: Record<TableFormat, string> = {csv: 'csv', arrow: 'arrow', parquet: 'parquet'}

/** One table in one format, as bytes (CSV as UTF-8 text). */
export async function tableBytes(cols: Columns, format: TableFormat): Promise<Uint8Array | string> {
  if (format === 'parquet') return parquetBytes(cols)
  const aq = await import('arquero')
  const t = aq.table(cols)
  if (format === 'arrow') return aq.toArrowIPC(t, {format: 'file'})
  const text = t.toCSV()
  return text.endsWith('\n') ? text : `${text}\n`
}

/** Columns that hold a measure (time, rate, ratio, share), never a count. */
const MEASURE = /(ms|_s|ratio|pct|rate|bps|pps|share|mib)$|ratio|rate_/i

type ParquetColumn = {name: string; data: unknown[]; type: 'INT64' | 'DOUBLE' | 'STRING' | 'BOOLEAN'}

/** The parquet type of a column from its values (nulls allowed anywhere). */
function parquetColumn(name: string, values: (number | string | boolean | null)[]): ParquetColumn {
  const present = values.filter((v) => v !== null)
  if (present.length > 0 && present.every((v) => typeof v === 'boolean')) return {name, data: values, type: 'BOOLEAN'}
  if (present.every((v) => typeof v === 'number')) {
    if (!MEASURE.test(name) && present.every((v) => Number.isSafeInteger(v))) return {name, data: values.map((v) => (v === null ? null : BigInt(v as number))), type: 'INT64'}
    return {name, data: values, type: 'DOUBLE'}
  }
  return {name, data: values.map((v) => (v === null ? null : String(v))), type: 'STRING'}
}

async function parquetBytes(cols: Columns): Promise<Uint8Array> {
  const {parquetWriteBuffer} = await import('hyparquet-writer')
  const columnData = Object.entries(cols).map(([name, values]) => parquetColumn(name, values))
  return new Uint8Array(parquetWriteBuffer({columnData: columnData as never, createdBy: 'migtrace'}))
}

/** Every table into `dir` as `<name>.<ext>`, through `output` (all appear together or none); the paths. */
export async function writeTables(tables: [string, Columns][], dir: string, format: TableFormat, output: AtomicOutput): Promise<string[]> {
  const written: string[] = []
  for (const [name, cols] of tables) {
    const path = join(dir, `${name}.${EXT[format]}`)
    output.writeFile(path, await tableBytes(cols, format))
    written.push(path)
  }
  return written
}
