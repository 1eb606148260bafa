import { useMemo } from 'react'
import { CheckIcon, XIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import type { ProposalData, TreeNode } from '@/lib/protocol'
import { cn } from '@/lib/utils'
import { describeDelta, nameLookup, prerequisites, withoutDependents, withPrerequisites } from '../model/proposal'

export type Acceptance = 'all' | number[]

export interface ProposalReviewProps {
  proposal: ProposalData
  tree: TreeNode | null
  /** The ticked deltas (the app keeps them, so the tree overlay shows the same ticks). */
  selected: ReadonlySet<number>
  onSelectedChange: (selected: Set<number>) => void
  /** False for a viewer: the changes are listed, nothing can be decided. */
  canDecide: boolean
  onDecide: (accept: Acceptance) => void
  /** Hovering a change: its index (the tree highlights its node), or null. */
  onHoverChange?: (index: number | null) => void
  className?: string
}

/**
 * An open proposal of the assistant (review mode): its changes, each with a
 * checkbox, and Accept all / Reject all / Accept selected. Ticking a change
 * ticks what it needs (a child needs its added parent); unticking one unticks
 * what needs it, so that a decision is never refused for a missing dependency.
 */
export function ProposalReview({
  proposal,
  tree,
  selected,
  onSelectedChange,
  canDecide,
  onDecide,
  onHoverChange,
  className,
}: ProposalReviewProps) {
  const needs = useMemo(() => prerequisites(proposal.deltas), [proposal.deltas])
  const lines = useMemo(() => {
    const nameOf = nameLookup(tree, proposal.deltas)
    return proposal.deltas.map((d) => describeDelta(d, nameOf))
  }, [tree, proposal.deltas])
  const count = proposal.deltas.length

  function toggle(index: number, on: boolean) {
    onSelectedChange(on ? withPrerequisites(selected, index, needs) : withoutDependents(selected, index, needs))
  }

  return (
    <section
      aria-label={`Proposal from ${proposal.author.username}`}
      className={cn('flex flex-col gap-2 rounded-md border border-amber-500/50 bg-amber-500/5 p-2', className)}
    >
      <header className="flex flex-wrap items-baseline gap-x-2 text-sm">
        <span className="font-medium">
          {proposer(proposal.author)} proposes {count} {count === 1 ? 'change' : 'changes'}
        </span>
        <span className="text-muted-foreground">{proposal.summary}</span>
      </header>
      <ul className="flex max-h-40 flex-col gap-0.5 overflow-y-auto text-sm">
        {lines.map((line, i) => (
          <li key={i} onMouseEnter={() => onHoverChange?.(i)} onMouseLeave={() => onHoverChange?.(null)}>
            <label className="flex items-center gap-2">
              <input
                type="checkbox"
                checked={selected.has(i)}
                disabled={!canDecide}
                onChange={(e) => toggle(i, e.target.checked)}
                className="size-4 accent-emerald-600"
              />
              <span className={cn(!selected.has(i) && 'text-muted-foreground line-through')}>{line}</span>
            </label>
          </li>
        ))}
      </ul>
      {canDecide ? (
        <div className="flex flex-wrap gap-2">
          <Button size="sm" onClick={() => onDecide('all')}>
            <CheckIcon aria-hidden />
            Accept all
          </Button>
          <Button size="sm" variant="outline" onClick={() => onDecide([])}>
            <XIcon aria-hidden />
            Reject all
          </Button>
          <Button
            size="sm"
            variant="secondary"
            disabled={selected.size === 0}
            onClick={() => onDecide([...selected].sort((a, b) => a - b))}
          >
            Accept selected ({selected.size})
          </Button>
        </div>
      ) : (
        <p className="text-xs text-muted-foreground">An editor decides on this proposal.</p>
      )}
    </section>
  )
}

/** Who proposes: the user's assistant, an outside agent acting with the user's token, or the user's import. */
function proposer(author: ProposalData['author']): string {
  if (author.via === 'agent') return `${author.username}’s agent${author.name ? ` “${author.name}”` : ''}`
  if (author.via === 'import') return `${author.username}’s import${author.name ? ` (${author.name})` : ''}`
  return `${author.username}’s assistant`
}
