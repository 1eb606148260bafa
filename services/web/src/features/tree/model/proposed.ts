/**
 * Proposed nodes as rows: the tree with an open proposal's added nodes (and moved nodes at their new place)
 * inserted where they would go, for the row model only (the filter, the panel's edits and the props dialog
 * see the real tree).
 *
 * Like a draft (model/draft.ts), only the nodes on the way to a proposed node are copied, so the row model
 * patches just those rows: merging costs what the paths to the proposed nodes cost, never a pass over the
 * whole tree, and a tree without proposals is passed through as it is. The nodes on those paths are "pinned"
 * open (the row model shows their children whatever the user's open state says, until the user closes one),
 * so a proposed node is in view without the user's expand state changing.
 */
import type { TreeNode } from '@/lib/protocol'
import type { ProposedNode, ProposedPlace } from './decorations'

/** A proposed row's id: `~` + its key. `~` is not allowed in a node id, so it never names a real node. */
const PREFIX = '~'

export function proposedRowId(key: string): string {
  return PREFIX + key
}

export function isProposedId(id: string): boolean {
  return id.startsWith(PREFIX)
}

/** A node's real children (those a tree_op's index counts), without the proposed rows among them. */
export function realChildren(node: TreeNode): readonly TreeNode[] {
  return node.children.some((c) => isProposedId(c.id)) ? node.children.filter((c) => !isProposedId(c.id)) : node.children
}

export interface WithProposed {
  /** The tree to show: `tree` with the proposed nodes inserted (`tree` itself without any). */
  tree: TreeNode | null
  /** Ids shown open for the proposed nodes to be in view: the ways to them, and proposed nodes with children. */
  pins: ReadonlySet<string>
  /** Proposed row id → what it shows. */
  rows: ReadonlyMap<string, ProposedNode>
}

const NO_PINS: ReadonlySet<string> = new Set()
const NO_ROWS: ReadonlyMap<string, ProposedNode> = new Map()

/**
 * `tree` with `places` inserted in order, each at its index among what its parent shows by then (the earlier
 * proposed nodes included: a proposal's adds apply one after another). A place whose parent is gone since goes
 * last under the deepest node of its path that still exists; one outside the tree is left out.
 */
export function withProposed(tree: TreeNode | null, places: readonly ProposedPlace[]): WithProposed {
  if (!tree || places.length === 0) return { tree, pins: NO_PINS, rows: NO_ROWS }
  const pins = new Set<string>()
  const rows = new Map<string, ProposedNode>()
  const copies = new Set<TreeNode>()
  const copy = (n: TreeNode): TreeNode => {
    const c = { ...n, children: n.children.slice() }
    copies.add(c)
    return c
  }
  const root = copy(tree)
  const toRow = (p: ProposedNode): TreeNode => {
    const id = proposedRowId(p.key)
    rows.set(id, p)
    if (p.children.length) pins.add(id)
    return { id, value: p.value, children: p.children.map(toRow) }
  }
  for (const place of places) {
    if (place.parentIds[0] !== tree.id) continue
    let parent = root
    let exact = true
    for (let k = 1; k < place.parentIds.length; k++) {
      const at = parent.children.findIndex((c) => c.id === place.parentIds[k])
      if (at < 0) {
        exact = false
        break
      }
      const child = parent.children[at]!
      parent = copies.has(child) ? child : (parent.children[at] = copy(child))
      pins.add(parent.id)
    }
    pins.add(root.id)
    const kids = parent.children as TreeNode[]
    const index = exact && place.index !== null ? Math.min(place.index, kids.length) : kids.length
    kids.splice(index, 0, toRow(place.node))
  }
  return { tree: root, pins, rows }
}
