/**
 * The filter's index: every node of a tree in display order with its depth, its parent's position and its
 * searchable text (value, prop keys and values, lower-cased), all the texts joined into one string with the
 * offset where each node's part starts. Built once per tree, in idle-time steps (FilterIndexBuilder); a keystroke is
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

/** Nodes a build step handles between two checks of its time budget. */
const STEP_NODES = 2048

/**
 * Builds a `FilterIndex` in steps, so the walk over a 100k-node tree can run in idle time, a few milliseconds
 * at a time, instead of as one long task on the first keystroke. `step` returns the index once it is done.
 */
export class FilterIndexBuilder {
  private readonly nodes: TreeNode[] = []
  private readonly depths: number[] = []
  private readonly parents: number[] = []
  private readonly parts: string[] = []
  private readonly stack: TreeNode[]
  private readonly levels: number[] = [0]
  private readonly ups: number[] = [-1]
  private done: FilterIndex | null = null

  constructor(
    readonly root: TreeNode,
    /** Nodes between two checks of the deadline. */
    private readonly stepNodes = STEP_NODES,
  ) {
    this.stack = [root]
  }

  /** Work until `deadline` (a `performance.now()` time; Infinity: to the end). The index, or null for more. */
  step(deadline = Infinity): FilterIndex | null {
    if (this.done) return this.done
    const { stack, levels, ups, nodes, depths, parents, parts } = this
    while (stack.length) {
      for (let budget = this.stepNodes; budget > 0 && stack.length; budget--) {
        const n = stack.pop()!
        const d = levels.pop()!
        const i = nodes.length
        nodes.push(n)
        depths.push(d)
        parents.push(ups.pop()!)
        parts.push(searchText(n))
        for (let k = n.children.length - 1; k >= 0; k--) {
          stack.push(n.children[k]!)
          levels.push(d + 1)
          ups.push(i)
        }
      }
      if (stack.length && performance.now() >= deadline) return null
    }
    this.done = new FilterIndex(this.root, nodes, depths, parents, parts)
    return this.done
  }
}

export class FilterIndex {
  private readonly parents: Int32Array
  /** `starts[i]`: where node i's text begins in `text`; one more entry for the end. */
  private readonly starts: Int32Array
  private readonly text: string

  /** The index of `root`, built at once (see FilterIndexBuilder for a build in steps). */
  static of(root: TreeNode): FilterIndex {
    return new FilterIndexBuilder(root).step()!
  }

  constructor(
    readonly root: TreeNode,
    readonly nodes: readonly TreeNode[],
    readonly depths: readonly number[],
    parents: readonly number[],
    parts: readonly string[],
  ) {
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
