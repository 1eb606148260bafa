import { useCallback, useImperativeHandle, useRef, useState, type KeyboardEvent, type Ref } from 'react'
import type { TreeRows } from '../hooks/use-tree-rows'
import type { RowChange, RowRing } from '../model/decorations'
import { ROW_HEIGHT, TreeRow, type DropPosition, type RowActions } from './tree-row'
import { ProposedRow } from './proposed-row'

const OVERSCAN = 8

export interface TreeViewHandle {
  /** Scroll just enough for row `index` to be in view. */
  scrollTo(index: number): void
  /** Is row `index` within the visible part of the list? */
  inView(index: number): boolean
  /** The rows in view: first, and one past the last (a change's row is looked for only there). */
  visibleRange(): [number, number]
  /** Focuses the tree; the caller has set the focused row. */
  focus(): void
  /** Focuses the tree as Tab into it does (`onFocusIn`: the selected row, else the first). */
  enter(): void
}

export interface TreeViewProps {
  rows: TreeRows
  height: number
  focusedId: string | null
  editingId: string | null
  highlight: ReadonlySet<string>
  drop: { id: string; position: DropPosition } | null
  actions: RowActions
  domPrefix: string
  readOnly: boolean
  rings: ReadonlyMap<string, readonly RowRing[]>
  changes: ReadonlyMap<string, readonly RowChange[]>
  onKeyDown: (e: KeyboardEvent<HTMLDivElement>) => void
  /**
   * The focus came into the tree from outside, neither by a click (that row is selected) nor through this
   * handle's `focus()` (its caller picks the row): by Tab or Shift+Tab, a skip link.
   */
  onFocusIn?: () => void
  ref?: Ref<TreeViewHandle>
}

/**
 * The virtualised tree: one scrolling element with role=tree, rows of a fixed height absolutely positioned
 * inside a spacer as tall as all rows, and only the rows in view (plus a few) in the DOM. Keyboard focus stays
 * on the tree element and `aria-activedescendant` names the focused row (the APG pattern that survives rows
 * being unmounted as they scroll away).
 */
export function TreeView({
  rows,
  height,
  focusedId,
  editingId,
  highlight,
  drop,
  actions,
  domPrefix,
  readOnly,
  rings,
  changes,
  onKeyDown,
  onFocusIn,
  ref,
}: TreeViewProps) {
  const scroller = useRef<HTMLDivElement>(null)
  // Set from a pointer press until it is released (the focus it brings is for the row under the pointer), and
  // during the handle's focus() (its caller has set the focused row).
  const pressed = useRef(false)
  const focusing = useRef(false)
  const [scrollTop, setScrollTop] = useState(0)
  const count = rows.nodes.length

  const scrollTo = useCallback(
    (index: number) => {
      const el = scroller.current
      if (!el) return
      const top = index * ROW_HEIGHT
      const view = el.clientHeight || height
      if (top < el.scrollTop) el.scrollTop = top
      else if (top + ROW_HEIGHT > el.scrollTop + view) el.scrollTop = top + ROW_HEIGHT - view
      setScrollTop(el.scrollTop)
    },
    [height],
  )
  useImperativeHandle(
    ref,
    () => ({
      scrollTo,
      inView: (index: number) => {
        const top = scroller.current?.scrollTop ?? 0
        const view = scroller.current?.clientHeight || height
        return index * ROW_HEIGHT >= top && (index + 1) * ROW_HEIGHT <= top + view
      },
      visibleRange: () => {
        const top = scroller.current?.scrollTop ?? 0
        const view = scroller.current?.clientHeight || height
        return [Math.floor(top / ROW_HEIGHT), Math.ceil((top + view) / ROW_HEIGHT)]
      },
      focus: () => {
        focusing.current = true
        try {
          scroller.current?.focus({ preventScroll: true })
        } finally {
          focusing.current = false
        }
      },
      enter: () => scroller.current?.focus({ preventScroll: true }),
    }),
    [height, scrollTo],
  )

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN)
  const last = Math.min(count, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN)
  const items = []
  let active: string | undefined
  for (let i = first; i < last; i++) {
    const node = rows.nodes[i]!
    const domId = `${domPrefix}-${i}`
    const focused = node.id === focusedId
    if (focused) active = domId
    const proposed = rows.proposed.get(node.id)
    if (proposed) {
      items.push(
        <ProposedRow
          key={node.id}
          proposed={proposed}
          index={i}
          depth={rows.depths[i]!}
          expanded={rows.expandedAt(i)}
          focused={focused}
          lit={highlight.has(proposed.nodeId)}
          domId={domId}
          actions={actions}
          readOnly={readOnly}
        />,
      )
      continue
    }
    items.push(
      <TreeRow
        key={node.id}
        node={node}
        index={i}
        depth={rows.depths[i]!}
        expanded={rows.expandedAt(i)}
        focused={focused}
        editing={node.id === editingId}
        lit={highlight.has(node.id)}
        drop={drop && drop.id === node.id ? drop.position : null}
        domId={domId}
        actions={actions}
        readOnly={readOnly}
        rings={rings.get(node.id)}
        changes={changes.get(node.id)}
      />,
    )
  }

  return (
    <div
      ref={scroller}
      role="tree"
      aria-label="Object tree"
      tabIndex={0}
      aria-activedescendant={active}
      onKeyDown={onKeyDown}
      onPointerDown={() => (pressed.current = true)}
      onPointerUp={() => (pressed.current = false)}
      onPointerCancel={() => (pressed.current = false)}
      onFocus={(e) => {
        const from = e.relatedTarget
        const outside = !(from instanceof Node && e.currentTarget.contains(from))
        if (e.target === e.currentTarget && outside && !pressed.current && !focusing.current) onFocusIn?.()
      }}
      onBlur={() => (pressed.current = false)}
      onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      style={{ height }}
      className="relative overflow-auto outline-none focus-visible:ring-2 focus-visible:ring-ring/50"
    >
      <div style={{ height: count * ROW_HEIGHT }} className="relative">
        {items}
      </div>
    </div>
  )
}
