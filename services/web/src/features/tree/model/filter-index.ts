/**
 * The filter's index: every node of a tree in display order with its depth, its parent's position and its
 * searchable text (value, prop keys and values, lower-cased), all the texts joined into one string with the
 * offset where each node's part starts. Built once per tree (lazily, when a filter is typed); a keystroke is
 * then native `indexOf` over that one string, each hit mapped to its node by binary search — no per-node
 * call, no per-node object, so a keystroke on 100k nodes costs a few milliseconds.
 */
import type { TreeNode } from '@/lib/protocol'

/** Between two nodes' texts (and between a node's value and props): never typed into the filter. */
const SEP = '\u0000'

export function searchText(node: TreeNode): string {
  let text = node.value
  if (node.props) for (const k in node.props) text += SEP + k + SEP + String(node.props[k])
  return text.toLowerCase()
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
  /** `starts[i]`: where node i's text begins in `text`; one more entry for the end. */
  private readonly starts: Int32Array
  private readonly text: string

  constructor(readonly root: TreeNode) {
    const parents: number[] = []
    const parts: string[] = []
    const stack: TreeNode[] = [root]
    const levels: number[] = [0]
    const ups: number[] = [-1]
    while (stack.length) {
      const n = stack.pop()!
      const d = levels.pop()!
      const p = ups.pop()!
      const i = this.nodes.length
      this.nodes.push(n)
      this.depths.push(d)
      parents.push(p)
      parts.push(searchText(n))
      for (let k = n.children.length - 1; k >= 0; k--) {
        stack.push(n.children[k]!)
        levels.push(d + 1)
        ups.push(i)
      }
    }
    this.parents = Int32Array.from(parents)
    const starts = new Int32Array(parts.length + 1)
    let at = 0
    for (let i = 0; i < parts.length; i++) {
      starts[i] = at
      at += parts[i]!.length + SEP.length
    }
    starts[parts.length] = at
    this.starts = starts
    this.text = parts.join(SEP) + SEP
  }

  /** The node whose text holds position `pos` of the joined text. */
  private nodeAt(pos: number): number {
    let lo = 0
    let hi = this.starts.length - 2
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.starts[mid]! <= pos) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /** The rows for `term` (trimmed, case-insensitive; a prop matches by key or value). */
  run(term: string): FilterResult {
    const t = term.trim().toLowerCase().replaceAll(SEP, '')
    const n = this.nodes.length
    const keep = new Uint8Array(n)
    let matches = 0
    const mark = (i: number) => {
      matches++
      for (let j = i; j >= 0 && !keep[j]; j = this.parents[j]!) keep[j] = 1
    }
    if (!t) {
      for (let i = 0; i < n; i++) mark(i)
    } else {
      for (let pos = this.text.indexOf(t); pos >= 0; ) {
        const i = this.nodeAt(pos)
        mark(i)
        pos = this.text.indexOf(t, this.starts[i + 1]!) // one hit per node
      }
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
