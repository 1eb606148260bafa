import { memo, useId, useLayoutEffect, useRef } from 'react'
import {
  ArrowDownToLineIcon,
  ChevronsDownUpIcon,
  ChevronsUpDownIcon,
  DownloadIcon,
  PencilIcon,
  PlusIcon,
  SlidersHorizontalIcon,
  Redo2Icon,
  Trash2Icon,
  Undo2Icon,
} from 'lucide-react'
import { Button } from '@/components/ui/button'
import { Input } from '@/components/ui/input'
import { Label } from '@/components/ui/label'

export interface TreeToolbarProps {
  labelId: string
  rev: number
  /** A viewer's toolbar: filter, expand/collapse and export only. */
  readOnly: boolean
  hasTree: boolean
  canDelete: boolean
  filter: string
  /** Nodes matching the applied filter; null without one. */
  matches: number | null
  /** A change outside the view to jump to, if any. */
  canJump: boolean
  onFilter: (value: string) => void
  /** The filter box gained (true) or lost (false) focus: the filter index is built ahead, in idle time. */
  onFilterFocus?: (focused: boolean) => void
  onUndo: () => void
  onRedo: () => void
  /** Whether there is anything of this user's to undo / redo (the server's `undo_state`). */
  canUndo: boolean
  canRedo: boolean
  /** Puts the keyboard focus in the tree (Undo and Redo both turned off while one of them had it). */
  onFocusTree: () => void
  onAdd: () => void
  onRename: () => void
  onDelete: () => void
  /** Opens the focused node's props (the node details panel). */
  onProps: () => void
  onExpandAll: () => void
  onCollapseAll: () => void
  onExport: () => void
  onJump: () => void
}

function matchText(matches: number | null): string {
  if (matches === null) return ''
  if (matches === 0) return 'No match'
  return matches === 1 ? '1 match' : `${matches.toLocaleString('en')} matches`
}

/** The tree panel's heading, Undo/Redo, and its tools (filter with its match count, edits, expand/collapse, export). */
export const TreeToolbar = memo(function TreeToolbar(p: TreeToolbarProps) {
  const filterId = useId()
  const undoOff = !p.hasTree || !p.canUndo
  const redoOff = !p.hasTree || !p.canRedo
  const undoRef = useRef<HTMLButtonElement>(null)
  const redoRef = useRef<HTMLButtonElement>(null)
  const onFocusTree = p.onFocusTree
  // Undo (or Redo) turned off while it had the focus, e.g. pressing it emptied its stack: the browser would drop
  // the focus to the page (Chromium does so at its next rendering update, so the button still has it here).
  // It goes to the other one if that is on (undone, there is something to redo), else to the tree.
  useLayoutEffect(() => {
    const active = document.activeElement
    const onUndo = active === undoRef.current
    if (!((onUndo && undoOff) || (active === redoRef.current && redoOff))) return
    const other = onUndo ? (redoOff ? null : redoRef.current) : undoOff ? null : undoRef.current
    if (other) other.focus()
    else onFocusTree()
  }, [undoOff, redoOff, onFocusTree])
  return (
    <>
      <div className="flex flex-wrap items-center gap-1.5">
        <h2 id={p.labelId} className="mr-auto text-sm font-semibold">
          Object tree <span className="font-normal text-muted-foreground">· rev {p.rev}</span>
        </h2>
        {p.canJump && (
          <Button size="sm" variant="secondary" onClick={p.onJump}>
            <ArrowDownToLineIcon aria-hidden />
            Jump to change
          </Button>
        )}
        {!p.readOnly && (
          <>
            <Button
              ref={undoRef}
              size="sm"
              variant="outline"
              onClick={p.onUndo}
              disabled={undoOff}
              aria-keyshortcuts="Control+Z"
            >
              <Undo2Icon aria-hidden />
              Undo
            </Button>
            <Button
              ref={redoRef}
              size="sm"
              variant="outline"
              onClick={p.onRedo}
              disabled={redoOff}
              aria-keyshortcuts="Control+Shift+Z"
            >
              <Redo2Icon aria-hidden />
              Redo
            </Button>
          </>
        )}
      </div>
      <div role="toolbar" aria-label="Tree tools" className="flex flex-wrap items-center gap-1.5">
        <Label htmlFor={filterId} className="sr-only">
          Filter nodes
        </Label>
        <Input
          id={filterId}
          type="search"
          placeholder="Filter nodes…"
          value={p.filter}
          onChange={(e) => p.onFilter(e.target.value)}
          onFocus={() => p.onFilterFocus?.(true)}
          onBlur={() => p.onFilterFocus?.(false)}
          className="h-8 w-40 min-w-32 flex-1 md:flex-none"
        />
        <span role="status" aria-label="Filter matches" className="text-xs text-muted-foreground empty:hidden">
          {matchText(p.matches)}
        </span>
        {!p.readOnly && (
          <>
            <Button size="sm" variant="ghost" disabled={!p.hasTree} onClick={p.onAdd}>
              <PlusIcon aria-hidden />
              Add child
            </Button>
            <Button size="sm" variant="ghost" disabled={!p.hasTree} onClick={p.onRename}>
              <PencilIcon aria-hidden />
              Rename
            </Button>
            <Button size="sm" variant="ghost" disabled={!p.hasTree} onClick={p.onProps}>
              <SlidersHorizontalIcon aria-hidden />
              Props
            </Button>
            <Button size="sm" variant="ghost" disabled={!p.canDelete} onClick={p.onDelete}>
              <Trash2Icon aria-hidden />
              Delete
            </Button>
          </>
        )}
        <Button size="icon-sm" variant="ghost" aria-label="Expand all" title="Expand all" onClick={p.onExpandAll}>
          <ChevronsUpDownIcon aria-hidden />
        </Button>
        <Button size="icon-sm" variant="ghost" aria-label="Collapse all" title="Collapse all" onClick={p.onCollapseAll}>
          <ChevronsDownUpIcon aria-hidden />
        </Button>
        <Button
          size="icon-sm"
          variant="ghost"
          aria-label="Export JSON"
          title="Export JSON"
          disabled={!p.hasTree}
          onClick={p.onExport}
        >
          <DownloadIcon aria-hidden />
        </Button>
      </div>
    </>
  )
})
