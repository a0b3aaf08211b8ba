/** Messages between the sweep runner and its worker threads (structured-clone friendly). */
import type {Driver} from '../replay/index.js'
import type {UserErrorDetails} from '../util/errors.js'
import type {ItemResult, Overrides} from './sweep.js'

/** A group of items of one trace, replayed in one pass (each batch decoded once for all). */
export interface JobMessage {
  items: {index: number; name: string; overrides: Overrides}[]
  trace: string
  driver: Driver
  /** Post {progress} messages while the replay reads its trace. */
  progress?: boolean
  /** Keep the run's iterations in the result (compare --html). */
  series?: boolean
}

export type ReplyMessage =
  | {progress: number}
  | {ok: true; results: ItemResult[]}
  | {ok: false; index: number; userError?: {reason: string; details: UserErrorDetails}; message: string; stack?: string}
