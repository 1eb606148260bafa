import { memo, useCallback, useEffect, useId, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react'
import { toast } from 'sonner'
import type { Delta, TreeNode } from '@/lib/protocol'
import { cn } from '@/lib/utils'
import type { TreeChangeInfo } from '../hooks/use-tree-feed'
import { useTreeRows, type TreeRows } from '../hooks/use-tree-rows'
import { treeKeyHandler, useUndoShortcuts, type TreeKeyTarget } from '../hooks/use-tree-shortcuts'
import {
  NO_CHANGES,
  NO_PROPOSED,
  NO_RINGS,
  type ProposedPlace,
  type RowChange,
  type RowRing,
} from '../model/decorations'
import { isProposedId, realChildren } from '../model/proposed'
import { ancestorsOf, parentRow, pathAt } from '../model/row-model'
import {
  besideDraft,
  draftParentPath,
  indentDraft,
  newDraft,
  outdentDraft,
  withDraft,
  type Draft,
} from '../model/draft'
import {
  downloadJson,
  moveDelta,
  removeDelta,
  renameDelta,
  valueProblem,
  type TreeOp,
} from '../model/tree-ops'
import { PropsDialog } from './props-dialog'
import { TreeToolbar } from './tree-toolbar'
import { ROW_HEIGHT, type DropPosition, type EditNext, type RowActions } from './tree-row'
import { childrenPath } from '@/lib/tree-engine'
import { TreeView, type TreeViewHandle } from './tree-view'
import { useElementHeight } from './use-element-height'

export interface TreePanelProps {
  tree: TreeNode | null
  rev: number
  /** Ids touched by the last update(s), highlighted briefly; `version` tells updates apart. */
  lastChange?: TreeChangeInfo | null
  /** A direct edit to send as `tree_op` (not applied locally). */
  onOp: (op: TreeOp) => void
  /**
   * Checks a delta against the current tree and the server's limits (the tree
   * engine's validation); returns why it would fail, or null. An edit that
   * fails is shown as an error and not sent.
   */
  validate?: (delta: Delta) => string | null
  onUndo: () => void
  onRedo: () => void
  /** Whether the server says this user has something to undo / redo (`undo_state`); when false, the button is
   * disabled and its shortcut does nothing. Left out: allowed. */
  canUndo?: boolean
  canRedo?: boolean
  /** A viewer's tree: browse, filter, export; no edits, no undo. */
  readOnly?: boolean
  /** The focused node changed (null: none), e.g. to tell the others through presence. */
  onSelect?: (id: string | null) => void
  /** Nodes to highlight while it is set (a hovered history entry). */
  emphasis?: readonly string[] | null
  /** Other people's selections, by node id. */
  rings?: ReadonlyMap<string, readonly RowRing[]>
  /** An open proposal's changes, by the node id whose row shows them. */
  changes?: ReadonlyMap<string, readonly RowChange[]>
  /** An open proposal's new nodes (and moved nodes' new places): shown as rows of their own, in green. */
  proposed?: readonly ProposedPlace[]
  /** A change's checkbox on a row was (un)ticked. */
  onToggleChange?: (proposalId: string, index: number, on: boolean) => void
  className?: string
}

const HIGHLIGHT_MS = 1600
/** Typing pauses shorter than this are one filter run; an empty filter applies at once. */
const FILTER_DEBOUNCE_MS = 100
const EMPTY: ReadonlySet<string> = new Set()
const noop = () => {}

function useDebounced(value: string, ms: number): string {
  const [applied, setApplied] = useState(value)
  useEffect(() => {
    const t = setTimeout(() => setApplied(value), value.trim() ? ms : 0)
    return () => clearTimeout(t)
  }, [value, ms])
  return applied
}

/** Row of the node `id` among rows `from` .. `to` - 1 (all by default), or -1. */
function rowOf(rows: TreeRows, id: string | null, from = 0, to = rows.nodes.length): number {
  if (id === null) return -1
  const nodes = rows.nodes
  const end = Math.min(to, nodes.length)
  for (let i = Math.max(from, 0); i < end; i++) if (nodes[i]!.id === id) return i
  return -1
}

/**
 * Where the focus goes if focused proposed row `at` disappears (its proposal decided): the node it stands for
 * (accepted, or a moved node wherever it ended up), else the nearest ancestor that is, or becomes, a node.
 */
function proposedFallbacks(rows: TreeRows, at: number): string[] {
  const ids: string[] = []
  for (let i = at; i >= 0; i = parentRow(rows.depths, i)) {
    const id = rows.nodes[i]!.id
    ids.push(rows.proposed.get(id)?.nodeId ?? id)
  }
  return ids
}

/**
 * The live tree: toolbar, the virtualised view and its keys. Memoised, with stable callbacks down to every
 * row, so chat activity and other state of the page never re-render it; a new tree re-renders it once per
 * animation frame at most (the feed coalesces), and only the rows in view.
 */
export const TreePanel = memo(function TreePanel({
  tree,
  rev,
  lastChange,
  onOp,
  validate,
  onUndo,
  onRedo,
  canUndo = true,
  canRedo = true,
  readOnly = false,
  onSelect,
  emphasis = null,
  rings = NO_RINGS,
  changes = NO_CHANGES,
  proposed = NO_PROPOSED,
  onToggleChange,
  className,
}: TreePanelProps) {
  const labelId = useId()
  const domPrefix = useId()
  const [filter, setFilter] = useState('')
  const [filterFocused, setFilterFocused] = useState(false)
  const [draft, setDraft] = useState<Draft | null>(null)
  // A node being added by hand shows in the tree before it is sent (see model/draft).
  const shown = useMemo(() => (tree && draft ? withDraft(tree, draft) : tree), [tree, draft])
  const rows = useTreeRows(shown, useDebounced(filter, FILTER_DEBOUNCE_MS), filterFocused, proposed)
  const [focusedId, setFocusedId] = useState<string | null>(null)
  const [editingId, setEditingId] = useState<string | null>(null)
  const [drop, setDrop] = useState<{ id: string; position: DropPosition } | null>(null)
  const [jumpId, setJumpId] = useState<string | null>(null)
  const [propsOf, setPropsOf] = useState<string | null>(null)
  const propsOpener = useRef<HTMLElement | null>(null)
  // The details dialog closed: focus goes back to what opened it.
  useEffect(() => {
    if (propsOf !== null || !propsOpener.current) return
    propsOpener.current.focus()
    propsOpener.current = null
  }, [propsOf])
  const [expiredVersion, setExpiredVersion] = useState(-1)
  const view = useRef<TreeViewHandle>(null)
  const { ref: boxRef, height } = useElementHeight<HTMLDivElement>(480)
  const pendingEdit = useRef<string | null>(null)
  const pendingFocus = useRef<string | null>(null)
  const pendingReveal = useRef<string | null>(null)
  const dragId = useRef<string | null>(null)
  // What the stable callbacks read: always the last committed render's values.
  const now = useRef({ rows, rev, tree, onOp, validate, editingId, readOnly, onToggleChange, draft })
  useLayoutEffect(() => {
    now.current = { rows, rev, tree, onOp, validate, editingId, readOnly, onToggleChange, draft }
  })

  const actions = useMemo<RowActions & Pick<TreeKeyTarget, 'addSibling' | 'check'>>(() => {
    const send = (delta: Delta) => {
      if (now.current.readOnly) return
      const problem = now.current.validate?.(delta)
      if (problem) toast.error(problem)
      else now.current.onOp({ delta, base_rev: now.current.rev })
    }
    const ids = (i: number) => pathAt(now.current.rows.nodes, now.current.rows.depths, i).slice(1).split('/')
    // A proposed row is not a node: no edit, move or drop acts on it.
    const real = (i: number) => {
      const node = now.current.rows.nodes[i]
      return node && !isProposedId(node.id) ? node : undefined
    }
    // A new node by hand: a draft where it will go, its editor open (nothing sent until it has a value).
    const startDraft = (d: Draft) => {
      setFilter('')
      setDraft(d)
      setFocusedId(d.id)
      setEditingId(d.id)
    }
    const commitDraft = (d: Draft, value: string | null) => {
      setDraft(null)
      const v = value?.trim() ?? ''
      if (!v) {
        // Dropped: the focus goes to the node just added before it (Enter on a new node opened this draft; it
        // may not have landed yet), else to the row above it, not to the row that is gone.
        const tree = now.current.tree
        setFocusedId(pendingFocus.current ?? (tree && besideDraft(tree, d)))
        return false
      }
      const delta: Delta = {
        action: 'add',
        path: childrenPath(draftParentPath(d)),
        node: { id: d.id, value: v, children: [] },
        index: d.index,
      }
      pendingFocus.current = d.id
      send(delta)
      return true
    }
    const moveAmong = (i: number, by: -1 | 1) => {
      const r = now.current.rows
      const parent = parentRow(r.depths, i)
      if (parent < 0 || r.filtered || !real(i)) return
      const kids = realChildren(r.nodes[parent]!)
      const at = kids.findIndex((c) => c.id === r.nodes[i]!.id)
      const to = at + by
      if (at < 0 || to < 0 || to >= kids.length) return
      send(moveDelta(pathAt(r.nodes, r.depths, i), pathAt(r.nodes, r.depths, parent), to))
    }
    const indent = (i: number) => {
      const r = now.current.rows
      const parent = parentRow(r.depths, i)
      if (parent < 0) return
      const kids = realChildren(r.nodes[parent]!)
      const at = kids.findIndex((c) => c.id === r.nodes[i]!.id)
      const before = kids[at - 1]
      if (!before) return
      const to = pathAt(r.nodes, r.depths, parent) + '/' + before.id
      send(moveDelta(pathAt(r.nodes, r.depths, i), to, realChildren(before).length))
    }
    const outdent = (i: number) => {
      const r = now.current.rows
      const parent = parentRow(r.depths, i)
      const grand = parent < 0 ? -1 : parentRow(r.depths, parent)
      if (grand < 0) return
      const at = realChildren(r.nodes[grand]!).findIndex((c) => c.id === r.nodes[parent]!.id)
      send(moveDelta(pathAt(r.nodes, r.depths, i), pathAt(r.nodes, r.depths, grand), at + 1))
    }
    const focus = (i: number) => {
      const node = now.current.rows.nodes[i]
      if (!node) return
      setFocusedId(node.id)
      view.current?.scrollTo(i)
      view.current?.focus()
    }
    return {
      focus,
      toggle: (i) => now.current.rows.toggle(i),
      edit: (i) => {
        const node = real(i)
        if (!node || now.current.readOnly) return
        focus(i)
        setEditingId(node.id)
      },
      addChild: (i) => {
        const r = now.current.rows
        const node = real(i)
        if (!node || now.current.readOnly) return
        if (r.expandedAt(i) === false) r.toggle(i)
        startDraft(newDraft(ids(i), realChildren(node).length))
      },
      addSibling: (i) => {
        const r = now.current.rows
        const node = real(i)
        if (!node || now.current.readOnly) return
        const parent = parentRow(r.depths, i)
        if (parent < 0) {
          startDraft(newDraft(ids(i), 0)) // the root has no siblings: its new first child, the row below it
          return
        }
        const at = realChildren(r.nodes[parent]!).findIndex((c) => c.id === node.id)
        startDraft(newDraft(ids(i).slice(0, -1), at + 1))
      },
      remove: (i) => {
        const r = now.current.rows
        if (!real(i) || r.depths[i] === 0) return // the root stays
        // Focus goes to the row that takes its place (the next one outside its subtree), else the one above.
        let next = i + 1
        while (next < r.nodes.length && r.depths[next]! > r.depths[i]!) next++
        const neighbour = r.nodes[next] ?? r.nodes[i - 1]
        if (neighbour) setFocusedId(neighbour.id)
        send(removeDelta(pathAt(r.nodes, r.depths, i)))
        view.current?.focus()
      },
      moveAmong,
      submitEdit: (i, value, then?: EditNext) => {
        const r = now.current.rows
        const id = now.current.editingId
        setEditingId(null)
        view.current?.focus()
        const d = now.current.draft
        if (d && id === d.id) {
          const tree = now.current.tree
          if (value !== null && tree && (then === 'indent' || then === 'outdent')) {
            const moved = then === 'indent' ? indentDraft(tree, d, value) : outdentDraft(tree, d, value)
            startDraft(moved ?? newDraft(d.parentIds, d.index, value))
            return
          }
          // Enter on a new node: it is sent, and the next sibling's draft opens (the outliner habit).
          if (commitDraft(d, value) && then === 'next') startDraft(newDraft(d.parentIds, d.index + 1))
          return
        }
        const at = r.nodes[i]?.id === id ? i : rowOf(r, id)
        const node = r.nodes[at]
        if (value === null || !node) return
        const v = value.trim()
        if (v !== node.value) {
          const problem = valueProblem(v)
          if (problem) return void toast.error(problem)
          send(renameDelta(pathAt(r.nodes, r.depths, at), v))
        }
        if (then === 'indent' || then === 'outdent') {
          pendingEdit.current = node.id // editing goes on once the move lands
          if (then === 'indent') indent(at)
          else outdent(at)
        }
      },
      dragStart: (i) => {
        dragId.current = real(i)?.id ?? null
      },
      dragOver: (i, position) => {
        const id = real(i)?.id
        if (!id || !dragId.current) return
        setDrop((d) => (d && d.id === id && d.position === position ? d : { id, position }))
      },
      drop: (i, position) => {
        const r = now.current.rows
        const moving = dragId.current
        dragId.current = null
        setDrop(null)
        const from = rowOf(r, moving)
        if (from <= 0 || !real(i)) return
        const target = dropTarget(r, from, i, position)
        if (target) send(moveDelta(pathAt(r.nodes, r.depths, from), target.parentPath, target.index))
      },
      dragEnd: () => {
        dragId.current = null
        setDrop(null)
      },
      toggleChange: (proposalId, index, on) => {
        if (!now.current.readOnly) now.current.onToggleChange?.(proposalId, index, on)
      },
      check: (i) => {
        if (now.current.readOnly) return // a viewer does not decide on proposals
        const node = now.current.rows.nodes[i]
        const p = node && now.current.rows.proposed.get(node.id)
        if (p?.box) now.current.onToggleChange?.(p.change.proposalId, p.change.index, !p.change.checked)
      },
    }
  }, [])

  useUndoShortcuts(readOnly || !canUndo ? noop : onUndo, readOnly || !canRedo ? noop : onRedo)

  // Tell the others what this tab has selected.
  useEffect(() => {
    onSelect?.(focusedId === null || isProposedId(focusedId) ? null : focusedId)
  }, [focusedId, onSelect])

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) =>
    treeKeyHandler({
      focusedIndex: () => rowOf(rows, focusedId),
      count: () => rows.nodes.length,
      pageSize: () => Math.max(1, Math.floor(height / ROW_HEIGHT) - 1),
      depthAt: (i) => rows.depths[i] ?? 0,
      expandedAt: (i) => rows.expandedAt(i),
      parentIndex: (i) => parentRow(rows.depths, i),
      ...actions,
    })(e)

  // Brief highlight of what the last update(s) changed.
  const highlight = useMemo<ReadonlySet<string>>(() => {
    const recent = lastChange && lastChange.version !== expiredVersion ? lastChange.ids : []
    if (!emphasis?.length) return recent.length ? new Set(recent) : EMPTY
    return new Set([...recent, ...emphasis])
  }, [lastChange, expiredVersion, emphasis])
  useEffect(() => {
    if (!lastChange || lastChange.ids.length === 0) return
    const version = lastChange.version
    const t = setTimeout(() => setExpiredVersion(version), HIGHLIGHT_MS)
    return () => clearTimeout(t)
  }, [lastChange])

  // After the rows change: edit a node we just added, reveal a node we jumped to.
  useLayoutEffect(() => {
    const editId = pendingEdit.current
    const at = rowOf(rows, editId)
    if (editId && at >= 0) {
      pendingEdit.current = null
      setFocusedId(editId)
      setEditingId(editId)
      view.current?.scrollTo(at)
    }
    const focusId = pendingFocus.current
    const landed = rowOf(rows, focusId)
    if (focusId && landed >= 0 && now.current.draft?.id !== focusId) {
      pendingFocus.current = null
      setFocusedId((f) => (f === null || f === focusId ? focusId : f))
    }
    const revealId = pendingReveal.current
    const shown = rowOf(rows, revealId)
    if (revealId && shown >= 0) {
      pendingReveal.current = null
      setFocusedId(revealId)
      view.current?.scrollTo(shown)
      view.current?.focus()
    }
  }, [rows])

  // A focused proposed row that goes (its proposal decided, here or elsewhere) hands the focus on, and the
  // keyboard focus too if it was lost with the row (on its checkbox): see proposedFallbacks.
  const proposedFocus = useRef<string[]>([])
  useLayoutEffect(() => {
    if (focusedId === null || !isProposedId(focusedId)) {
      proposedFocus.current = []
      return
    }
    const at = rowOf(rows, focusedId)
    if (at >= 0) {
      proposedFocus.current = proposedFallbacks(rows, at)
      return
    }
    const next = proposedFocus.current.find((id) => rowOf(rows, id) >= 0) ?? null
    proposedFocus.current = []
    setFocusedId(next)
    const owner = document.activeElement
    if (owner === null || owner === document.body) view.current?.focus()
  }, [rows, focusedId])

  const focusTree = useCallback(() => view.current?.enter(), [])

  // Tabbing into the tree lands on a row, as in an ARIA tree: the selected one (scrolled into view, as the
  // virtualised view only names a mounted row), else the first.
  const onFocusIn = () => {
    const at = rowOf(rows, focusedId)
    const land = at >= 0 ? at : 0
    const node = rows.nodes[land]
    if (!node) return
    if (node.id !== focusedId) setFocusedId(node.id)
    view.current?.scrollTo(land)
  }

  // A change that landed outside the view (another user, the assistant) offers "Jump to change".
  useEffect(() => {
    if (!lastChange || lastChange.origin === 'snapshot' || lastChange.ids.length === 0) return
    const id = lastChange.ids[0]!
    // Only the rows in view are searched: a full scan would cost O(tree) on every remote update.
    const [from, to] = view.current?.visibleRange() ?? [0, 0]
    const at = rowOf(now.current.rows, id, from, to)
    setJumpId(at >= 0 && view.current?.inView(at) ? null : id)
  }, [lastChange])

  const onJump = () => {
    const id = jumpId
    setJumpId(null)
    if (!id || !tree) return
    const ancestors = ancestorsOf(tree, id)
    if (!ancestors) return // gone since
    pendingReveal.current = id
    setFilter('')
    rows.open(ancestors)
  }

  const target = () => {
    const at = rowOf(rows, focusedId)
    return at >= 0 ? at : 0
  }
  const canDelete = !!tree && focusedId !== null && focusedId !== tree.id && !isProposedId(focusedId)

  return (
    <section aria-labelledby={labelId} className={cn('flex min-h-0 flex-col gap-2', className)}>
      <TreeToolbar
        labelId={labelId}
        rev={rev}
        readOnly={readOnly}
        hasTree={!!tree}
        canDelete={canDelete}
        filter={filter}
        matches={rows.matches}
        canJump={jumpId !== null}
        onFilter={setFilter}
        onFilterFocus={setFilterFocused}
        onUndo={onUndo}
        onRedo={onRedo}
        canUndo={canUndo}
        canRedo={canRedo}
        onFocusTree={focusTree}
        onAdd={() => actions.addChild(target())}
        onRename={() => actions.edit(target())}
        onDelete={() => actions.remove(target())}
        onProps={() => {
          const id = rows.nodes[target()]?.id
          if (id === undefined || isProposedId(id)) return // a proposed row has no details to edit
          propsOpener.current = document.activeElement instanceof HTMLElement ? document.activeElement : null
          setPropsOf(id)
        }}
        onExpandAll={rows.expandAll}
        onCollapseAll={rows.collapseAll}
        onExport={() => tree && downloadJson(`canopy-tree-rev${rev}.json`, tree)}
        onJump={onJump}
      />
      <div ref={boxRef} className="min-h-[50vh] flex-1 overflow-hidden rounded-md border md:min-h-0">
        {tree ? (
          <TreeView
            ref={view}
            rows={rows}
            height={height}
            focusedId={focusedId}
            editingId={editingId}
            highlight={highlight}
            drop={drop}
            actions={actions}
            domPrefix={domPrefix}
            readOnly={readOnly}
            rings={rings}
            changes={changes}
            onKeyDown={onKeyDown}
            onFocusIn={onFocusIn}
          />
        ) : (
          <p className="p-4 text-sm text-muted-foreground">Loading the tree…</p>
        )}
      </div>
      {propsOf !== null && rowOf(rows, propsOf) >= 0 && (
        <PropsDialog
          node={rows.nodes[rowOf(rows, propsOf)]!}
          path={pathAt(rows.nodes, rows.depths, rowOf(rows, propsOf))}
          onSave={(delta) => {
            const problem = validate?.(delta)
            if (problem) {
              toast.error(problem)
              return false
            }
            onOp({ delta, base_rev: rev })
            return true
          }}
          onClose={() => setPropsOf(null)}
        />
      )}
      <p className="text-xs text-muted-foreground">
        {readOnly
          ? 'Arrows move · you are a viewer: the tree is read-only'
          : 'Arrows move · Enter adds a sibling · F2 or double-click renames · Insert adds a child · Delete removes · Alt+↑/↓ reorders · drag to move · Space ticks a proposed node · editing: Tab indents, Enter on a new node adds the next · Ctrl+Z / Ctrl+Shift+Z'}
      </p>
    </section>
  )
})

/**
 * Where a drop lands: inside row `at` (as its last child), or before / after it among its siblings. The
 * index is the one the server's move uses (the node leaves its old place first). null: nowhere new or allowed.
 */
function dropTarget(r: TreeRows, from: number, at: number, position: DropPosition) {
  const parent = position === 'inside' ? at : parentRow(r.depths, at)
  if (parent < 0) return null
  const parentPath = pathAt(r.nodes, r.depths, parent)
  const moving = r.nodes[from]!
  if (parentPath.split('/').includes(moving.id)) return null // into itself or its own subtree
  const kids = realChildren(r.nodes[parent]!)
  let index = position === 'inside' ? kids.length : kids.findIndex((c) => c.id === r.nodes[at]!.id) + (position === 'after' ? 1 : 0)
  const old = kids.findIndex((c) => c.id === moving.id)
  if (old >= 0 && old < index) index -= 1
  if (old >= 0 && old === index) return null
  return { parentPath, index }
}
