import { useCallback, useEffect, useRef } from 'react'
import type { SessionSocket } from '@/lib/ws-client'

/** Arrow keys move the selection fast: only where it rests after this long is sent. */
const SELECT_SETTLE_MS = 150

/**
 * The tab's selected node, for the others' rings: a `presence_update {selected}`
 * when the selection has rested (trailing, one frame per pause) and differs
 * from the last one sent.
 */
export function useSelectionPresence(client: SessionSocket): (id: string | null) => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const sent = useRef<string | null>(null)
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current)
    },
    [],
  )
  // A new session starts with nothing selected on the server's side.
  useEffect(() => client.onFrame((f) => void (f.type === 'session_ready' && (sent.current = null))), [client])
  return useCallback(
    (id: string | null) => {
      if (timer.current) clearTimeout(timer.current)
      timer.current = setTimeout(() => {
        timer.current = null
        if (id === sent.current) return
        sent.current = id
        client.send('presence_update', { selected: id })
      }, SELECT_SETTLE_MS)
    },
    [client],
  )
}
