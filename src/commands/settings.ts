import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'

export default class Settings extends BaseCommand {
  static override summary = 'List every replay setting (--set key=value, --config files): unit, default and meaning'
  static override description =
    'The keys replay, report, compare and grid take with --set and in --config files. QEMU names and units where QEMU has the parameter (migrate-set-parameters / -capabilities); "fixed" keys shape the model and a trace\'s mig_set cannot change them mid-run.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> bandwidth', '<%= config.bin %> <%= command.id %> --json']
  static override enableJsonFlag = true
  static override args = {filter: Args.string({description: 'show only keys containing this text', required: false})}
  static override flags = {
    format: Flags.string({char: 'f', description: 'output format', options: ['text', 'md'], default: 'text'}),
  }

  async run(): Promise<Record<string, unknown> | void> {
    const {args, flags} = await this.parse(Settings)
    const {settingsDoc, settingsText, settingsMarkdown} = await import('../replay/settings-doc.js')
    const doc = settingsDoc(args.filter)
    if (this.jsonEnabled()) return doc
    process.stdout.write(flags.format === 'md' ? settingsMarkdown(doc) : settingsText(doc))
  }
}
