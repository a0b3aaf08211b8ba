/**
 * fixtures/bad files that are not errors on their own: shared by test/trace/read.test.ts (which
 * checks every file there is covered) and test/reliability/bad-corpus.test.ts.
 */

/** Variants the readers accept (a BOM, CRLF, no final newline, quoted fields, a sidecar with a BOM). */
export const BAD_CORPUS_ACCEPTED = ['bom.csv', 'crlf.csv', 'no-final-newline.csv', 'quoted-ok.csv']

/** Sidecar headers, read through the CSV file beside them. */
export const BAD_CORPUS_COMPANIONS = ['sidecar-bom.json', 'sidecar-bad.json']

const SMALL = 'fixtures/replay/small.csv'
const QEMU_LOG = 'fixtures/qemu/01-idle-pfnmap/trace-src.log.gz'
/** Placeholders: the corpus file, and the output directory the test provides. */
export const F = '<F>'
export const OUT = '<OUT>/'
const O = (name: string): string => `${OUT}${name}`

/** File, command (F = the file), the message after 'migtrace: ' (undefined: the file is accepted). */
export const BAD_CORPUS: [string, string[], string | RegExp | undefined][] = [
  ['binary.csv', ['convert', F, O('o.jsonl')], "fixtures/bad/binary.csv:1: header missing (expected a first line '# {\"format\":\"migtrace\",\"version\":1,...}' or a sidecar <trace>.json, found '\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\x09')"],
  ['event-deep.jsonl', ['convert', F, O('o.jsonl')], "fixtures/bad/event-deep.jsonl:2: field 'gpa': not a number (expected a whole number >= 0 (decimal, or 0x hex), found '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...')"],
  ['gzip-corrupt.csv.gz', ['convert', F, O('o.jsonl')], "fixtures/bad/gzip-corrupt.csv.gz: gzip data is truncated or corrupt (invalid distance too far back)"],
  ['gzip-truncated.csv.gz', ['convert', F, O('o.jsonl')], "fixtures/bad/gzip-truncated.csv.gz:1287: gzip data is truncated or corrupt (unexpected end of file)"],
  ['header-array.jsonl', ['convert', F, O('o.jsonl')], "fixtures/bad/header-array.jsonl:1: the trace header must be a JSON object (found an array)"],
  ['header-deep.csv', ['convert', F, O('o.jsonl')], "fixtures/bad/header-deep.csv:1: field 'version.0.0.0...': the header nests too deeply (expected at most 64 levels of [ and {)"],
  ['header-deep.jsonl', ['convert', F, O('o.jsonl')], "fixtures/bad/header-deep.jsonl:1: field 'description.0.0.0...': the header nests too deeply (expected at most 64 levels of [ and {)"],
  ['header-duplicate-id.csv', ['convert', F, O('o.jsonl')], "fixtures/bad/header-duplicate-id.csv:1: field 'vfio.0.devices.0.id': duplicate device id (found c0)"],
  ['header-memory-unit.jsonl', ['convert', F, O('o.jsonl')], "fixtures/bad/header-memory-unit.jsonl:1: field 'memory': not a valid size (expected a byte count such as 4096, 64K, 1.5G or 2GiB, found '1P')"],
  ['header-ring-size.csv', ['convert', F, O('o.jsonl')], "fixtures/bad/header-ring-size.csv:1: field 'dirtyTracking.ringSize': ring size must be a power of two (found 1000)"],
  ['header-unknown-key.csv', ['convert', F, O('o.jsonl')], "fixtures/bad/header-unknown-key.csv:1: field 'memry': unknown header field (expected a header field (did you mean 'memory'?), found 'memry')"],
  ['header-zero-vcpus.jsonl', ['convert', F, O('o.jsonl')], "fixtures/bad/header-zero-vcpus.jsonl:1: field 'vcpus': Too small: expected number to be >0"],
  ['labconfig-deep.json', ['import:qemu', QEMU_LOG, '--workload', F, '--out', O('o.csv')], "fixtures/bad/labconfig-deep.json:1: field 'args.smp.0.0...': the lab config nests too deeply (expected at most 64 levels of [ and {)"],
  ['labconfig-no-args.json', ['import:qemu', QEMU_LOG, '--workload', F, '--out', O('o.csv')], "fixtures/bad/labconfig-no-args.json: field 'args': not a qemu-lab config.json (expected an object of migrate.py options, found nothing)"],
  ['layout-not-json.json', ['import:qemu', QEMU_LOG, '--layout', F, '--out', O('o.csv')], "fixtures/bad/layout-not-json.json: the layout header is not valid JSON (expected one JSON object, found Unexpected token 'o', \"format: mig\"... is not valid JSON)"],
  ['nul-bytes.jsonl', ['convert', F, O('o.jsonl')], "fixtures/bad/nul-bytes.jsonl:2: not valid JSON (expected no control character inside a string, found a control character (0x00) at column 23)"],
  ['qemu-bad-args.log', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-bad-args.log:2: malformed ram_save_page line (expected 'ram_save_page %s: offset: 0x%lx host: %p' (QEMU 7.2+), found 'ram_save_page pc.ram: offset: 0xZZZ host: 0x7fbb9fe00000')"],
  ['qemu-binary.log', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-binary.log:1: binary data, not a text log (expected a QEMU trace log (-trace ... -D FILE), optionally gzip-compressed)"],
  ['qemu-empty.log', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-empty.log: empty file: no QEMU trace-event line (expected lines such as '1234@1700000000.123456:migrate_set_state new state active', from -trace ... -D FILE)"],
  ['qemu-json.log', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-json.log: no QEMU trace-event line in 1 line (expected lines such as '1234@1700000000.123456:migrate_set_state new state active', from -trace ... -D FILE)"],
  ['qemu-migtrace.log', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-migtrace.log: no QEMU trace-event line in 3 lines (expected lines such as '1234@1700000000.123456:migrate_set_state new state active', from -trace ... -D FILE)"],
  ['qemu-readme.log', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-readme.log: no QEMU trace-event line in 3 lines (expected lines such as '1234@1700000000.123456:migrate_set_state new state active', from -trace ... -D FILE)"],
  ['qemu-truncated.log.gz', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-truncated.log.gz:1996: gzip data is truncated or corrupt (unexpected end of file)"],
  ['qemu-zstd.log', ['import:qemu', F, '--out', O('o.csv')], "fixtures/bad/qemu-zstd.log: zstd-compressed input is not supported on Node 20 (expected a plain or gzip file (zstd -dc FILE | gzip > FILE.gz))"],
  ['scenarios-bad-name.json', ['compare', SMALL, '--scenarios', F, '--jobs', '1'], "fixtures/bad/scenarios-bad-name.json: field 'scenarios.0.name': bad variant name (expected a name of letters, digits and _ . + - (starting with a letter or digit), found 'a b')"],
  ['scenarios-deep.json', ['compare', SMALL, '--scenarios', F, '--jobs', '1'], "fixtures/bad/scenarios-deep.json:1: field '0.settings.x.0...': the scenarios file nests too deeply (expected at most 64 levels of [ and {)"],
  ['scenarios-unknown-key.json', ['compare', SMALL, '--scenarios', F, '--jobs', '1'], /^fixtures\/bad\/scenarios-unknown-key\.json: field 'max-bandwith': unknown setting in scenario a \(/],
  ['shard-deep.json', ['merge', F], "fixtures/bad/shard-deep.json:1: field 'definition.x.0.0...': the shard file nests too deeply (expected at most 64 levels of [ and {)"],
  ['shard-truncated.json', ['merge', F], "fixtures/bad/shard-truncated.json:1: the shard file is not valid JSON (expected a JSON file written by compare/grid --shard (schema migtrace.shard/1), found Expected double-quoted property name in JSON at position 71)"],
  ['shard-wrong-schema.json', ['merge', F], "fixtures/bad/shard-wrong-schema.json: field 'schema': not a shard file (expected the output of compare/grid --shard i/n (schema migtrace.shard/1), found Invalid input: expected \"migtrace.shard/1\")"],
  ['sidecar-bad.csv', ['convert', F, O('o.jsonl')], "fixtures/bad/sidecar-bad.json:5: the sidecar header is not valid JSON (expected one JSON object, found Expected double-quoted property name in JSON at position 60)"],
  ['sidecar-bom.csv', ['convert', F, O('o.jsonl')], undefined],
  ['spec-array.json', ['generate', '--spec', F, '--out', O('g.csv')], "fixtures/bad/spec-array.json: a generator spec must be a JSON object (found an array)"],
  ['spec-deep.json', ['generate', '--spec', F, '--out', O('g.csv')], "fixtures/bad/spec-deep.json:3: field 'workloads.0.params.rate...': the spec file nests too deeply (expected at most 64 levels of [ and {)"],
  ['spec-negative-rate.json', ['generate', '--spec', F, '--out', O('g.csv')], "fixtures/bad/spec-negative-rate.json: field 'workloads.0.params.rate': invalid parameter value (expected a non-negative number of events per second, found '-5')"],
  ['spec-too-many-events.json', ['generate', '--spec', F, '--out', O('g.csv')], "fixtures/bad/spec-too-many-events.json: field '--max-events': the spec asks for more events than the limit (expected at most 1.00e9 events (raise the limit with --max-events N), found 6.48e16)"],
  ['spec-trailing-comma.json', ['generate', '--spec', F, '--out', O('g.csv')], "fixtures/bad/spec-trailing-comma.json:4: the spec file is not valid JSON (expected a generator spec: one JSON object (see docs/generate.md), found Expected double-quoted property name in JSON at position 40)"],
  ['spec-unknown-workload.json', ['generate', '--spec', F, '--out', O('g.csv')], "fixtures/bad/spec-unknown-workload.json: field 'workloads.0.workload': unknown workload (expected idle, uniform, sequential, once, hotset, zipf, phases, database, reads, dma-device, vhost-net, virtio-mem, malicious, found 'uniformm')"],
  ['stats-array.json', ['import:qemu', QEMU_LOG, '--stats', F, '--out', O('o.csv')], "fixtures/bad/stats-array.json: not a query-migrate reply (expected a JSON object, found an array)"],
  ['stats-deep.json', ['import:qemu', QEMU_LOG, '--stats', F, '--out', O('o.csv')], "fixtures/bad/stats-deep.json:1: field 'ram.transferred.0.0...': the query-migrate file nests too deeply (expected at most 64 levels of [ and {)"],
  ['stats-no-status.json', ['import:qemu', QEMU_LOG, '--stats', F, '--out', O('o.csv')], "fixtures/bad/stats-no-status.json: field 'status': not a query-migrate reply (expected a migration status string such as \"completed\")"],
  ['utf16.csv', ['convert', F, O('o.jsonl')], "fixtures/bad/utf16.csv: UTF-16 text: a trace is UTF-8 (expected UTF-8 (convert with: iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8))"],
]
