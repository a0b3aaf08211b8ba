
import {AtomicOutput} from './src/io/atomic-output.ts'
import {installInterruptHandler} from './src/io/interrupt.ts'
installInterruptHandler()
const out = new AtomicOutput('the trace')
out.writeFile(process.argv[2] + '/new/sub/a.csv', 'a')
const s = out.createStream(process.argv[2] + '/b.csv')
s.write('b')
process.stdout.write('ready\n')
setInterval(() => s.write('more'), 5)
