/** The settings reference as a document: `migtrace settings` (text, Markdown, JSON) and the README table. */
import {SETTINGS} from './settings.js'
import {UserError, showValue} from '../util/errors.js'
import {nearestKeys} from './config.js'

export const SETTINGS_SCHEMA = 'migtrace.settings/1'

export interface SettingRow {
  key: string
  qemu: boolean
  type: string
  unit: string
  choices: string[] | null
  min: number | null
  max: number | null
  default: string
  fixed: boolean
  doc: string
}

export function settingsDoc(filter?: string): {schema: string; settings: SettingRow[]} {
  const rows = SETTINGS.filter((s) => filter === undefined || s.key.includes(filter.toLowerCase())).map((s) => ({
    key: s.key,
    qemu: s.qemu,
    type: s.kind,
    unit: s.unit,
    choices: s.choices ? [...s.choices] : null,
    min: s.min ?? null,
    max: s.max ?? null,
    default: s.defaultText,
    fixed: s.fixed,
    doc: s.doc,
  }))
  if (rows.length === 0) {
    const near = nearestKeys(filter ?? '')
    throw new UserError('no setting matches', {field: 'filter', expected: near.length > 0 ? near.join(' or ') : 'part of a key (migtrace settings lists them all)', found: showValue(filter ?? '')})
  }
  return {schema: SETTINGS_SCHEMA, settings: rows}
}

const valuesOf = (r: SettingRow): string => (r.choices ? r.choices.join(' | ') : r.unit)

export function settingsText(doc: {settings: SettingRow[]}): string {
  const out: string[] = []
  for (const r of doc.settings) {
    const tags = [r.qemu ? 'QEMU' : '', r.fixed ? 'fixed' : ''].filter(Boolean).join(', ')
    out.push(`${r.key}  (${valuesOf(r)}; default ${r.default}${tags ? `; ${tags}` : ''})`)
    out.push(`    ${r.doc}`)
  }
  return `${out.join('\n')}\n`
}

export function settingsMarkdown(doc: {settings: SettingRow[]}): string {
  const cell = (t: string): string => t.replace(/\|/g, '\\|')
  const rows = doc.settings.map((r) => `| \`${r.key}\` | ${r.qemu ? 'yes' : '-'} | ${cell(valuesOf(r))} | ${cell(r.default)} | ${cell(r.doc)} |`)
  return `${['| key | QEMU | unit or values | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n')}\n`
}
