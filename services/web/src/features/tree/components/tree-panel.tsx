import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useId,
  useMemo,
  useRef,
  useState,
  type KeyboardEvent,
  type ReactNode,
} from 'react'
import {
  Tree,
  adjustMoveIndex,
  type NodeApi,
  type NodeRendererProps,
  type RowRendererProps,
  type TreeApi,
} from 'react-arborist'
import { toast } from 'sonner'
import {
  ChevronDownIcon,
  ChevronRightIcon,
  ChevronsDownUpIcon,
  ChevronsUpDownIcon,
  DownloadIcon,
  PencilIcon,
  PlusIcon,
  Redo2Icon,
  Trash2Icon,
  Undo2Icon,
} from 'lucide-react'
import { Button } from '@/components/ui/button'
import { Input } from '@/components/ui/input'
import { Label } from '@/components/ui/label'
import type { Delta, TreeNode } from '@/lib/protocol'
import { cn } from '@/lib/utils'
import {
  addChildDelta,
  downloadJson,
  matchesFilter,
  moveDelta,
  removeDelta,
  renameDelta,
  valueProblem,
  type TreeOp,
} from '../model/tree-ops'
import { useElementHeight } from './use-element-height'

export interface TreePanelProps {
  tree: TreeNode | null
  rev: number
  /** Ids touched by the last update, highlighted briefly; `version` tells updates apart. */
  lastChange?: { ids: string[]; version: number } | null
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
  className?: string
}

const ROW_HEIGHT = 32
const HIGHLIGHT_MS = 1600

const EMPTY: ReadonlySet<string> = new Set()
const HighlightContext = createContext<ReadonlySet<string>>(EMPTY)

/** The id path (`/root/a/b`) of an arborist node. */
function idPath(node: NodeApi<TreeNode>): string {
  const ids: string[] = []
  let n: NodeApi<TreeNode> | null = node
  while (n && !n.isRoot) {
    ids.push(n.id)
    n = n.parent
  }
  return '/' + ids.reverse().join('/')
}

function isEditableTarget(target: EventTarget | null): boolean {
  return (
    target instanceof Element &&
    !!target.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])')
  )
}

