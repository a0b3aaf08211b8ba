/** Reading traces: `openTrace` is the entry point; the rest is for tools that need the pieces. */
export {openTrace, sidecarCandidates, type OpenTrace, type ReadOptions} from './open.js'
export {EventChecker} from './checks.js'
export {RowDecoder} from './decode.js'
