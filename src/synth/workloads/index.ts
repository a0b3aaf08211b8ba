/** Every workload the generator knows, by name (the order is the documentation's). */
import {dmaDevice, malicious, vhostNet, virtioMem} from './devices.js'
import {database, hotset, idle, onceWorkload, phases, reads, sequential, uniform, zipf} from './memory.js'
import type {WorkloadDef} from './types.js'

export const WORKLOADS: readonly WorkloadDef[] = [idle, uniform, sequential, onceWorkload, hotset, zipf, phases, database, reads, dmaDevice, vhostNet, virtioMem, malicious]

export const WORKLOAD_NAMES = WORKLOADS.map((w) => w.name) as [string, ...string[]]

export function workloadByName(name: string): WorkloadDef | undefined {
  return WORKLOADS.find((w) => w.name === name)
}

export type {WorkloadDef, WorkloadContext, HeaderBuilder, Placement, Region} from './types.js'
