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
 *
 * `catchUpTree` renders the tree the feed holds back for the next animation frame: called right before a
 * decided proposal is dispatched, both land in one render (see below).
 */
export function useCollabFrames(
  client: SessionSocket,
  dispatch: Dispatch<CollabAction>,
  catchUpTree: () => void,
): void {
  const queryClient = useQueryClient()
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null
    const off = client.onFrame((frame) => {
      // A decision's tree_updates come before its proposal_resolved (docs/protocol.md), but the tree feed
      // renders them a frame later while this state changes at once: the proposed rows would go a render
      // before their accepted nodes arrive (a flicker, and a focused proposed row's hand-over would find no
      // node and fall back to its parent). Caught up in this task, React renders both together.
      if (frame.type === 'proposal_resolved') catchUpTree()
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
  }, [client, dispatch, queryClient, catchUpTree])
}
