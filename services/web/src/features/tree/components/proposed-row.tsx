import { memo } from 'react'
import { cn } from '@/lib/utils'
import type { ProposedNode } from '../model/decorations'
import { ChangeBox, Chevron, INDENT, ROW_HEIGHT, type RowActions } from './tree-row'

export interface ProposedRowProps {
  proposed: ProposedNode
  index: number
  depth: number
  expanded: boolean | null
  focused: boolean
  /** Emphasised (its change is hovered in the proposal's list). */
  lit: boolean
  domId: string
  actions: RowActions
  /** A viewer: the checkboxes show the selection but are disabled (an editor decides). */
  readOnly: boolean
}

/**
 * A node an open proposal adds (or a node it moves, at its new place): a green row in the tree where the node
 * would go, role=treeitem named "Proposed: <value>", with the change's checkbox. Not a node: no drag, no drop,
 * no edit, no row buttons, no details; the panel's keys and tools leave it alone (Space ticks its checkbox).
 */
export const ProposedRow = memo(function ProposedRow({
  proposed,
  index,
  depth,
  expanded,
  focused,
  lit,
  domId,
  actions,
  readOnly,
}: ProposedRowProps) {
  const { change } = proposed
  const moved = proposed.kind === 'moved'
  return (
    <div
      id={domId}
      role="treeitem"
      aria-level={depth + 1}
      aria-expanded={expanded ?? undefined}
      aria-selected={focused}
      aria-label={`Proposed: ${proposed.value}`}
      data-proposal={moved ? 'moved-here' : 'added'}
      data-checked={change.checked}
      data-highlight={lit || undefined}
      onClick={() => actions.focus(index)}
      style={{ top: index * ROW_HEIGHT, height: ROW_HEIGHT, paddingLeft: depth * INDENT }}
      className={cn(
        'group absolute inset-x-0 flex cursor-default items-center gap-1 pr-2 text-sm',
        'border border-dashed border-emerald-600/60 bg-emerald-500/10 text-emerald-900 dark:text-emerald-200',
        'hover:bg-emerald-500/20 aria-selected:bg-emerald-500/25',
        focused && 'ring-2 ring-ring/60 ring-inset',
        lit && 'bg-amber-200/70 dark:bg-amber-500/30',
        !change.checked && 'opacity-60',
      )}
    >
      <Chevron expanded={expanded} onToggle={() => actions.toggle(index)} />
      {proposed.box && (
        <input
          type="checkbox"
          aria-label={`Accept: ${change.description}`}
          checked={change.checked}
          disabled={readOnly}
          onClick={(e) => {
            // The row takes the focus (the tree's, as Space would tick it there): it is handed on when the row goes.
            e.stopPropagation()
            actions.focus(index)
          }}
          onChange={(e) => actions.toggleChange(change.proposalId, change.index, e.target.checked)}
          className="size-3.5 shrink-0 accent-emerald-600"
        />
      )}
      {/* The "+" / "moved here" marks come from CSS, so the visible text is the value the name ends with. */}
      <span
        aria-hidden
        data-mark={moved ? '↳' : '+'}
        className="shrink-0 font-mono text-xs text-emerald-700 before:content-[attr(data-mark)] dark:text-emerald-300"
      />
      <span className={cn('truncate', !change.checked && 'line-through')}>{proposed.value}</span>
      {moved && (
        <span
          aria-hidden
          data-chip="moved here"
          className="shrink-0 rounded border border-emerald-600/50 px-1 text-[11px] before:content-[attr(data-chip)]"
        />
      )}
      {proposed.more.length > 0 && (
        <span className="flex min-w-0 shrink-0 items-center gap-1.5">
          {proposed.more.map((c) => (
            <ChangeBox
              key={c.index}
              change={c}
              actions={actions}
              label={c.kind === 'removed' ? 'remove' : `→ ${c.detail}`}
              tone={c.kind === 'removed' ? 'red' : 'amber'}
              disabled={readOnly}
            />
          ))}
        </span>
      )}
    </div>
  )
})
