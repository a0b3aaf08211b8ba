#!/usr/bin/env node
// oclif sees development:true, maps dist/commands -> src/commands via tsconfig and registers tsx itself.
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
