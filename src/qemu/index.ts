/**
 * Talking to QEMU: a QMP client (qmp.ts) and a process launcher (process.ts). Both are generic
 * (nothing lab-specific), for the lab driver (src/lab/) and the recorder alike.
 */
export {QmpClient, QmpError, QmpCommandError, QmpTimeoutError, QmpClosedError, QmpProtocolError} from './qmp.js'
export type {QmpEvent, QmpGreeting, QmpConnectOptions, ExecuteOptions} from './qmp.js'
export {QemuProcess, QemuStartError, QemuConsoleWaitError, describeExit, findExecutable, liveQemuProcesses} from './process.js'
export type {QemuExit, QemuSpawnOptions, ConsoleLine} from './process.js'
export {hostNowUs, formatHostUs} from './host-clock.js'
