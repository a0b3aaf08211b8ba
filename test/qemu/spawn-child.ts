// Helper of process.test.ts (not a test): start a stand-in QEMU, print its pid, wait to be signalled.
import {QemuProcess} from '../../src/qemu/process.js'

const vm = await QemuProcess.spawn({binary: '/bin/sh', args: ['-c', 'exec sleep 60'], name: 'child'})
process.stdout.write(`pid=${vm.pid}\n`)
await vm.exited
