/**
 * The tabular parts of an inspection as arquero tables (for --csv and the text view). arquero is
 * imported here lazily so that commands which never build a table start fast.
 */
import type {ColumnTable} from 'arquero'
import {KINDS} from '../trace/events.js'
import type {InspectResult} from './inspect.js'

export type InspectTableName = 'rate' | 'kinds' | 'slots'
export const INSPECT_TABLES: readonly InspectTableName[] = ['rate', 'kinds', 'slots']

export type Table = ColumnTable

export async function inspectTable(r: InspectResult, name: InspectTableName): Promise<Table> {
  const aq = await import('arquero')
  switch (name) {
    case 'rate': {
      const b = r.writeRate.buckets
      return aq.table({
        start_ns: b.map((x) => x.startNs),
        bucket_ns: b.map(() => r.writeRate.bucketNs),
        writes: b.map((x) => x.writes),
        bytes: b.map((x) => x.bytes),
        new_pages: b.map((x) => x.newPages),
        bytes_per_s: b.map((x) => Math.round(x.bytesPerSecond)),
      })
    }
    case 'kinds': {
      const names = Object.keys(r.eventsByKind) as (keyof InspectResult['eventsByKind'])[]
      const group = new Map(KINDS.map((k) => [k.name as string, k.group as string]))
      return aq.table({
        kind: names,
        group: names.map((n) => group.get(n) ?? ''),
        events: names.map((n) => r.eventsByKind[n] ?? 0),
      })
    }
    case 'slots': {
      const s = r.memory.memslots
      return aq.table({
        slot: s.map((x) => x.id),
        gpa: s.map((x) => `0x${x.gpa.toString(16)}`),
        size: s.map((x) => x.size),
        ram_block: s.map((x) => x.ramBlock),
        offset: s.map((x) => x.offset),
        pages: s.map((x) => x.pages),
        pages_written: s.map((x) => x.pagesWritten),
      })
    }
  }
}

/** A plain aligned text rendering of a table (numbers right-aligned), indented by `indent`. */
export function tableText(t: Table, indent = '  ', format: (col: string, v: unknown) => string = (_c, v) => String(v)): string {
  const cols = t.columnNames()
  const rows = t.objects() as Record<string, unknown>[]
  const cells = rows.map((row) => cols.map((c) => format(c, row[c])))
  const numeric = cols.map((c) => rows.length > 0 && rows.every((row) => typeof row[c] === 'number'))
  const width = cols.map((c, j) => Math.max(c.length, ...cells.map((r) => r[j]!.length)))
  const line = (vals: string[]): string => indent + vals.map((v, j) => (numeric[j] ? v.padStart(width[j]!) : v.padEnd(width[j]!))).join('  ').trimEnd()
  return [line(cols), ...cells.map(line)].join('\n')
}
