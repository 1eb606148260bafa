/**
 * The tree view's row model: the visible nodes in display order with their depths, kept in step with the
 * tree incrementally.
 *
 * The tree engine (lib/tree-engine.ts) copies only the nodes along the path a delta touches, so an old and a
 * new root share every untouched subtree by reference. `update` walks only where the two differ and splices
 * just the rows that changed: a rename rewrites one row, an add inserts the new subtree's rows, a remove
 * drops a range. No per-row objects are made for untouched rows (the two parallel arrays hold references and
 * numbers), which is what made a 100k-node tree cheap to keep live. Any number of deltas between two
 * renders are one `update` (the diff does not care how many deltas made it).
 */
import type { TreeNode } from '@/lib/protocol'

/** Which nodes show their children: `defaultOpen` flipped for the ids in `toggled`. */
export interface OpenState {
  readonly defaultOpen: boolean
  readonly toggled: ReadonlySet<string>
}

export const ALL_OPEN: OpenState = { defaultOpen: true, toggled: new Set() }

export function isOpen(open: OpenState, id: string): boolean {
  return open.defaultOpen !== open.toggled.has(id)
}

const NO_PINS: ReadonlySet<string> = new Set()

/** Above this many rows, one splice is done as slice + concat (spreading huge arrays into arguments overflows). */
const SPREAD_LIMIT = 8192

export class RowModel {
  /** The visible nodes, in display order. */
  nodes: TreeNode[] = []
  /** `depths[i]` is the depth of `nodes[i]` (the root is 0). */
  depths: number[] = []
  /** Goes up with every change of the rows (they change in place). */
  version = 0
  private root: TreeNode | null = null
  private open: OpenState
  /**
   * Ids whose children show whatever `open` says (the way to a proposed node, model/proposed.ts), less those
   * the user closed since (`unpinned`, forgotten once the id is no longer asked to be pinned).
   */
  private pins: ReadonlySet<string> = NO_PINS
  /** The pins last asked for (`update`). */
  private asked: ReadonlySet<string> = NO_PINS
  private unpinned = new Set<string>()
  /** During `update`: the pins the rows were built with (what `prev` showed). */
  private prevPins: ReadonlySet<string> = NO_PINS

  constructor(root: TreeNode | null, open: OpenState = ALL_OPEN) {
    this.open = open
    this.rebuild(root)
  }

  get size(): number {
    return this.nodes.length
  }

  get tree(): TreeNode | null {
    return this.root
  }

  get openState(): OpenState {
    return this.open
  }

  /** Do the node's children show? */
  expanded(node: TreeNode): boolean {
    return node.children.length > 0 && (isOpen(this.open, node.id) || this.pins.has(node.id))
  }

  /** Stop holding open the nodes a proposal pinned (Collapse all). */
  unpinAll(): void {
    for (const id of this.asked) this.unpinned.add(id)
    this.pins = NO_PINS
  }

  /** Everything from scratch (a snapshot, or a new open state for the whole tree). */
  rebuild(root: TreeNode | null, open: OpenState = this.open): void {
    this.root = root
    this.open = open
    this.version++
    this.nodes = []
    this.depths = []
    if (root) this.flatten(root, 0, this.nodes, this.depths)
  }

  /**
   * Bring the rows in step with `next`, touching only what differs from the current tree. `pins`: the ids to
   * show open besides the open state (default: as before). A node whose pin comes or goes must be a new
   * object in `next` (model/proposed.ts copies every node it pins), so the diff walks to it.
   */
  update(next: TreeNode | null, pins: ReadonlySet<string> = this.asked): void {
    const prev = this.root
    this.prevPins = this.pins
    this.asked = pins
    this.pins = this.keptPins(pins)
    if (prev === next) return
    if (!prev || !next || prev.id !== next.id) {
      this.rebuild(next)
      return
    }
    this.patch(prev, next, 0)
    this.prevPins = this.pins
    this.root = next
    this.version++
  }

  /** Show or hide the children of the node at row `index`; a new open state. */
  toggleAt(index: number): void {
    const node = this.nodes[index]
    if (!node) return
    const was = this.expanded(node)
    if (was && this.pins.has(node.id)) {
      // Closing a pinned node unpins it (else it could not be closed while the proposal is open).
      this.unpinned.add(node.id)
      this.pins = this.keptPins(this.asked)
    }
    if (isOpen(this.open, node.id) === was) {
      const toggled = new Set(this.open.toggled)
      if (toggled.has(node.id)) toggled.delete(node.id)
      else toggled.add(node.id)
      this.open = { defaultOpen: this.open.defaultOpen, toggled }
    }
    this.reveal(index, was, this.expanded(node))
    this.version++
  }

  /** The row after the last row of the subtree whose top row is `index`. */
  end(index: number): number {
    const d = this.depths[index]!
    const depths = this.depths
    let j = index + 1
    while (j < depths.length && depths[j]! > d) j++
    return j
  }

  /** Row of the node with `id` (a scan: used on demand, never per render of every row). */
  indexOf(id: string): number {
    const nodes = this.nodes
    for (let i = 0; i < nodes.length; i++) if (nodes[i]!.id === id) return i
    return -1
  }

  // ---------------------------------------------------------------- internals

