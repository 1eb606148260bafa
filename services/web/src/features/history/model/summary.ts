import type { TreeNode } from '@/lib/protocol'

/**
 * A history summary names a node by its value when the change carries one, else by its id (a move, a props
 * change: `Move n-3f9a61c2`). Shown to people, each such id of a node still in the tree becomes its value as
 * it is now (`Move 'Launch'`); an id of a node that is gone stays.
 */
export function readableSummary(summary: string, touched: readonly string[], values: ReadonlyMap<string, string>): string {
  let text = summary
  for (const id of touched) {
    const value = values.get(id)
    if (value === undefined) continue
    // The id as a word of its own: never a part of a quoted value.
    text = text.replace(new RegExp(`(^|[\\s,])${escapeRegExp(id)}(?=$|[\\s,])`, 'g'), `$1${quote(value)}`)
  }
  return text
}

/** The values of the nodes with these ids, in one walk of the tree (none when nothing asks). */
export function valuesOf(tree: TreeNode | null, ids: ReadonlySet<string>): Map<string, string> {
  const found = new Map<string, string>()
  if (!tree || ids.size === 0) return found
  const stack: TreeNode[] = [tree]
  while (stack.length && found.size < ids.size) {
    const node = stack.pop()!
    if (ids.has(node.id)) found.set(node.id, node.value)
    for (const child of node.children) stack.push(child)
  }
  return found
}

/** As the server quotes values (Python's repr of a string: single quotes unless the value holds one). */
function quote(value: string): string {
  return value.includes("'") && !value.includes('"') ? `"${value}"` : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
