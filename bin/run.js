#!/usr/bin/env node
// Help pages the build saved are printed without loading oclif (dist/cli/fast-help/serve.js says
// when); everything else, and help whenever the saved page might differ, goes to oclif.
import {fileURLToPath} from 'node:url'
import {serveHelp} from '../dist/cli/fast-help/serve.js'

if (!serveHelp(fileURLToPath(new URL('..', import.meta.url)), process.argv.slice(2))) {
  const {execute} = await import('@oclif/core/execute')
  await execute({dir: import.meta.url})
}
