import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../cli/base-command.js'
import {UserError} from '../../util/errors.js'
import type {LabMatrixDoc} from '../../schemas/outputs.js'

export default class LabMatrix extends BaseCommand {
  static override summary = "Run the lab's matrix (lab/matrix.json) and keep each run's small results in lab/runs/"
  static override description =
    'Runs each entry of the matrix with `migtrace lab run` (QEMU at normal priority; the load average and the CPU the run got are recorded in its config.json), copies its small files (config, finals, passes, summary, consoles, the comparison; the source trace when its gzip is under 1.5 MB) into lab/runs/<name>/, then regenerates the tables in docs/lab.md.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --only random,postcopy --max-load 3', '<%= config.bin %> <%= command.id %> --keep-only --json']
  static override enableJsonFlag = true
  static override flags = {
    matrix: Flags.string({description: 'matrix file', default: 'lab/matrix.json'}),
    only: Flags.string({description: 'comma-separated run names (default: all)'}),
    'runs-dir': Flags.string({description: 'where the kept results go', default: 'lab/runs'}),
    doc: Flags.string({description: 'document whose lab table section is regenerated', default: 'docs/lab.md'}),
    work: Flags.string({description: 'lab work directory (default $MIGTRACE_LAB_WORK or ~/.cache/migtrace-lab)'}),
    'keep-only': Flags.boolean({description: 'do not run: copy the results of runs already in the work directory, then the tables', default: false}),
    'max-load': Flags.string({description: 'passed to each run: wait for the 1-minute load average to fall to this (0 = do not wait)', default: '0'}),
  }

  async run(): Promise<LabMatrixDoc> {
    const {flags} = await this.parse(LabMatrix)
    // With --json the runs' progress goes to stderr and stdout holds the one document.
    const say = (l: string): void => (this.jsonEnabled() ? void process.stderr.write(`${l}\n`) : this.log(l))
    const {readMatrix, runEntry, keepResults, keepPostcopyDstTrace, keepMultifdDstTrace} = await import('../../lab/matrix.js')
    const {labTables, writeTableIntoDoc} = await import('../../lab/results-table.js')
    const {labWorkDir} = await import('../../lab/paths.js')
    const {join} = await import('node:path')
    const spec = readMatrix(flags.matrix)
    const only = flags.only?.split(',').map((s) => s.trim()).filter(Boolean)
    const unknown = only?.filter((n) => !spec.runs.some((r) => r.name === n)) ?? []
    if (unknown.length > 0) throw new UserError('no such run in the matrix', {file: flags.matrix, field: '--only', found: unknown.join(', '), expected: spec.runs.map((r) => r.name).join(', ')})
    const work = flags.work ?? labWorkDir()
    const failed: string[] = []
    const done: LabMatrixDoc['runs'] = []
    for (const run of spec.runs.filter((r) => only === undefined || only.includes(r.name))) {
      say(`=== ${run.name}: ${run.what}`)
      const code = flags['keep-only'] ? 0 : await runEntry(spec, run, ['--max-load', flags['max-load']], flags.work, (l) => say(`  ${l}`))
      const kept = await keepResults(join(work, 'runs', run.name), join(flags['runs-dir'], run.name))
      if ((await keepPostcopyDstTrace(join(work, 'runs', run.name), join(flags['runs-dir'], run.name))) >= 0) kept.push('trace-dst.postcopy.log.gz')
      if ((await keepMultifdDstTrace(join(work, 'runs', run.name), join(flags['runs-dir'], run.name))) >= 0) kept.push('trace-dst.zero.log.gz')
      if (code !== 0) failed.push(run.name)
      done.push({name: run.name, exitCode: code, ran: !flags['keep-only'], dir: join(flags['runs-dir'], run.name), kept})
      say(`  kept ${kept.length} files in ${join(flags['runs-dir'], run.name)}${code !== 0 ? ` (lab run exit ${code})` : ''}`)
    }
    const t = labTables(flags['runs-dir'], spec.runs)
    writeTableIntoDoc(flags.doc, t.markdown)
    say(`${flags.doc}: tables of ${t.runs} runs`)
    const doc: LabMatrixDoc = {schema: 'migtrace.lab-matrix/1', doc: flags.doc, tableRuns: t.runs, runs: done, failed}
    if (failed.length > 0) {
      // A failed run is not a user's mistake: exit 1, after the document that says which.
      if (this.jsonEnabled()) {
        this.logJson(doc)
        this.exit(1)
      }
      this.error(`runs that failed: ${failed.join(', ')}`, {exit: 1})
    }
    return doc
  }
}
