// Types for the message-level parts of @uwdata/flechette's Arrow IPC encoder. Its public API
// encodes whole tables at once; a trace is written batch by batch with bounded memory, which needs
// the pieces tableToIPC is made of. They are plain modules of the package (no `exports` map), the
// version is pinned exactly in package.json, and the package ships their declarations under
// dist/types: this file only maps the source paths onto them.
declare module '@uwdata/flechette/src/encode/builder.js' {
  export * from '@uwdata/flechette/dist/types/encode/builder.js'
}
declare module '@uwdata/flechette/src/encode/message.js' {
  export * from '@uwdata/flechette/dist/types/encode/message.js'
}
declare module '@uwdata/flechette/src/encode/schema.js' {
  export * from '@uwdata/flechette/dist/types/encode/schema.js'
}
declare module '@uwdata/flechette/src/encode/record-batch.js' {
  export * from '@uwdata/flechette/dist/types/encode/record-batch.js'
}
declare module '@uwdata/flechette/src/encode/dictionary-batch.js' {
  export * from '@uwdata/flechette/dist/types/encode/dictionary-batch.js'
}
declare module '@uwdata/flechette/src/encode/footer.js' {
  export * from '@uwdata/flechette/dist/types/encode/footer.js'
}
declare module '@uwdata/flechette/src/decode/schema.js' {
  export * from '@uwdata/flechette/dist/types/decode/schema.js'
}
declare module '@uwdata/flechette/src/decode/message.js' {
  export * from '@uwdata/flechette/dist/types/decode/message.js'
}
