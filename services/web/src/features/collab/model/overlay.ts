/**
 * A proposal as a diff over the tree: for each node of the current tree, the
 * proposal's changes to show on its row (docs: added green under the parent,
 * removed struck through in red, moved as a ghost at the old place, updated
 * old → new). Built once per proposal, selection or tree, read per row with
 * one Map lookup, so the tree's rows stay cheap.
 */
import type { ProposalData, TreeNode } from '@/lib/protocol'
import { describeDelta, nameLookup, nodeAt, pathIds, targetId } from './proposal'

export interface RowChange {
  proposalId: string
  /** The delta's index in the proposal (what `proposal_decision.accept` lists). */
  index: number
  kind: 'added' | 'removed' | 'moved' | 'updated'
  /** The delta in words (the checkbox's name). */
  description: string
  /** added: the new node's value; moved: where it goes; updated: the new value (or props). */
  detail: string
  checked: boolean
}

/**
 * Node id → the changes to show on its row. A node added under a node the
 * proposal also adds shows on the nearest row that exists today.
 */
export function proposalOverlay(
  proposals: readonly ProposalData[],
  selectedOf: (p: ProposalData) => ReadonlySet<number>,
  tree: TreeNode | null,
): Map<string, RowChange[]> {
  const map = new Map<string, RowChange[]>()
  if (!tree) return map
  for (const p of proposals) {
    const nameOf = nameLookup(tree, p.deltas)
    const selected = selectedOf(p)
    p.deltas.forEach((d, index) => {
      const at = d.action === 'add' ? existingAncestor(tree, d.path) : targetId(d)
      if (!at) return
      const change: RowChange = {
        proposalId: p.id,
        index,
        kind: d.action === 'add' ? 'added' : d.action === 'remove' ? 'removed' : d.action === 'move' ? 'moved' : 'updated',
        description: describeDelta(d, nameOf),
        detail:
          d.action === 'add'
            ? d.node.value
            : d.action === 'move'
              ? `moves under '${nameOf(pathIds(d.to).at(-1) ?? 'root')}'`
              : d.action === 'update'
                ? (d.fields.value ?? Object.entries(d.fields.props ?? {}).map(([k, v]) => `${k}: ${String(v)}`).join(', '))
                : '',
        checked: selected.has(index),
      }
      const list = map.get(at)
      if (list) list.push(change)
      else map.set(at, [change])
    })
  }
  return map
}

/** The deepest node of `path` (a parent's `/…/children` path) that exists in `tree`. */
function existingAncestor(tree: TreeNode, path: string): string | null {
  const ids = pathIds(path)
  for (let n = ids.length; n > 0; n--) {
    const node = nodeAt(tree, '/' + ids.slice(0, n).join('/'))
    if (node) return node.id
  }
  return null
}
