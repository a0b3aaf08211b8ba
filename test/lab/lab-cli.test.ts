/** `migtrace lab run` / `lab image`: a user's mistake is one line and exit code 2, before any QEMU starts. */
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'

const work = mkdtempSync(join(tmpdir(), 'migtrace-labcli-'))

test('bad options and a missing guest image: one line, exit 2', async (t) => {
  const env = {MIGTRACE_LAB_WORK: work}
  const noImage = await runCli(['lab', 'run', '--name', 'x'], {env})
  t.is(noImage.code, 2)
  t.is(noImage.stderr, `migtrace: ${join(work, 'image')}: the lab guest image is not built (expected run \`migtrace lab image\` first (add --install to apt-get what it needs))\n`)
  const ws = await runCli(['lab', 'run', '--name', 'x', '--mem', '512M', '--ws', '600'], {env})
  t.is(ws.code, 2)
  t.is(ws.stderr, "migtrace: field '--ws': bad lab option (expected 0 to 464 MiB (guest RAM less the kernel's share), found 600)\n")
  const mem = await runCli(['lab', 'run', '--name', 'x', '--mem', 'lots'], {env})
  t.is(mem.code, 2)
  t.regex(mem.stderr, /^migtrace: field '--mem': bad size \(expected MiB, or a number with M or G/)
  t.is(mem.stderr.split('\n').length, 2)
})
