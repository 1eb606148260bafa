import { useLayoutEffect, useRef } from 'react'
import { ProposalReview, type Acceptance } from '@/features/collab'
import type { TreeNode } from '@/lib/protocol'
import type { SessionSocket } from '@/lib/ws-client'
import type { ProposalSelection } from './use-proposal-selection'

export interface ProposalAreaProps {
  client: SessionSocket
  tree: TreeNode | null
  canDecide: boolean
  selection: ProposalSelection
  className?: string
}

/** The open proposals of the session, each with its changes and the decision buttons. */
export function ProposalArea({ client, tree, canDecide, selection, className }: ProposalAreaProps) {
  const { proposals, selectedOf, setSelected, setHovered } = selection
  const area = useRef<HTMLDivElement>(null)
  /** The proposal the keyboard focus is in, if any. */
  const focusedIn = useRef<string | null>(null)

  // Decided (here or by someone else), a proposal goes with the button or checkbox that had the focus: the focus
  // moves on to the next open proposal, else to the tree, where the accepted changes are.
  useLayoutEffect(() => {
    const id = focusedIn.current
    if (id === null || proposals.some((p) => p.id === id)) return
    focusedIn.current = null
    const owner = document.activeElement
    if (owner !== null && owner !== document.body) return // it went somewhere on purpose
    const next = area.current?.querySelector<HTMLElement>('button:not(:disabled), input:not(:disabled)')
    ;(next ?? document.querySelector<HTMLElement>('#main [role="tree"]'))?.focus()
  }, [proposals])

  if (proposals.length === 0) return null
  return (
    <div
      ref={area}
      className={className}
      onBlur={(e) => {
        // Left for another element (a removed one leaves with no related target: still ours to move on).
        if (e.relatedTarget && !e.currentTarget.contains(e.relatedTarget)) focusedIn.current = null
      }}
    >
      <div className="flex flex-col gap-2">
        {proposals.map((p) => (
          <div key={p.id} onFocus={() => (focusedIn.current = p.id)}>
            <ProposalReview
              proposal={p}
              tree={tree}
              selected={selectedOf(p)}
              onSelectedChange={(s) => setSelected(p.id, s)}
              canDecide={canDecide}
              onDecide={(accept: Acceptance) => void client.send('proposal_decision', { proposal_id: p.id, accept })}
              onHoverChange={(index) => setHovered(index === null ? null : { proposal: p, index })}
            />
          </div>
        ))}
      </div>
    </div>
  )
}
