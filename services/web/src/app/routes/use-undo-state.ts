import { useEffect, useState } from 'react'
import type { SessionSocket } from '@/lib/ws-client'

export interface UndoAvailability {
  canUndo: boolean
  canRedo: boolean
}

const NOTHING: UndoAvailability = { canUndo: false, canRedo: false }

/**
 * Whether this user has anything to undo or redo in the attached session: the server's `undo_state` frames
 * (per user, on attach and whenever it changes; docs/protocol.md). They leave turns out: the dashboard also
 * turns both off while the chat shows a turn running. Nothing until the session's first one
 * arrives, and nothing for a session other than `sessionId` (a switch in progress).
 */
export function useUndoState(client: SessionSocket, sessionId: string | null): UndoAvailability {
  const [state, setState] = useState<{ sessionId: string | null } & UndoAvailability>({ sessionId: null, ...NOTHING })
  useEffect(
    () =>
      client.onFrame((frame) => {
        if (frame.type !== 'undo_state') return
        setState({
          sessionId: frame.session_id ?? client.getSnapshot().sessionId,
          canUndo: frame.data.can_undo === true,
          canRedo: frame.data.can_redo === true,
        })
      }),
    [client],
  )
  return state.sessionId !== null && state.sessionId === sessionId ? state : NOTHING
}