  /** `asked` less the ids the user closed; those closed ids no longer asked for are forgotten. */
  private keptPins(asked: ReadonlySet<string>): ReadonlySet<string> {
    if (asked.size === 0) {
      this.unpinned.clear()
      return NO_PINS
    }
    for (const id of this.unpinned) if (!asked.has(id)) this.unpinned.delete(id)
    if (this.unpinned.size === 0) return asked
    const kept = new Set(asked)
    for (const id of this.unpinned) kept.delete(id)
    return kept
  }

  private flatten(node: TreeNode, depth: number, nodes: TreeNode[], depths: number[]): void {
    const stack: TreeNode[] = [node]
    const levels: number[] = [depth]
    while (stack.length) {
      const n = stack.pop()!
      const d = levels.pop()!
      nodes.push(n)
      depths.push(d)
      if (this.expanded(n)) {
        for (let i = n.children.length - 1; i >= 0; i--) {
          stack.push(n.children[i]!)
          levels.push(d + 1)
        }
      }
    }
  }

  /** Rows for `kids` at `depth`, fresh. */
  private rowsOf(kids: readonly TreeNode[], depth: number): [TreeNode[], number[]] {
    const nodes: TreeNode[] = []
    const depths: number[] = []
    for (const k of kids) this.flatten(k, depth, nodes, depths)
    return [nodes, depths]
  }

  private replace(from: number, to: number, nodes: TreeNode[], depths: number[]): void {
    if (nodes.length + (to - from) <= SPREAD_LIMIT) {
      this.nodes.splice(from, to - from, ...nodes)
      this.depths.splice(from, to - from, ...depths)
    } else {
      this.nodes = this.nodes.slice(0, from).concat(nodes, this.nodes.slice(to))
      this.depths = this.depths.slice(0, from).concat(depths, this.depths.slice(to))
    }
  }

  /** The children of row `index` were shown (`was`) and now are (`now`) or not. */
  private reveal(index: number, was: boolean, now: boolean): void {
    if (was === now) return
    const node = this.nodes[index]!
    if (now) {
      const [nodes, depths] = this.rowsOf(node.children, this.depths[index]! + 1)
      this.replace(index + 1, index + 1, nodes, depths)
    } else {
      this.replace(index + 1, this.end(index), [], [])
    }
  }

  /**
   * `prev` (row `index`) became `next` (same id). Returns the row after `next`'s last row.
   * Children are matched by id: a common prefix and suffix are patched in place (or skipped when
   * unchanged); only the children in between (added, removed, reordered) get fresh rows.
   */
  private patch(prev: TreeNode, next: TreeNode, index: number): number {
    if (prev === next) return this.end(index)
    this.nodes[index] = next
    const was = prev.children.length > 0 && (isOpen(this.open, prev.id) || this.prevPins.has(prev.id))
    const now = this.expanded(next)
    if (!was || !now) {
      this.reveal(index, was, now)
      return now ? this.end(index) : index + 1
    }
    const a = prev.children
    const b = next.children
    const depth = this.depths[index]! + 1
    let row = index + 1
    let lo = 0
    while (lo < a.length && lo < b.length && a[lo]!.id === b[lo]!.id) {
      row = a[lo] === b[lo] ? this.end(row) : this.patch(a[lo]!, b[lo]!, row)
      lo++
    }
    let ha = a.length
    let hb = b.length
    while (ha > lo && hb > lo && a[ha - 1]!.id === b[hb - 1]!.id) {
      ha--
      hb--
    }
    if (ha > lo || hb > lo) {
      let stop = row
      for (let k = lo; k < ha; k++) stop = this.end(stop)
      const [nodes, depths] = this.rowsOf(b.slice(lo, hb), depth)
      this.replace(row, stop, nodes, depths)
      row += nodes.length
    }
    for (let k = 0; hb + k < b.length; k++) {
      const was2 = a[ha + k]!
      const now2 = b[hb + k]!
      row = was2 === now2 ? this.end(row) : this.patch(was2, now2, row)
    }
    return row
  }
}

/** The row of the parent of row `index` in a display-order row list (-1 for a top row). */
export function parentRow(depths: readonly number[], index: number): number {
  const d = depths[index]!
  for (let j = index - 1; j >= 0; j--) if (depths[j]! < d) return j
  return -1
}

/** The id path (`/root/a/b`) of row `index`: its ancestors are the rows above it with smaller depths. */
export function pathAt(nodes: readonly TreeNode[], depths: readonly number[], index: number): string {
  const ids: string[] = []
  for (let j = index; j >= 0; j = parentRow(depths, j)) ids.push(nodes[j]!.id)
  return '/' + ids.reverse().join('/')
}

/** The ids of the ancestors of `id` in `root` (root first), or null when it is not in the tree. */
export function ancestorsOf(root: TreeNode, id: string): string[] | null {
  const stack: Array<[TreeNode, number]> = [[root, 0]]
  const path: string[] = []
  while (stack.length) {
    const [n, d] = stack.pop()!
    path.length = d
    if (n.id === id) return path.slice()
    path.push(n.id)
    for (let k = n.children.length - 1; k >= 0; k--) stack.push([n.children[k]!, d + 1])
  }
  return null
}
