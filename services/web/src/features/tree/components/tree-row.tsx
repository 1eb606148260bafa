import { memo, useEffect, useRef, type DragEvent, type ReactNode } from 'react'
import { ChevronDownIcon, ChevronRightIcon, PencilIcon, PlusIcon, Trash2Icon } from 'lucide-react'
import type { TreeNode } from '@/lib/protocol'
import { cn } from '@/lib/utils'
import type { RowChange, RowRing } from '../model/decorations'

export const ROW_HEIGHT = 32
export const INDENT = 18

export type DropPosition = 'before' | 'inside' | 'after'
/** After an edit: Enter on a new node adds the next sibling; Tab / Shift+Tab indent / outdent. */
export type EditNext = 'next' | 'indent' | 'outdent'

/** What a row asks of the view; one stable object for every row, so rows re-render only when their own props change. */
export interface RowActions {
  focus(index: number): void
  toggle(index: number): void
  edit(index: number): void
  addChild(index: number): void
  remove(index: number): void
  moveAmong(index: number, by: -1 | 1): void
  /** The editor closed: `value` null when cancelled; `then` what Enter / Tab / Shift+Tab asked for next. */
  submitEdit(index: number, value: string | null, then?: EditNext): void
  dragStart(index: number): void
  dragOver(index: number, position: DropPosition): void
  drop(index: number, position: DropPosition): void
  dragEnd(): void
  /** A proposed change's checkbox on a row was (un)ticked. */
  toggleChange(proposalId: string, index: number, on: boolean): void
}

export interface TreeRowProps {
  node: TreeNode
  index: number
  depth: number
  /** null: a leaf (no aria-expanded). */
  expanded: boolean | null
  focused: boolean
  editing: boolean
  lit: boolean
  drop: DropPosition | null
  domId: string
  actions: RowActions
  /** No edit affordances (a viewer): no row buttons, no drag, no inline editor. */
  readOnly: boolean
  /** Other people who have this node selected (a coloured ring). */
  rings?: readonly RowRing[]
  /** An open proposal's changes to this node (the diff overlay). */
  changes?: readonly RowChange[]
}

function dropPosition(e: DragEvent<HTMLElement>, leafOrRoot: 'root' | 'any'): DropPosition {
  const box = e.currentTarget.getBoundingClientRect()
  const y = (e.clientY - box.top) / (box.height || ROW_HEIGHT)
  if (leafOrRoot === 'root') return 'inside'
  if (y < 0.25) return 'before'
  if (y > 0.75) return 'after'
  return 'inside'
}

/** The chevron that shows or hides a row's children (null: a leaf, none). */
export function Chevron({ expanded, onToggle }: { expanded: boolean | null; onToggle: () => void }) {
  return (
    <span className="flex size-5 shrink-0 items-center justify-center">
      {expanded !== null && (
        <button
          type="button"
          tabIndex={-1}
          aria-hidden
          className="rounded-sm text-muted-foreground hover:text-foreground"
          onClick={(e) => {
            e.stopPropagation()
            onToggle()
          }}
        >
          {expanded ? <ChevronDownIcon className="size-4" /> : <ChevronRightIcon className="size-4" />}
        </button>
      )}
    </span>
  )
}

