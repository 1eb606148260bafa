/**
 * Builds the deltas the tree panel sends as `tree_op` (never applied locally:
 * the server's broadcast `tree_update` is the source of truth).
 */
import type { Delta, TreeNode } from '@/lib/protocol'
import { childrenPath, newNodeId } from '@/lib/tree-engine'

export interface TreeOp {
  delta: Delta
  base_rev: number
}

export const DEFAULT_NEW_VALUE = 'New node'

export function addChildDelta(parentPath: string, value = DEFAULT_NEW_VALUE, index?: number): { delta: Delta; id: string } {
  const id = newNodeId()
  const node: TreeNode = { id, value, children: [] }
  const delta: Delta = { action: 'add', path: childrenPath(parentPath), node }
  if (index !== undefined) delta.index = index
  return { delta, id }
}

export function renameDelta(path: string, value: string): Delta {
  return { action: 'update', path, fields: { value } }
}

export function removeDelta(path: string): Delta {
  return { action: 'remove', path }
}

export function moveDelta(path: string, newParentPath: string, index: number): Delta {
  return { action: 'move', path, to: childrenPath(newParentPath), index }
}

/**
 * A blank value is refused here (the server would take spaces); every other
 * rule (lengths, limits, paths) is the tree engine's, through TreePanel's `validate`.
 */
export function valueProblem(value: string): string | null {
  return value.trim() ? null : 'A node needs a value.'
}

/** Does a node (value or props) match the filter text? */
export function matchesFilter(node: TreeNode, term: string): boolean {
  const t = term.trim().toLowerCase()
  if (!t) return true
  if (node.value.toLowerCase().includes(t)) return true
  if (node.props) {
    for (const [k, v] of Object.entries(node.props)) {
      if (k.toLowerCase().includes(t) || String(v).toLowerCase().includes(t)) return true
    }
  }
  return false
}

export function downloadJson(filename: string, data: unknown): void {
  const blob = new Blob([JSON.stringify(data, null, 2) + '\n'], { type: 'application/json' })
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  a.rel = 'noopener'
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}
