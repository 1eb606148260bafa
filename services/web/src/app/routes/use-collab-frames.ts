import { useEffect, type Dispatch } from 'react'
import { useQueryClient } from '@tanstack/react-query'
import type { CollabAction } from '@/features/collab'
import { historyKeys } from '@/features/history'
import type { SessionSocket } from '@/lib/ws-client'

/** Changes arriving closer together than this refresh the history panel once. */
const HISTORY_REFRESH_MS = 300

/**
 * Feeds the session's frames to the collaboration state (role, presence,
 * proposals) and refreshes the history panel's query after changes (one
 * refetch per burst: an assistant turn sends many `tree_update`s).
 */
export function useCollabFrames(client: SessionSocket, dispatch: Dispatch<CollabAction>): void {
  const queryClient = useQueryClient()
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null
    const off = client.onFrame((frame) => {
      dispatch({ type: 'frame', frame })
      if (frame.type !== 'tree_update' && frame.type !== 'proposal_resolved') return
      if (timer) return
      timer = setTimeout(() => {
        timer = null
        const id = client.getSnapshot().sessionId
        if (id) void queryClient.invalidateQueries({ queryKey: historyKeys.session(id) })
      }, HISTORY_REFRESH_MS)
    })
    return () => {
      off()
      if (timer) clearTimeout(timer)
    }
  }, [client, dispatch, queryClient])
}
