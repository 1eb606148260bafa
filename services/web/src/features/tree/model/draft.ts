/**
 * A node added by hand before it has a value: shown in the tree (the editor open on it) but not sent. Its value,
 * once typed, goes out in the one `add` — so adding a node by hand is one change and one undo step (it used to be
 * an add of "New node" and then a rename: two). Escape, or an empty value, drops it and nothing is sent.
 */
import type { TreeNode } from '@/lib/protocol'
import { newNodeId } from '@/lib/tree-engine'

export interface Draft {
  id: string
  /** What was typed so far (kept when Tab moves the draft). */
  value: string
  /** Ids from the root to the parent, the root included. */
  parentIds: readonly string[]
  index: number
}

export function newDraft(parentIds: readonly string[], index: number, value = ''): Draft {
  return { id: newNodeId(), value, parentIds, index }
}

/** The node at an id path from the root (`['root', 'a']`), or null. */
export function nodeAtIds(tree: TreeNode, ids: readonly string[]): TreeNode | null {
  if (tree.id !== ids[0]) return null
  let node: TreeNode | undefined = tree
  for (let k = 1; k < ids.length && node; k++) node = node.children.find((c) => c.id === ids[k])
  return node ?? null
}

/** Where the focus goes when a draft is dropped: the node before it among its siblings, else its parent. */
export function besideDraft(tree: TreeNode, d: Draft): string | null {
  const parent = nodeAtIds(tree, d.parentIds)
  if (!parent) return null
  return parent.children[Math.min(d.index, parent.children.length) - 1]?.id ?? parent.id
}

/** The draft one level in (Tab): the last child of its previous sibling; null when it has none. */
export function indentDraft(tree: TreeNode, d: Draft, value: string): Draft | null {
  const parent = nodeAtIds(tree, d.parentIds)
  const before = parent?.children[Math.min(d.index, parent.children.length) - 1]
  return before ? newDraft([...d.parentIds, before.id], before.children.length, value) : null
}

/** The draft one level out (Shift+Tab): right after its parent; null at the top level. */
export function outdentDraft(tree: TreeNode, d: Draft, value: string): Draft | null {
  if (d.parentIds.length < 2) return null
  const up = d.parentIds.slice(0, -1)
  const grand = nodeAtIds(tree, up)
  const at = grand ? grand.children.findIndex((c) => c.id === d.parentIds[d.parentIds.length - 1]) : -1
  return at < 0 ? null : newDraft(up, at + 1, value)
}

/** The id path of the draft's parent (`/root/a`), as deltas address it. */
export function draftParentPath(d: Draft): string {
  return '/' + d.parentIds.join('/')
}

/**
 * The tree with the draft inserted: only the nodes on its path are copied (structural sharing), so the row
 * model updates incrementally. The tree as it is when the draft's parent is gone.
 */
export function withDraft(tree: TreeNode, d: Draft): TreeNode {
  const copy = (node: TreeNode, depth: number): TreeNode | null => {
    if (node.id !== d.parentIds[depth]) return null
    if (depth === d.parentIds.length - 1) {
      const children = node.children.slice()
      children.splice(Math.min(d.index, children.length), 0, { id: d.id, value: d.value, children: [] })
      return { ...node, children }
    }
    const next = d.parentIds[depth + 1]
    const at = node.children.findIndex((c) => c.id === next)
    if (at < 0) return null
    const child = copy(node.children[at]!, depth + 1)
    if (!child) return null
    const children = node.children.slice()
    children[at] = child
    return { ...node, children }
  }
  return copy(tree, 0) ?? tree
}