/** A row: role=treeitem named by the node's value, positioned by the view. */
export const TreeRow = memo(function TreeRow({
  node,
  index,
  depth,
  expanded,
  focused,
  editing,
  lit,
  drop,
  domId,
  actions,
  readOnly,
  rings,
  changes,
}: TreeRowProps) {
  const props = node.props ? Object.entries(node.props) : []
  const removed = changes?.find((c) => c.kind === 'removed')
  const moved = changes?.find((c) => c.kind === 'moved')
  const updated = changes?.find((c) => c.kind === 'updated')
  const ring = rings?.[0]
  const propsId = `${domId}-props`
  const where = depth === 0 ? 'root' : 'any'
  return (
    <div
      id={domId}
      role="treeitem"
      aria-level={depth + 1}
      aria-expanded={expanded ?? undefined}
      aria-selected={focused}
      aria-label={node.value}
      aria-describedby={props.length ? propsId : undefined}
      data-highlight={lit || undefined}
      data-proposal={changes ? changes.map((c) => c.kind).join(' ') : undefined}
      title={rings ? `Selected by ${rings.map((r) => r.username).join(', ')}` : undefined}
      draggable={!readOnly && depth > 0 && !editing}
      onClick={() => actions.focus(index)}
      onDragStart={(e) => {
        e.dataTransfer.effectAllowed = 'move'
        e.dataTransfer.setData('text/plain', node.id)
        actions.dragStart(index)
      }}
      onDragOver={(e) => {
        e.preventDefault()
        actions.dragOver(index, dropPosition(e, where))
      }}
      onDrop={(e) => {
        e.preventDefault()
        actions.drop(index, dropPosition(e, where))
      }}
      onDragEnd={() => actions.dragEnd()}
      style={{
        top: index * ROW_HEIGHT,
        height: ROW_HEIGHT,
        paddingLeft: depth * INDENT,
        // Someone else's selection: a ring in their colour (the first, when several).
        boxShadow: ring ? `inset 0 0 0 2px ${ring.color}` : undefined,
      }}
      className={cn(
        'group absolute inset-x-0 flex cursor-default items-center gap-1 pr-2 text-sm transition-colors duration-700',
        'hover:bg-accent/60 aria-selected:bg-accent',
        focused && 'ring-2 ring-ring/60 ring-inset',
        lit && 'bg-amber-200/70 duration-0 dark:bg-amber-500/30',
        drop === 'inside' && 'bg-primary/10',
        drop === 'before' && 'shadow-[inset_0_2px_0_0_var(--color-primary)]',
        drop === 'after' && 'shadow-[inset_0_-2px_0_0_var(--color-primary)]',
        moved && 'border border-dashed border-sky-500/70 opacity-60',
      )}
    >
      <Chevron expanded={expanded} onToggle={() => actions.toggle(index)} />
      {editing ? (
        <EditValue value={node.value} onDone={(v, then) => actions.submitEdit(index, v, then)} />
      ) : (
        <span
          className={cn(
            'truncate',
            removed?.checked && 'text-red-600 line-through dark:text-red-400',
            updated?.checked && 'text-muted-foreground line-through',
          )}
          onDoubleClick={() => actions.edit(index)}
        >
          {node.value}
        </span>
      )}
      {changes && !editing && (
        <span className="flex min-w-0 shrink-0 items-center gap-1.5">
          {removed && <ChangeBox change={removed} actions={actions} label="remove" tone="red" disabled={readOnly} />}
          {updated && <ChangeBox
              change={updated}
              actions={actions}
              label={`→ ${updated.detail}`}
              tone="amber"
              disabled={readOnly}
            />}
          {moved && <ChangeBox change={moved} actions={actions} label={moved.detail} tone="sky" disabled={readOnly} />}
        </span>
      )}
      {props.length > 0 && !editing && (
        // The chips draw their text from CSS (::before), so the row's visible text is its value alone, as its
        // name says (axe: label-content-name-mismatch); the props are its description, in plain text.
        <span className="flex min-w-0 shrink items-center gap-1 overflow-hidden">
          <span id={propsId} className="sr-only">
            {props.map(([k, v]) => `${k}: ${String(v)}`).join(', ')}
          </span>
          {props.map(([k, v]) => (
            <span
              key={k}
              aria-hidden
              data-chip={`${k}: ${String(v)}`}
              className="shrink-0 rounded border bg-muted px-1 font-mono text-[11px] text-muted-foreground before:content-[attr(data-chip)]"
            />
          ))}
        </span>
      )}
      {!editing && !readOnly && (
        <span className="ml-auto hidden shrink-0 items-center gap-0.5 pl-2 group-hover:flex group-aria-selected:flex">
          <RowAction label={`Add child to ${node.value}`} onClick={() => actions.addChild(index)}>
            <PlusIcon className="size-3.5" />
          </RowAction>
          <RowAction label={`Rename ${node.value}`} onClick={() => actions.edit(index)}>
            <PencilIcon className="size-3.5" />
          </RowAction>
          {depth > 0 && (
            <RowAction label={`Delete ${node.value}`} onClick={() => actions.remove(index)}>
              <Trash2Icon className="size-3.5" />
            </RowAction>
          )}
        </span>
      )}
    </div>
  )
})

