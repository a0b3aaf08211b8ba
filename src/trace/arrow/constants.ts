/**
 * The names and numbers of the Arrow form of a trace that readers and writers share (schema.ts
 * documents the format), in a module of their own: the reader's thread (trace/read/pipeline.ts)
 * loads the read path without flechette's builders or the schema code.
 */

export const ARROW_HEADER_KEY = 'migtrace.header'
export const ARROW_KINDS_KEY = 'migtrace.kinds'

/** "ARROW1" and two bytes of padding: the start (and, without the padding, the end) of an Arrow file. */
export const ARROW_FILE_MAGIC = Uint8Array.of(65, 82, 82, 79, 87, 49)

/** Columns stored as int64 (batch columns of the same name, Float64Array with -1 for "not set"). */
export const WIDE_FIELDS = ['gpa', 'iova', 'len', 'page', 'count', 'value'] as const
export type WideField = (typeof WIDE_FIELDS)[number]
