import { useMemo, useSyncExternalStore } from 'react'
import type { TandemRecord } from '../../wasm/tandem.js'
import { Collection, createCollection } from '../collection.js'
import type { CollectionConfig } from '../types.js'
import { withMutation } from '../withMutation.js'

export interface UseCollectionResult<T extends object = TandemRecord> {
  /** Every visible record by key; a new object only when the data changed. */
  data: Readonly<Record<string, T>>
  insert: Collection<T>['insert']
  update: Collection<T>['update']
  delete: Collection<T>['delete']
  /** Groups the mutations made inside `fn`, on any collections, into one transaction. */
  withMutation: typeof withMutation
  collection: Collection<T>
}

/**
 * A collection's data and mutations. Components using the same sync id (or collection id)
 * share one collection; the first configuration creates it. Accepts a collection too (e.g.
 * from `createTestCollection`). Re-renders only when the collection's data changes.
 */
export function useCollection<T extends object = TandemRecord>(
  source: CollectionConfig<T> | Collection<T>,
): UseCollectionResult<T> {
  // Creating in render is safe: the registry makes it idempotent, so StrictMode's double
  // render (and every later render) gets the same instance and starts its sync once.
  const collection = source instanceof Collection ? source : createCollection(source)
  const data = useSyncExternalStore(collection.subscribe, collection.snapshot, collection.snapshot)
  return useMemo(
    () => ({
      data,
      insert: collection.insert,
      update: collection.update,
      delete: collection.delete,
      withMutation,
      collection,
    }),
    [collection, data],
  )
}

