/**
 * Generates the field and event-kind tables of docs/trace-format.md from the event vocabulary
 * (src/trace/events.ts), between the `<!-- generated:... -->` markers. Run after changing KINDS or
 * FIELD_DOC: npx tsx scripts/gen-format-doc.ts  (test/trace/format-doc.test.ts checks it is current).
 */
import {readFileSync, writeFileSync} from 'node:fs'
import {FIELDS, FIELD_DOC, KINDS, type KindSpec} from '../src/trace/events.js'

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

export function renderDoc(doc: string): string {
  const put = (text: string, name: string, body: string): string => {
    const re = new RegExp(`(<!-- generated:${name} -->\\n)[\\s\\S]*?(\\n<!-- /generated:${name} -->)`)
    if (!re.test(text)) throw new Error(`docs/trace-format.md has no generated:${name} markers`)
    return text.replace(re, `$1${body}$2`)
  }
  return put(put(doc, 'fields', fieldsTable()), 'kinds', kindsTable())
}

if (process.argv[1]?.endsWith('gen-format-doc.ts')) {
  const path = 'docs/trace-format.md'
  writeFileSync(path, renderDoc(readFileSync(path, 'utf8')))
  console.log(`updated ${path}`)
}
