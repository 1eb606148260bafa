/**
 * The filter's index: every node of a tree in display order with its depth, its parent's position and its
 * searchable text (value, prop keys and values, lower-cased), all the texts joined into one string with the
 * offset where each node's part starts. Built once per tree, in idle-time steps (FilterIndexBuilder).
 *
 * A keystroke is a `FilterSearch`: native `indexOf` over that one string, each hit mapped to its node by a
 * cursor that only moves forward, then the kept rows collected — no per-node call, no per-node object. It
 * runs in steps with a deadline, so even a term that every one of 100k nodes matches never holds a frame;
 * and a term that contains the previous one searches only the previous term's matches (typing narrows).
 */
import type { TreeNode } from '@/lib/protocol'

/** Between two nodes' texts (and between a node's value and props): never typed into the filter. */
const SEP = '\u0000'

export function searchText(node: TreeNode): string {
  let text = node.value
  if (node.props) for (const k in node.props) text += SEP + k + SEP + String(node.props[k])
  return text.toLowerCase()
}

/** The term as the index compares it: trimmed, lower-cased, without the separator. */
export function normalizeTerm(term: string): string {
  return term.trim().toLowerCase().replaceAll(SEP, '')
}

export interface FilterResult {
  /** The rows to show: matches and their ancestors, in display order, all expanded. */
  nodes: readonly TreeNode[]
  depths: readonly number[]
  /** How many nodes match themselves (ancestors shown for context do not count). */
  matches: number
  /** The index searched and the (normalised) term: a later search may narrow from this one. */
  index: FilterIndex
  term: string
  /** Positions (in the index) of the nodes that match themselves, ascending. */
  hits: Int32Array
}

/** Nodes a build step handles between two checks of its time budget. */
const STEP_NODES = 2048

/** A growable Int32Array (push, then `done` for the exact-length copy). */
class IntList {
  private buf: Int32Array
  length = 0
  constructor(capacity = 1024) {
    this.buf = new Int32Array(Math.max(capacity, 16))
  }
  push(v: number): void {
    if (this.length === this.buf.length) {
      const bigger = new Int32Array(this.buf.length * 2)
      bigger.set(this.buf)
      this.buf = bigger
    }
    this.buf[this.length++] = v
  }
  done(): Int32Array {
    return this.buf.slice(0, this.length)
  }
}

/**
 * Builds a `FilterIndex` in steps, so the walk over a 100k-node tree can run in idle time, a few milliseconds
 * at a time, instead of as one long task on the first keystroke. Each step joins its own nodes' texts, so the
 * last step only concatenates those pieces. `step` returns the index once it is done.
 */
export class FilterIndexBuilder {
  private readonly nodes: TreeNode[] = []
  private readonly depths: number[] = []
  private readonly parents = new IntList()
  private readonly starts = new IntList()
  /** Texts of the nodes since the last piece, and the joined pieces so far. */
  private parts: string[] = []
  private readonly pieces: string[] = []
  private at = 0
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
    const { stack, levels, ups, nodes, depths, parents, starts } = this
    while (stack.length) {
      for (let budget = this.stepNodes; budget > 0 && stack.length; budget--) {
        const n = stack.pop()!
        const d = levels.pop()!
        const i = nodes.length
        const text = searchText(n)
        nodes.push(n)
        depths.push(d)
        parents.push(ups.pop()!)
        starts.push(this.at)
        this.at += text.length + SEP.length
        this.parts.push(text)
        for (let k = n.children.length - 1; k >= 0; k--) {
          stack.push(n.children[k]!)
          levels.push(d + 1)
          ups.push(i)
        }
      }
      this.pieces.push(this.parts.join(SEP) + SEP)
      this.parts = []
      if (stack.length && performance.now() >= deadline) return null
    }
    starts.push(this.at)
    this.done = new FilterIndex(this.root, nodes, depths, parents.done(), starts.done(), this.pieces.join(''))
    return this.done
  }
}

export class FilterIndex {
  /** The index of `root`, built at once (see FilterIndexBuilder for a build in steps). */
  static of(root: TreeNode): FilterIndex {
    return new FilterIndexBuilder(root).step()!
  }

  constructor(
    readonly root: TreeNode,
    readonly nodes: readonly TreeNode[],
    readonly depths: readonly number[],
    /** `parents[i]`: the position of node i's parent (-1 for the root). */
    readonly parents: Int32Array,
    /** `starts[i]`: where node i's text begins in `text`; one more entry for the end. */
    readonly starts: Int32Array,
    /** Every node's text followed by SEP, in display order. */
    readonly text: string,
  ) {}

  get size(): number {
    return this.nodes.length
  }

