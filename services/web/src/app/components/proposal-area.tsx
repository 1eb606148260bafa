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
  if (proposals.length === 0) return null
  return (
    <div className={className}>
      <div className="flex flex-col gap-2">
        {proposals.map((p) => (
          <ProposalReview
            key={p.id}
            proposal={p}
            tree={tree}
            selected={selectedOf(p)}
            onSelectedChange={(s) => setSelected(p.id, s)}
            canDecide={canDecide}
            onDecide={(accept: Acceptance) => void client.send('proposal_decision', { proposal_id: p.id, accept })}
            onHoverChange={(index) => setHovered(index === null ? null : { proposal: p, index })}
          />
        ))}
      </div>
    </div>
  )
}
