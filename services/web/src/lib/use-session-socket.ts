import { useEffect, useMemo, useState, useSyncExternalStore } from 'react'
import { SessionSocket, type SessionSnapshot, type SessionSocketOptions } from './ws-client'

/**
 * Creates one SessionSocket for the component's lifetime, starts it on mount
 * and stops it on unmount. Options are read once, at creation.
 *
 * While it waits to reconnect, the browser's `online` event and the tab
 * becoming visible end the wait at once. `client.reconnectNow()` is the same
 * action for a "Reconnect now" button.
 */
export function useSessionSocket(options: SessionSocketOptions): SessionSocket {
  const [client] = useState(() => new SessionSocket(options))
  useEffect(() => {
    client.start()
    const wake = () => {
      if (document.visibilityState === 'hidden' || client.getSnapshot().state !== 'reconnecting') return
      client.reconnectNow()
    }
    window.addEventListener('online', wake)
    document.addEventListener('visibilitychange', wake)
    return () => {
      window.removeEventListener('online', wake)
      document.removeEventListener('visibilitychange', wake)
      client.stop()
    }
  }, [client])
  return client
}

/** The client's snapshot (connection state, session id, tree, rev), re-rendering on change. */
export function useSessionSnapshot(client: SessionSocket): SessionSnapshot {
  return useSyncExternalStore(client.subscribe, client.getSnapshot, client.getSnapshot)
}

export interface SessionStatus {
  state: SessionSnapshot['state']
  offlineReason: SessionSnapshot['offlineReason']
  sessionId: string | null
  ready: boolean
}

/**
 * The connection's status alone: re-renders when it changes, not on every tree frame (the tree reads the
 * client through its own, frame-coalesced subscription: features/tree useTreeFeed).
 */
export function useSessionStatus(client: SessionSocket): SessionStatus {
  const state = useSyncExternalStore(client.subscribe, () => client.getSnapshot().state)
  const sessionId = useSyncExternalStore(client.subscribe, () => client.getSnapshot().sessionId)
  const ready = useSyncExternalStore(client.subscribe, () => client.getSnapshot().ready)
  const offlineReason = useSyncExternalStore(client.subscribe, () => client.getSnapshot().offlineReason)
  return useMemo(() => ({ state, offlineReason, sessionId, ready }), [state, offlineReason, sessionId, ready])
}
