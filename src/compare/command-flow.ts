/**
 * What compare, grid and merge do after parsing their flags: run the sweep (or one shard of it),
 * build the document, evaluate --fail-if, print it in the asked format, and exit 1 when a
 * condition failed. The commands stay thin; this is the one place that decides the output.
 */
import type {Command} from '@oclif/core'
import {checkOutputFile} from '../io/output-path.js'
import {UserError} from '../util/errors.js'
import {compareCsv, compareMarkdown, compareText, type CompareDoc} from './compare-doc.js'
import {evaluate, type Condition} from './fail-if.js'
import {gridCsv, gridMarkdown, gridText, type GridDoc} from './grid-doc.js'
import {startProgress} from './progress.js'
import {runSweep} from './runner.js'
import {shardDoc, sweepDoc, sweepRun, type SweepDef} from './shard.js'
import {shardIndices, type ItemResult, type Shard} from './sweep.js'

export type Format = 'text' | 'md' | 'csv' | 'json'

export interface FlowOptions {
  definition: SweepDef
  conditions: Condition[]
  shard?: Shard
  jobs?: number
  format: string
  quiet: boolean
  html?: string
}

const HTML_OUTPUT = {what: 'the HTML page', field: '--html'}

function json(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`
}

export async function runAndPrint(cmd: Command, o: FlowOptions): Promise<void> {
  if (o.shard && o.html)
    throw new UserError(o.definition.command === 'grid' ? '--html needs every cell' : '--html needs every variant', {
      field: '--html',
      expected: o.definition.command === 'grid' ? "no --shard (give --html to 'migtrace merge' instead)" : 'no --shard',
    })
  // Before the sweep, not after it: a directory or an unwritable place for the page is one line now.
  if (o.html !== undefined) checkOutputFile(o.html, HTML_OUTPUT)
  const run = sweepRun(o.definition)
  const indices = shardIndices(run.items.length, o.shard)
  const bar = await startProgress(o.quiet, o.definition.command === 'grid' ? 'grid' : 'compare', indices.length)
  let results: Map<number, ItemResult>
  try {
    results = await runSweep(run, indices, {jobs: o.jobs, onProgress: (done) => bar.update(done), series: o.html !== undefined && o.definition.command === 'compare'})
  } finally {
    bar.stop()
  }
  const ordered = indices.map((i) => results.get(i)!)
  if (o.shard) {
    process.stdout.write(json(shardDoc(o.definition, o.shard, ordered)))
    return
  }
  return printDoc(cmd, o.definition, ordered, o)
}

/** Print the full document of a sweep; exit 1 when a --fail-if condition holds. */
export async function printDoc(cmd: Command, def: SweepDef, results: ItemResult[], o: {conditions: Condition[]; format: string; quiet: boolean; html?: string}): Promise<void> {
  if (o.html !== undefined) checkOutputFile(o.html, HTML_OUTPUT)
  const doc = sweepDoc(def, results)
  if (o.conditions.length > 0 && doc.schema === 'migtrace.compare/1') {
    const base = results.find((r) => r.name === (doc as CompareDoc).baseline)
    doc.failIf = evaluate(o.conditions, results, base)
    doc.failed = doc.failIf.some((c) => c.failed)
  }
  if (o.html && doc.schema === 'migtrace.compare/1') {
    const {writeCompareHtml} = await import('../report/html/compare-html.js')
    const path = await writeCompareHtml(doc, results.map((r) => ({variant: r.name, rows: r.series ?? []})), o.html)
    if (!o.quiet) process.stderr.write(`wrote ${path}\n`)
  }
  if (o.html && doc.schema === 'migtrace.grid/1') {
    const {writeGridHtml} = await import('../report/html/grid-html.js')
    const path = await writeGridHtml(doc, o.html)
    if (!o.quiet) process.stderr.write(`wrote ${path}\n`)
  }
  const failed = 'failed' in doc && doc.failed === true
  // JSON is printed here, not returned to oclif, so that --json, --format json, shards and merge
  // all print the same bytes (plain JSON.stringify, never colourised), failed or not.
  process.stdout.write(render(doc, cmd.jsonEnabled() ? 'json' : (o.format as Format)))
  if (failed) cmd.exit(1)
}

function render(doc: CompareDoc | GridDoc, format: Format): string {
  if (format === 'json') return json(doc)
  if (doc.schema === 'migtrace.compare/1') return format === 'md' ? compareMarkdown(doc) : format === 'csv' ? compareCsv(doc) : compareText(doc)
  return format === 'md' ? gridMarkdown(doc) : format === 'csv' ? gridCsv(doc) : gridText(doc)
}