const TONES = {
  green: 'border-emerald-600/50 bg-emerald-500/15 text-emerald-800 dark:text-emerald-300',
  red: 'border-red-600/50 bg-red-500/10 text-red-700 dark:text-red-300',
  amber: 'border-amber-600/50 bg-amber-500/15 text-amber-800 dark:text-amber-300',
  sky: 'border-sky-600/50 bg-sky-500/10 text-sky-800 dark:text-sky-300',
} as const

/** One proposed change on a row: a chip in its colour with the change's checkbox. */
export function ChangeBox({
  change,
  actions,
  label,
  tone,
  disabled,
}: {
  change: RowChange
  actions: RowActions
  label: string
  tone: keyof typeof TONES
  /** A viewer sees the proposal but does not decide on it. */
  disabled: boolean
}) {
  return (
    <label
      className={cn(
        'flex max-w-48 items-center gap-1 rounded border px-1 text-xs',
        TONES[tone],
        !change.checked && 'opacity-60 line-through',
      )}
      onClick={(e) => e.stopPropagation()}
    >
      <input
        type="checkbox"
        aria-label={`Accept: ${change.description}`}
        checked={change.checked}
        disabled={disabled}
        onChange={(e) => actions.toggleChange(change.proposalId, change.index, e.target.checked)}
        className="size-3 accent-emerald-600"
      />
      <span className="truncate">{label}</span>
    </label>
  )
}

function RowAction({ label, onClick, children }: { label: string; onClick: () => void; children: ReactNode }) {
  return (
    <button
      type="button"
      tabIndex={-1}
      aria-label={label}
      title={label}
      className="rounded-sm p-1 text-muted-foreground hover:bg-background hover:text-foreground"
      onClick={(e) => {
        e.stopPropagation()
        onClick()
      }}
    >
      {children}
    </button>
  )
}

/** The inline editor: Enter or blur submits, Escape cancels (`onDone(null)`), Tab / Shift+Tab submit and indent / outdent. */
function EditValue({ value, onDone }: { value: string; onDone: (value: string | null, then?: EditNext) => void }) {
  const input = useRef<HTMLInputElement>(null)
  const done = useRef(false)
  useEffect(() => {
    input.current?.focus()
    input.current?.select()
  }, [])
  const finish = (v: string | null, then?: EditNext) => {
    if (done.current) return
    done.current = true
    onDone(v, then)
  }
  return (
    <input
      ref={input}
      aria-label="Node value"
      defaultValue={value}
      placeholder="New node"
      maxLength={500}
      className="h-6 min-w-0 flex-1 rounded border border-input bg-background px-1 text-sm outline-none focus-visible:ring-2 focus-visible:ring-ring/50"
      onClick={(e) => e.stopPropagation()}
      onBlur={() => finish(input.current?.value ?? '')}
      onKeyDown={(e) => {
        e.stopPropagation()
        if (e.key === 'Escape') finish(null)
        else if (e.key === 'Enter' && !e.nativeEvent.isComposing) finish(input.current?.value ?? '', 'next')
        else if (e.key === 'Tab') {
          e.preventDefault() // editing: Tab indents (the outliner habit) instead of leaving the tree
          finish(input.current?.value ?? '', e.shiftKey ? 'outdent' : 'indent')
        }
      }}
    />
  )
}
