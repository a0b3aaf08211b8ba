import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../cli/base-command.js'
import type {LabImageDoc} from '../../schemas/outputs.js'

export default class LabImage extends BaseCommand {
  static override summary = "Build the lab's guest image (Debian kernel + busybox initramfs with the dirtier)"
  static override description =
    "Fetches Debian's kernel package with apt-get download (unpacked, not installed), compiles lab/guest/dirtier.c statically and writes an initramfs with busybox, the lab's /init and the virtio-mem modules, under the lab's cache directory ($MIGTRACE_LAB_WORK, else ~/.cache/migtrace-lab). Does nothing when the image is current."
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --install --force', '<%= config.bin %> <%= command.id %> --json']
  static override enableJsonFlag = true
  static override flags = {
    work: Flags.string({description: 'lab work directory (default $MIGTRACE_LAB_WORK or ~/.cache/migtrace-lab)'}),
    install: Flags.boolean({description: 'apt-get install missing host packages (qemu-system-x86, busybox-static, gcc, libc6-dev); needs root', default: false}),
    force: Flags.boolean({description: 'rebuild even when the image is current', default: false}),
    'kernel-package': Flags.string({description: 'Debian kernel package (default: the one linux-image-amd64 depends on)'}),
  }

  async run(): Promise<LabImageDoc> {
    const {flags} = await this.parse(LabImage)
    const {buildImage} = await import('../../lab/image.js')
    // With --json the steps go to stderr and stdout holds the one document.
    const step = (l: string): void => (this.jsonEnabled() ? void process.stderr.write(`[lab image] ${l}\n`) : this.log(`[lab image] ${l}`))
    const r = buildImage({work: flags.work, install: flags.install, force: flags.force, kernelPackage: flags['kernel-package'], log: step})
    this.log(`${r.rebuilt ? 'built' : 'current'}: kernel ${r.manifest.kernelVersion}, ${r.paths.kernel}, ${r.paths.initrd}`)
    return {schema: 'migtrace.lab-image/1', rebuilt: r.rebuilt, kernelVersion: r.manifest.kernelVersion, kernel: r.paths.kernel, initrd: r.paths.initrd}
  }
}
