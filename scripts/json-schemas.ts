// Writes docs/schemas/<output>.schema.json from the zod types of src/schemas/outputs.ts.
// Run: npm run schemas   (test/cli/json-schemas.test.ts fails when the files are stale)
import {mkdirSync, writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {OUTPUT_SCHEMAS, jsonSchemaText, type OutputName} from '../src/schemas/outputs.js'

const dir = fileURLToPath(new URL('../docs/schemas/', import.meta.url))
mkdirSync(dir, {recursive: true})
for (const name of Object.keys(OUTPUT_SCHEMAS) as OutputName[]) {
  writeFileSync(`${dir}${name}.schema.json`, jsonSchemaText(name))
  console.log(`docs/schemas/${name}.schema.json`)
}
