// The WebAssembly runtime, initialised once, when this module is first imported, so that every
// other module can use it synchronously (hooks cannot await). Browsers fetch the module next
// to the glue (bundlers such as Vite follow the `new URL(…, import.meta.url)`); Node — and so
// Vitest, also with jsdom — reads the bytes from disk.
import init, { initSync } from '../wasm/tandem.js'

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string'
if (isNode) {
  // Both kept out of sight of bundlers and of Vitest's transforms, which would turn the URL
  // into a dev-server one: Node reads the file next to this module.
  const fsModule = 'node:fs'
  const wasmPath = '../wasm/tandem_bg.wasm'
  const fs = (await import(/* @vite-ignore */ fsModule)) as typeof import('node:fs')
  initSync({ module: fs.readFileSync(new URL(wasmPath, import.meta.url)) })
} else {
  await init({ module_or_path: new URL('../wasm/tandem_bg.wasm', import.meta.url) })
}

export { TandemClient } from '../wasm/tandem.js'
export type { Collection as RuntimeCollection } from '../wasm/tandem.js'
