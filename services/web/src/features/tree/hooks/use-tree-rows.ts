import { useCallback, useMemo, useState } from 'react'
import type { TreeNode } from '@/lib/protocol'
import { useFilterIndex } from './use-filter-index'
import { useFilterResult } from './use-filter-result'
import { ALL_OPEN, isOpen, RowModel, type OpenState } from '../model/row-model'
import { NO_PROPOSED, type ProposedNode, type ProposedPlace } from '../model/decorations'
import { withProposed } from '../model/proposed'

export interface TreeRows {
  nodes: readonly TreeNode[]
  depths: readonly number[]
  /** null without a filter. */
  matches: number | null
  filtered: boolean
  /** The proposed rows among `nodes` (row id → what it shows); a row not in it is a real node. */
  proposed: ReadonlyMap<string, ProposedNode>
  /** Does row `index` show its children? null for a leaf. */
  expandedAt(index: number): boolean | null
  toggle(index: number): void
  /** Open `ids` (ancestors of a node to reveal); rows rebuilt. */
  open(ids: readonly string[]): void
  expandAll(): void
  collapseAll(): void
}

const COLLAPSED = (rootId: string | undefined): OpenState => ({
  defaultOpen: false,
  toggled: new Set(rootId ? [rootId] : []),
})

const NO_ROWS: ReadonlyMap<string, ProposedNode> = new Map()

/**
 * The rows the view shows: the incremental row model of the tree (lib/tree-engine's structural sharing
 * makes `RowModel.update` cost what a change changes) with the proposed nodes merged in (model/proposed.ts:
 * the same structural sharing, so they cost what their paths cost), or, with a filter term, the filter
 * index's rows (real nodes only).
 */
export function useTreeRows(
  tree: TreeNode | null,
  term: string,
  filterFocused = false,
  proposed: readonly ProposedPlace[] = NO_PROPOSED,
): TreeRows {
  const [model] = useState(() => new RowModel(tree))
  const [openVersion, setOpenVersion] = useState(0)
  const bump = useCallback(() => setOpenVersion(model.version), [model])
  const shown = useMemo(() => withProposed(tree, proposed), [tree, proposed])

  // One update per render that brings a new tree (the feed coalesces a frame's deltas into one).
  // (the arrays change in place: `version` tells React they did)
  const version = useMemo(() => {
    model.update(shown.tree, shown.pins)
    return Math.max(model.version, openVersion)
  }, [model, shown, openVersion])

  const filterTerm = term.trim()
  const filtering = filterTerm !== ''
  // Built in idle time once the filter box has focus (and again when the tree changes while filtering);
  // every keystroke reuses it, searched in slices. Until a result is ready, the rows stay as they were.
  const index = useFilterIndex(tree, filtering || filterFocused)
  const result = useFilterResult(index, filterTerm)

  return useMemo<TreeRows>(() => {
    const nodes = result ? result.nodes : model.nodes
    const depths = result ? result.depths : model.depths
    return {
      nodes,
      depths,
      matches: result ? result.matches : null,
      filtered: !!result,
      proposed: result ? NO_ROWS : shown.rows,
      expandedAt: (i) => {
        const n = nodes[i]
        if (!n || n.children.length === 0) return null
        if (result) return (depths[i + 1] ?? -1) > depths[i]!
        return model.expanded(n)
      },
      toggle: (i) => {
        if (result) return
        model.toggleAt(i)
        bump()
      },
      open: (ids) => {
        const s = model.openState
        const toggled = new Set(s.toggled)
        for (const id of ids) {
          if (isOpen(s, id)) continue
          if (toggled.has(id)) toggled.delete(id)
          else toggled.add(id)
        }
        model.rebuild(model.tree, { defaultOpen: s.defaultOpen, toggled })
        bump()
      },
      expandAll: () => {
        model.rebuild(model.tree, ALL_OPEN)
        bump()
      },
      collapseAll: () => {
        model.unpinAll()
        model.rebuild(model.tree, COLLAPSED(model.tree?.id))
        bump()
      },
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps -- version stands for the model's arrays
  }, [model, version, result, bump, shown.rows])
}
