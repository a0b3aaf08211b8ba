/** Messages between the sweep runner and its worker threads (structured-clone friendly). */
import type {Driver} from '../replay/index.js'
import type {UserErrorDetails} from '../util/errors.js'
import type {ItemResult, Overrides} from './sweep.js'

export interface JobMessage {
  index: number
  name: string
  trace: string
  driver: Driver
  overrides: Overrides
  /** Post {index, progress} messages while the replay reads its trace. */
  progress?: boolean
  /** Keep the run's iterations in the result (compare --html). */
  series?: boolean
}

export type ReplyMessage =
  | {index: number; progress: number}
  | {index: number; ok: true; result: ItemResult}
  | {index: number; ok: false; userError?: {reason: string; details: UserErrorDetails}; message: string; stack?: string}
