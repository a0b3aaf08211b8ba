import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import type {LabTableDoc} from '../../schemas/outputs.js'

export default class LabTable extends BaseCommand {
  static override summary = "Regenerate the lab's tables in docs/lab.md from the kept results (lab/runs/)"
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --print', '<%= config.bin %> <%= command.id %> --print --json']
  static override enableJsonFlag = true
  static override flags = {
    matrix: Flags.string({description: 'matrix file (run order and descriptions)', default: 'lab/matrix.json'}),
    'runs-dir': Flags.string({description: 'kept results', default: 'lab/runs'}),
    doc: Flags.string({description: 'document whose lab table section is replaced', default: 'docs/lab.md'}),
    print: Flags.boolean({description: 'print the tables instead of writing the document', default: false}),
  }

  async run(): Promise<LabTableDoc> {
    const {flags} = await this.parse(LabTable)
    const {readMatrix} = await import('../../lab/matrix.js')
    const {labTables, writeTableIntoDoc} = await import('../../lab/results-table.js')
    const t = labTables(flags['runs-dir'], readMatrix(flags.matrix).runs)
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
