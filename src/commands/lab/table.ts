import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../cli/base-command.js'
import type {LabTableDoc} from '../../schemas/outputs.js'
import {UserError} from '../../util/errors.js'

export default class LabTable extends BaseCommand {
  static override summary = "Regenerate the lab's tables in docs/lab.md from the kept results (lab/runs/)"
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --print', '<%= config.bin %> <%= command.id %> --print --json', '<%= config.bin %> <%= command.id %> --reanalyze --config lab/calibration.json']
  static override enableJsonFlag = true
  static override flags = {
    matrix: Flags.string({description: 'matrix file (run order and descriptions)', default: 'lab/matrix.json'}),
    'runs-dir': Flags.string({description: 'kept results', default: 'lab/runs'}),
    doc: Flags.string({description: 'document whose lab table section is replaced', default: 'docs/lab.md'}),
    print: Flags.boolean({description: 'print the tables instead of writing the document', default: false}),
    reanalyze: Flags.boolean({description: 'also replay every kept run that has its source trace, in-process, with --config over the lab settings, and add its table', default: false}),
    config: Flags.string({char: 'c', description: 'settings file for --reanalyze (e.g. lab/calibration.json, written by migtrace calibrate)'}),
    recreated: Flags.boolean({description: "with --reanalyze: replay the recorded runs a second time with the dirtier's writes re-created from its seed instead of the recording, and add a table of the two byte errors side by side", default: false}),
  }

  async run(): Promise<LabTableDoc> {
    const {flags} = await this.parse(LabTable)
    const {readMatrix} = await import('../../lab/matrix.js')
    const {labTables, writeTableIntoDoc} = await import('../../lab/results-table.js')
    if (flags.recreated && !flags.reanalyze) throw new UserError('--recreated goes with --reanalyze', {field: '--recreated', expected: '--reanalyze --config FILE --recreated'})
    if (flags.reanalyze !== (flags.config !== undefined)) throw new UserError('--reanalyze and --config go together', {field: flags.reanalyze ? '--config' : '--reanalyze', expected: '--reanalyze --config FILE (a settings file, e.g. lab/calibration.json)'})
    const order = readMatrix(flags.matrix).runs
    let reanalysis: import('../../lab/results-table.js').Reanalysis | undefined
    if (flags.reanalyze && flags.config) {
      const {existsSync} = await import('node:fs')
      const {join} = await import('node:path')
      const {loadConfigFile} = await import('../../replay/config.js')
      const {loadRun, predict} = await import('../../calibrate/runs.js')
      const settings = loadConfigFile(flags.config)
      const {sourceTraceOf, recordingOf} = await import('../../lab/run-files.js')
      const rows = new Map<string, import('../../analysis/expect.js').ExpectRow[]>()
      const recreated = new Map<string, import('../../analysis/expect.js').ExpectRow[]>()
      for (const o of order) {
        const dir = join(flags['runs-dir'], o.name)
        if (!existsSync(dir) || sourceTraceOf(dir) === undefined) continue
        process.stderr.write(`lab table: re-analyzing ${o.name} with ${flags.config}\n`)
        rows.set(o.name, (await predict(await loadRun(dir, {name: o.name}), settings)).rows)
        if (flags.recreated && recordingOf(dir) !== undefined) recreated.set(o.name, (await predict(await loadRun(dir, {name: o.name, writes: 'recreated'}), settings)).rows)
      }
      reanalysis = {config: flags.config, rows, ...(flags.recreated ? {recreated} : {})}
    }
    const t = labTables(flags['runs-dir'], order, reanalysis)
    const doc: LabTableDoc = {schema: 'migtrace.lab-table/1', doc: flags.print ? null : flags.doc, runs: t.runs, markdown: t.markdown}
    if (flags.print) {
      this.log(t.markdown)
      return doc
    }
    writeTableIntoDoc(flags.doc, t.markdown)
    this.log(`${flags.doc}: tables of ${t.runs} runs`)
    return doc
  }
}
