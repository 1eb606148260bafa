import { useCallback, useMemo, useState } from 'react'
import type { TreeNode } from '@/lib/protocol'
import { useFilterIndex } from './use-filter-index'
import { useFilterResult } from './use-filter-result'
import { ALL_OPEN, isOpen, RowModel, type OpenState } from '../model/row-model'

export interface TreeRows {
  nodes: readonly TreeNode[]
  depths: readonly number[]
  /** null without a filter. */
  matches: number | null
  filtered: boolean
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

/**
 * The rows the view shows: the incremental row model of the tree (lib/tree-engine's structural sharing
 * makes `RowModel.update` cost what a change changes), or, with a filter term, the filter index's rows.
 */
export function useTreeRows(tree: TreeNode | null, term: string, filterFocused = false): TreeRows {
  const [model] = useState(() => new RowModel(tree))
  const [openVersion, setOpenVersion] = useState(0)
  const bump = useCallback(() => setOpenVersion(model.version), [model])

  // One update per render that brings a new tree (the feed coalesces a frame's deltas into one).
  // (the arrays change in place: `version` tells React they did)
  const version = useMemo(() => {
    model.update(tree)
    return Math.max(model.version, openVersion)
  }, [model, tree, openVersion])

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
      expandedAt: (i) => {
        const n = nodes[i]
        if (!n || n.children.length === 0) return null
        if (result) return (depths[i + 1] ?? -1) > depths[i]!
        return isOpen(model.openState, n.id)
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
        model.rebuild(model.tree, COLLAPSED(model.tree?.id))
        bump()
      },
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps -- version stands for the model's arrays
  }, [model, version, result, bump])
}
