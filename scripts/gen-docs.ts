/**
 * Generates the reference tables of README.md between its `<!-- generated:... -->` markers: the
 * event fields and kinds (from src/trace/events.ts) and the replay settings (from
 * src/replay/config.ts). Run after changing KINDS, FIELD_DOC or SETTINGS: npx tsx scripts/gen-docs.ts
 * (test/trace/format-doc.test.ts checks that README.md is current).
 */
import {readFileSync, writeFileSync} from 'node:fs'
import {FIELDS, FIELD_DOC, KINDS, type KindSpec} from '../src/trace/events.js'
import {settingsDoc, settingsMarkdown} from '../src/replay/settings-doc.js'
import {rulesMarkdown} from '../src/replay/qemu-version.js'

export function fieldsTable(): string {
  const users = (f: string): string => {
    if (f === 't_ns' || f === 'kind') return 'all'
    return KINDS.filter((k) => f in k.fields).map((k) => `\`${k.name}\``).join(', ')
  }
  const rows = FIELDS.map((f) => `| \`${f}\` | ${FIELD_DOC[f].unit} | ${FIELD_DOC[f].meaning} | ${users(f)} |`)
  return ['| field | unit | meaning | used by |', '|---|---|---|---|', ...rows].join('\n')
}

export function kindsTable(): string {
  const rows = (KINDS as readonly KindSpec[]).map((k) => {
    const fields = Object.entries(k.fields).map(([f, rule]) => (rule === 'required' ? `\`${f}\`` : `[\`${f}\`]`))
    const ops = k.ops ? ` (op: ${k.ops.join(' / ')})` : ''
    return `| \`${k.name}\` | ${k.group} | ${fields.join(' ') || '-'}${ops} | ${k.doc.replace(/\|/g, '\\|')} |`
  })
  return ['| kind | group | fields ([optional]) | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

export function settingsTable(): string {
  return settingsMarkdown(settingsDoc()).trimEnd()
}

const put = (text: string, name: string, body: string, file = 'README.md'): string => {
  const re = new RegExp(`(<!-- generated:${name} -->\\n)[\\s\\S]*?(<!-- /generated:${name} -->)`)
  if (!re.test(text)) throw new Error(`${file} has no generated:${name} markers`)
  return text.replace(re, `$1${body}\n$2`)
}

export function renderDoc(doc: string): string {
  return put(put(put(doc, 'fields', fieldsTable()), 'kinds', kindsTable()), 'settings', settingsTable())
}

/** docs/qemu-versions.md with the rule table of src/replay/qemu-version.ts. */
export function renderVersionsDoc(doc: string): string {
  return put(doc, 'qemu-rules', rulesMarkdown(), 'docs/qemu-versions.md')
}

if (process.argv[1]?.endsWith('gen-docs.ts')) {
  const path = 'README.md'
  writeFileSync(path, renderDoc(readFileSync(path, 'utf8')))
  console.log(`updated ${path}`)
  const versions = 'docs/qemu-versions.md'
  writeFileSync(versions, renderVersionsDoc(readFileSync(versions, 'utf8')))
  console.log(`updated ${versions}`)
}
