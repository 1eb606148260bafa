/**
 * The filter's index: every node of a tree in display order with its depth, its parent's position and its
 * searchable text (value, prop keys and values, lower-cased). Built once per tree (lazily, when a filter is
 * typed), so a keystroke is one pass of `includes` over flat arrays. The lower-cased text is cached per node
 * object: nodes are immutable and untouched ones are shared between trees, so the index of the next tree
 * lower-cases only the nodes a delta changed.
 */
import type { TreeNode } from '@/lib/protocol'

const textCache = new WeakMap<TreeNode, string>()

export function searchText(node: TreeNode): string {
  let text = textCache.get(node)
  if (text === undefined) {
    text = node.value.toLowerCase()
    if (node.props) {
      for (const [k, v] of Object.entries(node.props)) text += '\u0000' + k.toLowerCase() + '\u0000' + String(v).toLowerCase()
    }
    textCache.set(node, text)
  }
  return text
}

export interface FilterResult {
  /** The rows to show: matches and their ancestors, in display order, all expanded. */
  nodes: TreeNode[]
  depths: number[]
  /** How many nodes match themselves (ancestors shown for context do not count). */
  matches: number
}

export class FilterIndex {
  readonly nodes: TreeNode[] = []
  readonly depths: number[] = []
  private readonly parents: Int32Array
  private readonly texts: string[] = []

  constructor(readonly root: TreeNode) {
    const parents: number[] = []
    const stack: Array<[TreeNode, number, number]> = [[root, 0, -1]]
    while (stack.length) {
      const [n, d, p] = stack.pop()!
      const i = this.nodes.length
      this.nodes.push(n)
      this.depths.push(d)
      parents.push(p)
      this.texts.push(searchText(n))
      for (let k = n.children.length - 1; k >= 0; k--) stack.push([n.children[k]!, d + 1, i])
    }
    this.parents = Int32Array.from(parents)
  }

  /** The rows for `term` (trimmed, case-insensitive; a prop matches by key or value). */
  run(term: string): FilterResult {
    const t = term.trim().toLowerCase()
    const n = this.nodes.length
    const keep = new Uint8Array(n)
    let matches = 0
    for (let i = 0; i < n; i++) {
      if (!this.texts[i]!.includes(t)) continue
      matches++
      for (let j = i; j >= 0 && !keep[j]; j = this.parents[j]!) keep[j] = 1
    }
    const nodes: TreeNode[] = []
    const depths: number[] = []
    for (let i = 0; i < n; i++) {
      if (keep[i]) {
        nodes.push(this.nodes[i]!)
        depths.push(this.depths[i]!)
      }
    }
    return { nodes, depths, matches }
  }
}
