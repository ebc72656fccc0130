import { useCallback, useSyncExternalStore } from 'react'
import type { TandemClient } from '../../wasm/tandem.js'
import { Collection, findCollection } from '../collection.js'
import { hasOwnStatus } from '../syncStatus.js'
import type { SyncConfig, SyncStatus, SyncStatusSource } from '../types.js'

const NOT_STARTED: SyncStatusSource = {
  status: () => 'started',
  subscribeStatus: () => () => {},
}

/**
 * The status of a sync: `'started' | 'syncing' | 'paused' | 'error'`. A sync config that
 * reports its own status (`status()` and `subscribeStatus()`, as `tandemServer` does) is asked;
 * for any other, it is `'started'` until the setup of its collection resolved, then
 * `'syncing'` (`'error'` if the setup failed). Pass the config a collection was created with,
 * or the collection.
 */
export function useSyncStatus<T extends object>(
  sync: SyncConfig<T> | Collection<T>,
  client?: TandemClient,
): SyncStatus {
  const source = statusSource(sync, client)
  const subscribe = useCallback((onChange: () => void) => source.subscribeStatus(onChange), [source])
  const getSnapshot = useCallback(() => source.status(), [source])
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot)
}

function statusSource<T extends object>(sync: SyncConfig<T> | Collection<T>, client?: TandemClient): SyncStatusSource {
  if (sync instanceof Collection) return sync.syncStatus
  if (hasOwnStatus(sync)) return sync
  return findCollection(sync.id, client)?.syncStatus ?? NOT_STARTED
}