export function TreePanel({ tree, rev, lastChange, onOp, validate, onUndo, onRedo, className }: TreePanelProps) {
  const treeRef = useRef<TreeApi<TreeNode> | null>(null)
  const [filter, setFilter] = useState('')
  // Expand/collapse all remount the tree with a new default: arborist's own openAll/closeAll
  // dispatch once per node (quadratic on a 10,000-node tree).
  const [view, setView] = useState({ key: 0, expanded: true })
  const [focusedId, setFocusedId] = useState<string | null>(null)
  const [expiredVersion, setExpiredVersion] = useState(-1)
  const pendingEdit = useRef<string | null>(null)
  const { ref: boxRef, height } = useElementHeight<HTMLDivElement>(480)
  const filterId = useId()
  const labelId = useId()
  const data = useMemo(() => (tree ? [tree] : []), [tree])
  const revRef = useRef(rev)
  useEffect(() => {
    revRef.current = rev
  }, [rev])

  const send = useCallback(
    (delta: Delta) => {
      const problem = validate?.(delta)
      if (problem) {
        toast.error(problem)
        return
      }
      onOp({ delta, base_rev: revRef.current })
    },
    [onOp, validate],
  )

  // Brief highlight of what the last update changed.
  const highlight = useMemo<ReadonlySet<string>>(
    () => (lastChange && lastChange.version !== expiredVersion ? new Set(lastChange.ids) : EMPTY),
    [lastChange, expiredVersion],
  )
  useEffect(() => {
    if (!lastChange || lastChange.ids.length === 0) return
    const version = lastChange.version
    const t = setTimeout(() => setExpiredVersion(version), HIGHLIGHT_MS)
    return () => clearTimeout(t)
  }, [lastChange])

  // A node we just asked to add: start renaming it once the server's update shows it.
  useEffect(() => {
    const id = pendingEdit.current
    const api = treeRef.current
    if (!id || !api) return
    const node = api.get(id)
    if (!node) return
    pendingEdit.current = null
    node.openParents()
    api.focus(id)
    setTimeout(() => api.edit(id))
  }, [tree])

  const addChild = useCallback(
    (parent: NodeApi<TreeNode> | null, index?: number) => {
      const parentPath = parent ? idPath(parent) : tree ? `/${tree.id}` : null
      if (!parentPath) return
      const { delta, id } = addChildDelta(parentPath, undefined, index)
      pendingEdit.current = id
      parent?.open()
      send(delta)
    },
    [send, tree],
  )

  const remove = useCallback(
    (nodes: NodeApi<TreeNode>[]) => {
      for (const n of nodes) {
        if (n.level === 0) continue // the root stays
        send(removeDelta(idPath(n)))
      }
    },
    [send],
  )

  const onRename = useCallback(
    ({ name, node }: { name: string; node: NodeApi<TreeNode> }) => {
      const value = name.trim()
      if (value === node.data.value) return
      const problem = valueProblem(value)
      if (problem) {
        toast.error(problem)
        return
      }
      send(renameDelta(idPath(node), value))
    },
    [send],
  )

  const onMove = useCallback(
    ({ dragNodes, parentNode, index }: { dragNodes: NodeApi<TreeNode>[]; parentNode: NodeApi<TreeNode> | null; index: number }) => {
      const node = dragNodes[0]
      if (!node || !parentNode || parentNode.isRoot || node.level === 0) return
      const siblingIds = (parentNode.children ?? []).map((c) => c.id)
      const to = adjustMoveIndex({ index, dragIds: [node.id], siblingIds })
      if (node.parent?.id === parentNode.id && node.childIndex === to) return // nowhere new
      send(moveDelta(idPath(node), idPath(parentNode), to))
    },
    [send],
  )

  /** The focused node, or the root: what the toolbar's Add child / Rename act on. */
  const toolbarTarget = (): NodeApi<TreeNode> | null => {
    const api = treeRef.current
    if (!api || !tree) return null
    return (focusedId ? api.get(focusedId) : null) ?? api.get(tree.id)
  }
  const canDelete = !!tree && focusedId !== null && focusedId !== tree.id

  // Ctrl+Z / Ctrl+Shift+Z (and Ctrl+Y) anywhere but in a text field.
  useEffect(() => {
    function onKey(e: globalThis.KeyboardEvent) {
      if (!(e.ctrlKey || e.metaKey) || e.altKey) return
      if (isEditableTarget(e.target)) return
      const key = e.key.toLowerCase()
      if (key === 'z' && !e.shiftKey) {
        e.preventDefault()
        onUndo()
      } else if ((key === 'z' && e.shiftKey) || key === 'y') {
        e.preventDefault()
        onRedo()
      }
    }
    document.addEventListener('keydown', onKey)
    return () => document.removeEventListener('keydown', onKey)
  }, [onUndo, onRedo])

  function onTreeKeyDown(e: KeyboardEvent<HTMLDivElement>) {
    const api = treeRef.current
    if (!api || api.isEditing || isEditableTarget(e.target)) return
    const node = api.focusedNode
    if (!node) return
    if (e.key === 'Delete') {
      e.preventDefault()
      remove([node])
    } else if (e.key === 'F2') {
      e.preventDefault()
      void node.edit()
    } else if (e.key === 'Insert') {
      e.preventDefault()
      addChild(node)
    }
  }

  const searchMatch = useCallback((node: NodeApi<TreeNode>, term: string) => matchesFilter(node.data, term), [])

  return (
    <section aria-labelledby={labelId} className={cn('flex min-h-0 flex-col gap-2', className)}>
      <div className="flex flex-wrap items-center gap-1.5">
        <h2 id={labelId} className="mr-auto text-sm font-semibold">
          Object tree <span className="font-normal text-muted-foreground">· rev {rev}</span>
        </h2>
        <Button size="sm" variant="outline" onClick={onUndo} disabled={!tree} aria-keyshortcuts="Control+Z">
          <Undo2Icon aria-hidden />
          Undo
        </Button>
        <Button size="sm" variant="outline" onClick={onRedo} disabled={!tree} aria-keyshortcuts="Control+Shift+Z">
          <Redo2Icon aria-hidden />
          Redo
        </Button>
      </div>
      <div role="toolbar" aria-label="Tree tools" className="flex flex-wrap items-center gap-1.5">
        <Label htmlFor={filterId} className="sr-only">
          Filter nodes
        </Label>
        <Input
          id={filterId}
          type="search"
          placeholder="Filter nodes…"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          className="h-8 w-40 min-w-32 flex-1 md:flex-none"
        />
        <Button size="sm" variant="ghost" disabled={!tree} onClick={() => addChild(toolbarTarget())}>
          <PlusIcon aria-hidden />
          Add child
        </Button>
        <Button size="sm" variant="ghost" disabled={!tree} onClick={() => void toolbarTarget()?.edit()}>
          <PencilIcon aria-hidden />
          Rename
        </Button>
        <Button
          size="sm"
          variant="ghost"
          disabled={!canDelete}
          onClick={() => {
            const node = toolbarTarget()
            if (node && node.level > 0) remove([node])
          }}
        >
          <Trash2Icon aria-hidden />
          Delete
        </Button>
        <Button
          size="icon-sm"
          variant="ghost"
          aria-label="Expand all"
          title="Expand all"
          onClick={() => setView((v) => ({ key: v.key + 1, expanded: true }))}
        >
          <ChevronsUpDownIcon aria-hidden />
        </Button>
        <Button
          size="icon-sm"
          variant="ghost"
          aria-label="Collapse all"
          title="Collapse all"
          onClick={() => setView((v) => ({ key: v.key + 1, expanded: false }))}
        >
          <ChevronsDownUpIcon aria-hidden />
        </Button>
        <Button
          size="icon-sm"
          variant="ghost"
          aria-label="Export JSON"
          title="Export JSON"
          disabled={!tree}
          onClick={() => tree && downloadJson(`canopy-tree-rev${rev}.json`, tree)}
        >
          <DownloadIcon aria-hidden />
        </Button>
      </div>
      <div ref={boxRef} className="min-h-[50vh] flex-1 overflow-hidden rounded-md border md:min-h-0" onKeyDown={onTreeKeyDown}>
        {tree ? (
          <HighlightContext.Provider value={highlight}>
            <Tree<TreeNode>
              key={view.key}
              ref={treeRef}
              data={data}
              aria-label="Object tree"
              width="100%"
              height={height}
              rowHeight={ROW_HEIGHT}
              indent={18}
              overscanCount={8}
              openByDefault={view.expanded}
              initialOpenState={view.expanded ? undefined : { [tree.id]: true }}
              disableMultiSelection
              disableDrag={(d) => d.id === tree.id}
              disableDrop={({ parentNode }) => parentNode.isRoot}
              searchTerm={filter}
              searchMatch={searchMatch}
              onRename={onRename}
              onMove={onMove}
              onDelete={({ nodes }) => remove(nodes)}
              onCreate={({ parentNode, index }) => {
                const real = parentNode && !parentNode.isRoot ? parentNode : null
                addChild(real, real ? index : undefined)
                return null
              }}
              onFocus={(n) => setFocusedId(n.id)}
              renderRow={TreeRow}
              className="outline-none"
            >
              {NodeView}
            </Tree>
          </HighlightContext.Provider>
        ) : (
          <p className="p-4 text-sm text-muted-foreground">Loading the tree…</p>
        )}
      </div>
      <p className="text-xs text-muted-foreground">
        Arrows move · Enter or F2 renames · Insert adds a child · Delete removes · drag to move · Ctrl+Z / Ctrl+Shift+Z
      </p>
    </section>
  )
}

