// `tandem-sync/testing`: a deterministic harness for code that uses Tandem.
export { createTestCollection } from './createTestCollection.js'
export type { SyncControl, TestCollection, TestCollectionOptions } from './createTestCollection.js'
