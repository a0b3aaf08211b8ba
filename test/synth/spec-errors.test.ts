/** A mistake in a spec names the file, the field path, what was expected and what was found. */
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {UserError} from '../../src/util/errors.js'
import {parseSpec, readSpecFile, synthesize} from '../../src/synth/index.js'

const base = {duration: '1s', memory: '1G', workloads: [{workload: 'uniform'}]}

function message(spec: unknown): string {
  try {
    synthesize(parseSpec(spec, 'spec.json'))
  } catch (e) {
    if (e instanceof UserError) return e.message
    throw e
  }
  return 'no error'
}

const CASES: [string, unknown, string][] = [
  [
    'unknown workload',
    {...base, workloads: [{workload: 'uniformm'}]},
    "spec.json: field 'workloads.0.workload': unknown workload (expected idle, uniform, sequential, once, hotset, zipf, phases, database, reads, dma-device, vhost-net, virtio-mem, malicious, found 'uniformm')",
  ],
  [
    'bad parameter value',
    {...base, workloads: [{workload: 'uniform', params: {rate: 'fast'}}]},
    "spec.json: field 'workloads.0.params.rate': invalid parameter value (expected a non-negative number of events per second, found 'fast')",
  ],
  [
    'unknown parameter',
    {...base, workloads: [{workload: 'uniform', params: {speed: 1}}]},
    "spec.json: field 'workloads.0.params.speed': unknown parameter (expected one of rate, offset, span, readRatio, found 'speed')",
  ],
  ['unknown field', {...base, workloads: [{workload: 'uniform', param: {}}]}, "spec.json: field 'workloads.0': unknown field (found 'param')"],
  ['bad duration', {...base, duration: '3 fortnights'}, "spec.json: field 'duration': not a valid duration (expected a time such as 300ms, 30s, 1.5s or 2min, found '3 fortnights')"],
  ['missing duration', {workloads: []}, "spec.json: field 'duration': missing field"],
  ['bad memory size (header schema)', {...base, memory: '1Q'}, "spec.json: field 'memory': not a valid size (expected a byte count such as 4096, 64K, 1.5G or 2GiB, found '1Q')"],
  ['no such vCPU', {...base, vcpus: 2, workloads: [{workload: 'uniform', vcpu: 2}]}, "spec.json: field 'workloads.0.vcpu': no such vCPU (expected 0 .. 1, found 2)"],
  ['vCPU on a device', {...base, workloads: [{workload: 'dma-device', vcpu: 0}]}, "spec.json: field 'workloads.0.vcpu': workload 'dma-device' is a device and runs on no vCPU"],
  [
    'hot set larger than the region',
    {...base, workloads: [{workload: 'hotset', params: {hotSize: '2G'}}]},
    "spec.json: field 'workloads.0.params.hotSize': the hot set does not fit in the region (expected hotOffset+hotSize <= 262144 pages, found 524288 pages)",
  ],
  [
    'bad migration parameters',
    {...base, migration: {start: '1s', params: 'max-bandwidth'}},
    "spec.json: field 'migration.params': not a migration parameter (expected name=value pairs joined by ';', with QEMU's parameter names, such as max-bandwidth=134217728, found 'max-bandwidth')",
  ],
  ['populated out of range', {...base, populated: 2}, "spec.json: field 'populated': out of range (expected a number <= 1, found '2')"],
  ['not an object', [], 'spec.json: a generator spec must be a JSON object (found an array)'],
]

for (const [name, spec, want] of CASES) test(`spec error: ${name}`, (t) => t.is(message(spec), want))

test('spec files: bad JSON and a missing file are clear', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synth-spec-'))
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, '{"duration": "1s",}')
  const e1 = t.throws(() => readSpecFile(bad), {instanceOf: UserError})
  t.regex(e1.message, /^.*bad\.json:1: the spec file is not valid JSON \(expected a generator spec: one JSON object \(see docs\/generate.md\), found /)
  const e2 = t.throws(() => readSpecFile(join(dir, 'nope.json')), {instanceOf: UserError})
  t.is(e2.message, `${join(dir, 'nope.json')}: cannot read the spec file: no such file or directory`)
})

test('spec files: the seed can be overridden', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synth-spec-'))
  const f = join(dir, 's.json')
  writeFileSync(f, JSON.stringify({...base, seed: 5}))
  t.is(readSpecFile(f).seed, 5)
  t.is(readSpecFile(f, {seed: 9}).seed, 9)
})
