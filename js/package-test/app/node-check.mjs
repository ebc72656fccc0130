// The installed package in Node (as in an app's Vitest tests): the runtime loads from disk and
// the testing harness runs.
import { NonRetriableError } from 'tandem-sync'
import { createTestCollection } from 'tandem-sync/testing'

const { collection, syncControl } = createTestCollection({ initialData: [{ id: 'a', n: 0 }] })
await syncControl.loaded
await collection.update('a', { n: 1 }).settled()
syncControl.failNextPersist(new NonRetriableError('no'))
const failed = await collection.insert({ id: 'b' }).settled().then(() => false, (error) => error.name === 'TransactionFailedError')
if (collection.get('a')?.n !== 1 || syncControl.serverData().get('a')?.n !== 1 || !failed || collection.get('b')) {
  throw new Error(`unexpected state: ${JSON.stringify(collection.snapshot())}`)
}
console.log('node: ok')
