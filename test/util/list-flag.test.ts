import test from 'ava'
import {listFlagItems} from '../../src/util/list-flag.js'
import {gridAxes} from '../../src/compare/grid-doc.js'
import {parseConditions} from '../../src/compare/fail-if.js'
import {UserError} from '../../src/util/errors.js'

test('list flags: items from every occurrence, trimmed', (t) => {
  t.deepEqual(listFlagItems(['1G, 2.5G', '10G'], '--bandwidth', '1G,10G'), ['1G', '2.5G', '10G'])
})

test('list flags: an empty item is refused, naming the flag and the value', (t) => {
  for (const bad of ['1G,,10G', '1G,10G,', ',1G', '', ' , '])
    t.is(t.throws(() => listFlagItems(['5G', bad], '--bandwidth', '1G,2.5G,10G'), {instanceOf: UserError}).message, `field '--bandwidth': an empty item in a comma-separated list (expected items separated by single commas, e.g. 1G,2.5G,10G, found ${bad === '' ? 'an empty value' : `'${bad}'`})`)
})

test('grid --bandwidth 1G/s,,10G/s and --downtime 1s, and --fail-if with an empty condition are refused', (t) => {
  t.is(t.throws(() => gridAxes(['1G/s,,10G/s'], ['1s']), {instanceOf: UserError}).message, "field '--bandwidth': an empty item in a comma-separated list (expected items separated by single commas, e.g. 1Gbit/s,2.5Gbit/s,10Gbit/s, found '1G/s,,10G/s')")
  t.is(t.throws(() => gridAxes(['1G/s'], ['1s,']), {instanceOf: UserError}).message, "field '--downtime': an empty item in a comma-separated list (expected items separated by single commas, e.g. 50ms,300ms,1s, found '1s,')")
  t.regex(t.throws(() => parseConditions(['redundant>0.05,,downtimeMs>3']), {instanceOf: UserError}).message, /^field '--fail-if': an empty item/)
  t.is(gridAxes(['1Gbit/s,10Gbit/s'], ['1s']).bandwidths.length, 2)
})
