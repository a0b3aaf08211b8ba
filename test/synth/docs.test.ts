/** docs/generate.md documents every workload and parameter with its real default. */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import test from 'ava'
import {WORKLOADS} from '../../src/synth/index.js'
import {ROOT} from '../helpers/cli.js'

const doc = readFileSync(join(ROOT, 'docs', 'generate.md'), 'utf8')

for (const w of WORKLOADS) {
  test(`docs: workload ${w.name}`, (t) => {
    const at = doc.indexOf(`### \`${w.name}\``)
    t.true(at >= 0, 'has a section')
    const section = doc.slice(at, doc.indexOf('\n### ', at + 1))
    for (const [name, def] of Object.entries(w.params)) {
      const row = section.split('\n').find((l) => l.startsWith(`| \`${name}\` |`))
      t.truthy(row, `parameter ${name} documented`)
      t.true(row!.includes(def.default === undefined ? '| – |' : `| \`${def.default}\` |`), `default of ${name}`)
    }
  })
}