/** A row: role=treeitem named by the node's value. */
function TreeRow({ node, attrs, innerRef, children }: RowRendererProps<TreeNode>) {
  const highlight = useContext(HighlightContext)
  const lit = highlight.has(node.id)
  const hasProps = !!node.data.props && Object.keys(node.data.props).length > 0
  return (
    <div
      {...attrs}
      ref={innerRef}
      aria-label={node.data.value}
      aria-describedby={hasProps ? `props-${node.id}` : undefined}
      data-highlight={lit || undefined}
      onFocus={(e) => e.stopPropagation()}
      onClick={node.handleClick}
      className={cn(
        'group cursor-default outline-none transition-colors duration-700',
        'hover:bg-accent/60 focus-visible:bg-accent aria-selected:bg-accent',
        node.isFocused && 'ring-2 ring-ring/60 ring-inset',
        lit && 'bg-amber-200/70 duration-0 dark:bg-amber-500/30',
        node.willReceiveDrop && 'bg-primary/10',
      )}
    >
      {children}
    </div>
  )
}

function NodeView({ node, style, dragHandle }: NodeRendererProps<TreeNode>) {
  const d = node.data
  const props = d.props ? Object.entries(d.props) : []
  const hasKids = d.children.length > 0
  return (
    <div ref={dragHandle} style={style} className="flex h-full items-center gap-1 pr-2 text-sm">
      <span className="flex size-5 shrink-0 items-center justify-center">
        {hasKids && (
          <button
            type="button"
            tabIndex={-1}
            aria-hidden
            className="rounded-sm text-muted-foreground hover:text-foreground"
            onClick={(e) => {
              e.stopPropagation()
              node.toggle()
            }}
          >
            {node.isOpen ? <ChevronDownIcon className="size-4" /> : <ChevronRightIcon className="size-4" />}
          </button>
        )}
      </span>
      {node.isEditing ? (
        <EditValue node={node} />
      ) : (
        <span className="truncate" onDoubleClick={() => void node.edit()}>
          {d.value}
        </span>
      )}
      {props.length > 0 && !node.isEditing && (
        <span id={`props-${node.id}`} className="flex min-w-0 shrink items-center gap-1 overflow-hidden">
          {props.map(([k, v]) => (
            <span key={k} className="shrink-0 rounded border bg-muted px-1 font-mono text-[11px] text-muted-foreground">
              {k}: {String(v)}
            </span>
          ))}
        </span>
      )}
      {!node.isEditing && (
        <span className="ml-auto hidden shrink-0 items-center gap-0.5 pl-2 group-hover:flex group-aria-selected:flex">
          <RowAction label={`Add child to ${d.value}`} onClick={() => node.tree.create({ parentId: node.id, index: d.children.length })}>
            <PlusIcon className="size-3.5" />
          </RowAction>
          <RowAction label={`Rename ${d.value}`} onClick={() => void node.edit()}>
            <PencilIcon className="size-3.5" />
          </RowAction>
          {node.level > 0 && (
            <RowAction label={`Delete ${d.value}`} onClick={() => void node.tree.delete(node)}>
              <Trash2Icon className="size-3.5" />
            </RowAction>
          )}
        </span>
      )}
    </div>
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

function EditValue({ node }: { node: NodeApi<TreeNode> }) {
  const input = useRef<HTMLInputElement>(null)
  const done = useRef(false)
  useEffect(() => {
    input.current?.focus()
    input.current?.select()
  }, [])
  return (
    <input
      ref={input}
      aria-label="Node value"
      defaultValue={node.data.value}
      maxLength={500}
      className="h-6 min-w-0 flex-1 rounded border border-input bg-background px-1 text-sm outline-none focus-visible:ring-2 focus-visible:ring-ring/50"
      onClick={(e) => e.stopPropagation()}
      onBlur={() => {
        if (done.current) return
        done.current = true
        node.submit(input.current?.value ?? '')
      }}
      onKeyDown={(e) => {
        e.stopPropagation()
        if (e.key === 'Escape') {
          done.current = true
          node.reset()
        } else if (e.key === 'Enter') {
          done.current = true
          node.submit(input.current?.value ?? '')
        }
      }}
    />
  )
}