  /** The rows for `term` at once (trimmed, case-insensitive; a prop matches by key or value). */
  run(term: string, previous: FilterResult | null = null): FilterResult {
    return new FilterSearch(this, term, previous).step()!
  }
}

/** Hits (or rows) handled between two checks of the deadline. */
const SEARCH_CHUNK = 1024

/**
 * One filter run over an index, in steps: first the matching nodes (marking their ancestors as kept), then
 * the kept rows collected in display order. `step(deadline)` returns the result once done, else null.
 *
 * With a `previous` result of the same index whose term the new term contains, only the previous matches
 * are candidates (a node whose text holds the new term holds the old one too).
 */
export class FilterSearch {
  readonly term: string
  private readonly keep: Uint8Array
  private readonly hits = new IntList()
  /** How many rows are kept (matches and their ancestors). */
  private kept = 0
  private readonly candidates: Int32Array | null
  private phase: 'hits' | 'rows' = 'hits'
  /** Hits phase: the next text position to search from (full scan) or the next candidate (narrowed). */
  private from = 0
  /** Full scan: the node whose text holds `from`. */
  private cursor = 0
  /** Narrowed: the next occurrence at or after the current candidate's text (-2: not looked for yet). */
  private pos = -2
  /** Rows phase: the next position to look at, and the rows so far. */
  private row = 0
  private readonly nodes: TreeNode[] = []
  private readonly depths: number[] = []
  private result: FilterResult | null = null

  constructor(
    readonly index: FilterIndex,
    term: string,
    previous: FilterResult | null = null,
  ) {
    this.term = normalizeTerm(term)
    this.keep = new Uint8Array(index.size)
    const narrow = previous !== null && previous.index === index && previous.term !== '' && this.term.includes(previous.term)
    this.candidates = narrow ? previous.hits : null
  }

  /** Work until `deadline` (a `performance.now()` time; Infinity: to the end). The result, or null for more. */
  step(deadline = Infinity): FilterResult | null {
    while (!this.result) {
      if (this.phase === 'hits') this.searchSome()
      else this.collectSome()
      if (!this.result && performance.now() >= deadline) return null
    }
    return this.result
  }

  /** Mark node i as a match, and it and its ancestors as kept (stopping at the first already kept). */
  private mark(i: number): void {
    this.hits.push(i)
    const { keep, index } = this
    for (let j = i; j >= 0 && !keep[j]; j = index.parents[j]!) {
      keep[j] = 1
      this.kept++
    }
  }

  private searchSome(): void {
    const { index, term } = this
    const n = index.size
    if (term === '') {
      for (let i = 0; i < n; i++) this.hits.push(i)
      this.kept = n
      this.phase = 'rows'
      return
    }
    if (this.candidates) return this.narrowSome()
    const { text, starts } = index
    for (let budget = SEARCH_CHUNK; budget > 0; budget--) {
      const pos = text.indexOf(term, this.from)
      if (pos < 0) {
        this.phase = 'rows'
        return
      }
      let i = this.cursor
      while (starts[i + 1]! <= pos) i++ // forward only: all hits together walk `starts` once
      this.mark(i)
      this.cursor = i + 1
      this.from = starts[i + 1]! // one hit per node
    }
  }

  /**
   * The candidates in order, each checked against the next occurrence of the term at or after its text
   * (one `indexOf` serves every candidate before that occurrence). A match starts within a node's text and,
   * as the term holds no separator, ends there too.
   */
  private narrowSome(): void {
    const cand = this.candidates!
    const { text, starts } = this.index
    const term = this.term
    for (let budget = SEARCH_CHUNK; budget > 0; budget--) {
      if (this.from >= cand.length) {
        this.phase = 'rows'
        return
      }
      const c = cand[this.from++]!
      if (this.pos < starts[c]!) {
        this.pos = text.indexOf(term, starts[c]!)
        if (this.pos < 0) {
          this.phase = 'rows'
          return
        }
      }
      if (this.pos < starts[c + 1]!) this.mark(c)
    }
  }

  private collectSome(): void {
    const { index, keep } = this
    const n = index.size
    if (this.kept === n) {
      // Every row stays (an empty term, or one that every node matches): the index's own arrays serve.
      this.finish(index.nodes, index.depths)
      return
    }
    const end = Math.min(n, this.row + SEARCH_CHUNK * 16)
    for (let i = this.row; i < end; i++) {
      if (keep[i]) {
        this.nodes.push(index.nodes[i]!)
        this.depths.push(index.depths[i]!)
      }
    }
    this.row = end
    if (end === n) this.finish(this.nodes, this.depths)
  }

  private finish(nodes: readonly TreeNode[], depths: readonly number[]): void {
    const hits = this.hits.done()
    this.result = { nodes, depths, matches: hits.length, index: this.index, term: this.term, hits }
  }
}
