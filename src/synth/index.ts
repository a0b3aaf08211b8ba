/** The synthetic trace generator: public API. */
export {synthesize, writeSynthTrace, outputTarget, GENERATOR_VERSION, type Synthesis, type WriteOptions, type WriteResult} from './generate.js'
export {parseSpec, readSpecFile, specFromFlags, type SynthSpec, type SimpleSpecFlags} from './spec.js'
export {WORKLOADS, WORKLOAD_NAMES, workloadByName} from './workloads/index.js'
export {Rng} from './prng.js'
export {ZipfSampler} from './zipf.js'
export {Permutation} from './permutation.js'
export {RateClock} from './clock.js'
