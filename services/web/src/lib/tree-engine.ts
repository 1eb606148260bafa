/**
 * The browser's tree engine: applies protocol deltas exactly like the server's
 * engine (services/api/canopy/tree.py), checked against the shared fixture
 * tests/fixtures/tree_cases.json.
 *
 * Nodes are immutable: a change copies the nodes along the path it touches,
 * so React sees new objects only where something changed. A parent index
 * (id → parent id) is kept beside the nodes so that resolving a path costs
 * O(depth), not O(tree).
 *
 * Errors are `DeltaError` with an HTTP-like code, in the server's fixed order:
 * 400 malformed (shape, types, path syntax, id format, lengths, prop limits),
 * then path resolution (404 unknown id anywhere in the path, then 409 when the
 * chain is not the node's real ancestry; `move` resolves `path` before `to`),
 * then state checks (duplicate id, root, cycle, node/depth limits: 409; the
 * merged prop count of an update: 400).
 *
 * The limits are the server's: `session_ready` carries them (`limits`), and the
 * document checks against those, so a server configured with another
 * `TREE_MAX_DEPTH` or `TREE_MAX_NODES` is followed, not contradicted.
 */
import { isRecord, type Delta, type Scalar, type TreeLimitsData, type TreeNode, type WireNode } from './protocol'

export const ROOT_ID = 'root'

/** The server's tree limits (canopy.tree.TreeLimits), as `session_ready.data.limits` carries them. */
export type TreeLimits = TreeLimitsData

/** The server's defaults: only for a document made before any `session_ready` (tests, one-offs). */
export const DEFAULT_LIMITS: Readonly<TreeLimits> = Object.freeze({
  max_nodes: 100_000,
  max_depth: 64, // the root is depth 1
  max_value_chars: 500,
  max_props: 32,
  max_prop_key_chars: 64,
  max_prop_value_chars: 500,
  max_id_chars: 64,
  max_bytes: 8 * 1024 * 1024, // the serialised tree; enforced by the server only
})

/** The limits a `session_ready` carried, or the defaults for a server that sent none. */
export function limitsFrom(data: { limits?: Partial<TreeLimits> | null }): TreeLimits {
  const out: TreeLimits = { ...DEFAULT_LIMITS }
  const given = isRecord(data.limits) ? data.limits : {}
  for (const key of Object.keys(out) as Array<keyof TreeLimits>) {
    const v = given[key]
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1) out[key] = v
  }
  return out
}

const ID_RE = /^[A-Za-z0-9_.:-]+$/
/** Nodes an indexing step handles between two checks of its deadline. */
const INDEX_STEP_NODES = 4096
const CHILDREN = '/children'
const MAX_SAFE_INT = Number.MAX_SAFE_INTEGER
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

export class DeltaError extends Error {
  readonly code: 400 | 404 | 409
  constructor(code: 400 | 404 | 409, message: string) {
    super(message)
    this.name = 'DeltaError'
    this.code = code
  }
}

const bad = (message: string) => new DeltaError(400, message)

/** Length in Unicode code points, as the server (Python) counts. */
function codePoints(s: string, atMost: number): number {
  if (s.length <= atMost) return s.length // UTF-16 units ≥ code points
  let n = 0
  for (const _ of s) n++
  return n
}

function validId(s: unknown, limits: TreeLimits): s is string {
  return typeof s === 'string' && s.length <= limits.max_id_chars && ID_RE.test(s)
}

function checkValue(v: unknown, where: string, limits: TreeLimits): string {
  if (typeof v !== 'string') throw bad(`'${where}' must be a string`)
  if (!v) throw bad(`'${where}' must not be empty`)
  if (codePoints(v, limits.max_value_chars) > limits.max_value_chars)
    throw bad(`'${where}' is longer than ${limits.max_value_chars} characters`)
  if (LONE_SURROGATE.test(v)) throw bad(`'${where}' is not valid Unicode text`)
  return v
}

function checkPropKey(k: string, where: string, limits: TreeLimits): void {
  if (!k) throw bad(`'${where}' keys must be non-empty strings`)
  if (codePoints(k, limits.max_prop_key_chars) > limits.max_prop_key_chars)
    throw bad(`'${where}' key is longer than ${limits.max_prop_key_chars} characters`)
  if (LONE_SURROGATE.test(k)) throw bad(`'${where}' key is not valid Unicode text`)
}

function checkPropValue(v: unknown, where: string, limits: TreeLimits): Exclude<Scalar, null> {
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw bad(`'${where}' must be a finite number`)
    if (Number.isInteger(v) && Math.abs(v) > MAX_SAFE_INT)
      throw bad(`'${where}' is outside the safe integer range (±2^53-1)`)
    return v
  }
  if (typeof v === 'string') {
    if (codePoints(v, limits.max_prop_value_chars) > limits.max_prop_value_chars)
      throw bad(`'${where}' is longer than ${limits.max_prop_value_chars} characters`)
    if (LONE_SURROGATE.test(v)) throw bad(`'${where}' is not valid Unicode text`)
    return v
  }
  throw bad(`'${where}' must be a string, number or boolean`)
}

function indexField(delta: Record<string, unknown>): number | null {
  const index = delta.index
  if (index === undefined || index === null) return null
  if (typeof index !== 'number' || !Number.isInteger(index)) throw bad("'index' must be an integer")
  return index
}

function clamp(index: number | null, length: number): number {
  if (index === null || index > length) return length
  return Math.max(index, 0)
}

/** Check a path's syntax; return its id segments (of the parent, for `children`). */
function parsePath(path: unknown, name: string, limits: TreeLimits, children = false): string[] {
  if (typeof path !== 'string') throw bad(`'${name}' must be a string`)
  if (path.length > (limits.max_id_chars + 1) * (limits.max_depth + 1) + CHILDREN.length)
    throw bad(`'${name}' is too long`)
  let p = path
  if (children) {
    if (!p.endsWith(CHILDREN)) throw bad(`'${name}' must be a parent path ending in '/children'`)
    p = p.slice(0, -CHILDREN.length)
  }
  if (!p.startsWith('/' + ROOT_ID)) throw bad(`'${name}' must start with '/${ROOT_ID}'`)
  const segs = p.slice(1).split('/')
  if (segs[0] !== ROOT_ID) throw bad(`'${name}' must start with '/${ROOT_ID}'`)
  for (const s of segs) if (!validId(s, limits)) throw bad(`'${name}' has an invalid segment '${s}'`)
  return segs
}

interface ParsedSubtree {
  node: TreeNode
  ids: string[]
  height: number
  duplicate: string | null
}

/** Validate a node with its descendants (400 for anything malformed) into a normalized node. */
function parseSubtree(raw: unknown, where: string, limits: TreeLimits): ParsedSubtree {
  const seen = new Set<string>()
  const ids: string[] = []
  let duplicate: string | null = null
  let height = 0
  let top: TreeNode | null = null
  const stack: Array<{ item: unknown; depth: number; at: string; siblings: TreeNode[] | null }> = [
    { item: raw, depth: 1, at: where, siblings: null },
  ]
  while (stack.length) {
    const { item, depth, at, siblings } = stack.pop()!
    if (!isRecord(item)) throw bad(`'${at}' must be a node object`)
    const nid = item.id
    if (!validId(nid, limits))
      throw bad(`'${at}.id' must be 1-${limits.max_id_chars} characters of A-Z a-z 0-9 _ . : -`)
    const value = checkValue(item.value, `${at}.value`, limits)
    const rawProps = item.props
    const props: Record<string, Exclude<Scalar, null>> = {}
    let hasProps = false
    if (rawProps !== undefined && rawProps !== null) {
      if (!isRecord(rawProps)) throw bad(`'${at}.props' must be an object`)
      const keys = Object.keys(rawProps)
      if (keys.length > limits.max_props) throw bad(`'${at}.props' has more than ${limits.max_props} props`)
      for (const k of keys) {
        checkPropKey(k, `${at}.props`, limits)
        props[k] = checkPropValue(rawProps[k], `${at}.props.${k}`, limits)
        hasProps = true
      }
    }
    let rawKids = item.children
    if (rawKids === undefined || rawKids === null) rawKids = []
    else if (!Array.isArray(rawKids)) throw bad(`'${at}.children' must be a list`)
    const kids = rawKids as unknown[]
    const norm: TreeNode = hasProps
      ? { id: nid, value, props, children: [] }
      : { id: nid, value, children: [] }
    if (seen.has(nid)) {
      if (duplicate === null) duplicate = nid
    } else {
      seen.add(nid)
      ids.push(nid)
    }
    if (siblings === null) top = norm
    else siblings.push(norm)
    height = Math.max(height, depth)
    for (let i = kids.length - 1; i >= 0; i--) {
      stack.push({ item: kids[i], depth: depth + 1, at: `${at}.children[${i}]`, siblings: norm.children })
    }
  }
  return { node: top!, ids, height, duplicate }
}

/** Copy `node` and the nodes along `segs` (ids from `node` down), replacing the last with fn(last). */
function replaceAlong(node: TreeNode, segs: readonly string[], depth: number, fn: (n: TreeNode) => TreeNode): TreeNode {
  if (depth === segs.length - 1) return fn(node)
  const childId = segs[depth + 1]
  const i = node.children.findIndex((c) => c.id === childId)
  if (i < 0) throw new Error(`tree index out of sync at ${childId}`)
  const children = node.children.slice()
  children[i] = replaceAlong(children[i]!, segs, depth + 1, fn)
  return { ...node, children }
}

function nodeAt(root: TreeNode, segs: readonly string[]): TreeNode {
  let node = root
  for (let d = 1; d < segs.length; d++) {
    const next = node.children.find((c) => c.id === segs[d])
    if (!next) throw new Error(`tree index out of sync at ${segs[d]}`)
    node = next
  }
  return node
}

function subtreeIds(node: TreeNode, out: string[] = []): string[] {
  const stack = [node]
  while (stack.length) {
    const n = stack.pop()!
    out.push(n.id)
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!)
  }
  return out
}

/** Height of a subtree in levels (a leaf is 1). */
function subtreeHeight(node: TreeNode): number {
  let max = 0
  const stack: Array<[TreeNode, number]> = [[node, 1]]
  while (stack.length) {
    const [n, h] = stack.pop()!
    if (h > max) max = h
    for (const c of n.children) stack.push([c, h + 1])
  }
  return max
}

export interface AppliedChange {
  /** The node ids the change touched (added subtree, updated/moved node, removed node's parent). */
  touched: string[]
}

/**
 * A session's tree: immutable nodes plus a parent index, and its revision.
 * `apply` validates first and changes nothing on error.
 */
export class TreeDocument {
  private _root: TreeNode
  private _rev: number
  /** id → parent id; made on first use (see `constructor`). */
  private _parents: Map<string, string | null> | null
  /** The parent index in the making (`indexSome`). */
  private indexing: { map: Map<string, string | null>; stack: TreeNode[] } | null = null
  readonly limits: Readonly<TreeLimits>

  /**
   * A document of (a copy of) `root`. With `adopt`, `root` itself becomes the document's tree, normalized in
   * place: for a snapshot straight from JSON.parse, which no one else holds, that saves copying 100k nodes.
   * An adopted tree's parent index is made on first use (a delta, a check) or in idle-time steps
   * (`indexSome`), not here: a snapshot is shown first, and the index (100k map entries) follows.
   */
  constructor(root: WireNode, rev = 0, limits: Readonly<TreeLimits> = DEFAULT_LIMITS, adopt = false) {
    if (adopt) {
      this._root = adoptTree(root)
      this._parents = null
    } else {
      // A copy indexes its nodes in the same walk.
      const parents = new Map<string, string | null>()
      this._root = copyTree(root, null, parents)
      this._parents = parents
    }
    this._rev = rev
    this.limits = limits
  }

  private get parents(): Map<string, string | null> {
    if (!this._parents) this.indexSome()
    return this._parents!
  }

  /**
   * Make the parent index, or some of it until `deadline` (a `performance.now()` time): idle-time steps after
   * a snapshot, so the first change need not wait for it. True once it is made. Safe to leave half done: the
   * tree cannot change meanwhile, as every change asks for the index first (which finishes it).
   */
  indexSome(deadline = Infinity): boolean {
    if (this._parents) return true
    const job = (this.indexing ??= { map: new Map([[this._root.id, null]]), stack: [this._root] })
    const { map, stack } = job
    while (stack.length) {
      for (let budget = INDEX_STEP_NODES; budget > 0 && stack.length; budget--) {
        const n = stack.pop()!
        const kids = n.children
        for (let i = 0; i < kids.length; i++) {
          map.set(kids[i]!.id, n.id)
          stack.push(kids[i]!)
        }
      }
      if (stack.length && performance.now() >= deadline) return false
    }
    this._parents = map
    this.indexing = null
    return true
  }

  get root(): TreeNode {
    return this._root
  }
  get rev(): number {
    return this._rev
  }
  get size(): number {
    return this.parents.size
  }
  has(id: string): boolean {
    return this.parents.has(id)
  }
  parentOf(id: string): string | null | undefined {
    return this.parents.get(id)
  }

  /** The id path of a node (`/root/a/b`), or null for an unknown id. */
  pathOf(id: string): string | null {
    if (!this.parents.has(id)) return null
    const parts = [id]
    let p = this.parents.get(id)
    while (p !== null && p !== undefined) {
      parts.push(p)
      p = this.parents.get(p)
    }
    return '/' + parts.reverse().join('/')
  }

  /** Raise DeltaError when `delta` would not apply; never changes the tree. */
  validate(delta: unknown): void {
    this.prepare(delta)
  }

  /** Validate, then apply `delta` all-or-nothing; `rev` goes up by one. */
  apply(delta: unknown): AppliedChange {
    const execute = this.prepare(delta)
    const change = execute()
    this._rev += 1
    return change
  }

  /** The id the path names: 404 for an unknown id, 409 when the chain is not its ancestry. */
  private resolve(segs: string[], name: string): string {
    for (const s of segs) {
      if (!this.parents.has(s)) throw new DeltaError(404, `'${name}': node '${s}' does not exist`)
    }
    const nodeId = segs[segs.length - 1]!
    let parent = this.parents.get(nodeId) ?? null
    for (let i = segs.length - 2; i >= 0; i--) {
      if (parent !== segs[i]) throw new DeltaError(409, `'${name}' does not match the tree`)
      parent = this.parents.get(parent) ?? null
    }
    if (parent !== null) throw new DeltaError(409, `'${name}' does not match the tree`)
    return nodeId
  }

  private prepare(delta: unknown): () => AppliedChange {
    if (!isRecord(delta)) throw bad('a delta must be an object')
    const action = delta.action
    if (action === 'add') return this.prepareAdd(delta)
    if (action === 'update') return this.prepareUpdate(delta)
    if (action === 'remove') return this.prepareRemove(delta)
    if (action === 'move') return this.prepareMove(delta)
    if (action === undefined || action === null) throw bad("the delta has no 'action'")
    throw bad(`unknown action '${String(action)}'`)
  }

  private prepareAdd(delta: Record<string, unknown>): () => AppliedChange {
    const limits = this.limits
    const parentSegs = parsePath(delta.path, 'path', limits, true)
    const parsed = parseSubtree(delta.node, 'node', limits)
    const index = indexField(delta)
    const parentId = this.resolve(parentSegs, 'path')
    if (parsed.duplicate !== null) throw new DeltaError(409, `the node carries id '${parsed.duplicate}' twice`)
    for (const id of parsed.ids) {
      if (this.parents.has(id)) throw new DeltaError(409, `a node with id '${id}' already exists`)
    }
    if (this.parents.size + parsed.ids.length > limits.max_nodes)
      throw new DeltaError(409, `the tree would exceed ${limits.max_nodes} nodes`)
    if (parentSegs.length + parsed.height > limits.max_depth)
      throw new DeltaError(409, `the tree would exceed a depth of ${limits.max_depth}`)
    return () => {
      this._root = replaceAlong(this._root, parentSegs, 0, (parent) => {
        const children = parent.children.slice()
        children.splice(clamp(index, children.length), 0, parsed.node)
        return { ...parent, children }
      })
      this.parents.set(parsed.node.id, parentId)
      const stack = [parsed.node]
      while (stack.length) {
        const n = stack.pop()!
        for (const c of n.children) {
          this.parents.set(c.id, n.id)
          stack.push(c)
        }
      }
      return { touched: parsed.ids }
    }
  }

  private prepareUpdate(delta: Record<string, unknown>): () => AppliedChange {
    const limits = this.limits
    const segs = parsePath(delta.path, 'path', limits)
    const raw = delta.fields
    if (!isRecord(raw)) throw bad("'fields' must be an object")
    const hasValue = 'value' in raw
    const hasProps = 'props' in raw
    if (!hasValue && !hasProps) throw bad("'fields' must carry 'value' and/or 'props'")
    const newValue = hasValue ? checkValue(raw.value, 'fields.value', limits) : null
    const newProps = new Map<string, Scalar>()
    if (hasProps) {
      const rp = raw.props
      if (!isRecord(rp)) throw bad("'fields.props' must be an object")
      for (const k of Object.keys(rp)) {
        checkPropKey(k, 'fields.props', limits)
        const v = rp[k]
        newProps.set(k, v === null ? null : checkPropValue(v, `fields.props.${k}`, limits))
      }
    }
    const nodeId = this.resolve(segs, 'path')
    const current = nodeAt(this._root, segs)
    let merged: Record<string, Exclude<Scalar, null>> | null = null
    if (hasProps) {
      merged = { ...(current.props ?? {}) }
      for (const [k, v] of newProps) {
        if (v === null) delete merged[k]
        else merged[k] = v
      }
      if (Object.keys(merged).length > limits.max_props)
        throw bad(`a node may have at most ${limits.max_props} props`)
    }
    return () => {
      this._root = replaceAlong(this._root, segs, 0, (node) => {
        const next: TreeNode = { id: node.id, value: newValue ?? node.value, children: node.children }
        const props = merged ?? node.props
        if (props && Object.keys(props).length) next.props = props
        return next
      })
      return { touched: [nodeId] }
    }
  }

  private prepareRemove(delta: Record<string, unknown>): () => AppliedChange {
    const segs = parsePath(delta.path, 'path', this.limits)
    const nodeId = this.resolve(segs, 'path')
    if (nodeId === ROOT_ID || this.parents.get(nodeId) === null)
      throw new DeltaError(409, 'the root cannot be removed')
    return () => {
      const parentSegs = segs.slice(0, -1)
      const parentId = parentSegs[parentSegs.length - 1]!
      const doomed = subtreeIds(nodeAt(this._root, segs))
      this._root = replaceAlong(this._root, parentSegs, 0, (parent) => ({
        ...parent,
        children: parent.children.filter((c) => c.id !== nodeId),
      }))
      for (const id of doomed) this.parents.delete(id)
      return { touched: [parentId] }
    }
  }

  private prepareMove(delta: Record<string, unknown>): () => AppliedChange {
    const limits = this.limits
    const segs = parsePath(delta.path, 'path', limits)
    const toSegs = parsePath(delta.to, 'to', limits, true)
    const index = indexField(delta)
    const nodeId = this.resolve(segs, 'path')
    const newParent = this.resolve(toSegs, 'to')
    if (nodeId === ROOT_ID || this.parents.get(nodeId) === null)
      throw new DeltaError(409, 'the root cannot be moved')
    if (toSegs.includes(nodeId)) throw new DeltaError(409, 'a node cannot be moved into itself or its own subtree')
    const node = nodeAt(this._root, segs)
    const oldDepth = segs.length
    const newDepth = toSegs.length + 1
    if (newDepth > oldDepth && newDepth - 1 + subtreeHeight(node) > limits.max_depth)
      throw new DeltaError(409, `the tree would exceed a depth of ${limits.max_depth}`)
    return () => {
      const oldParentSegs = segs.slice(0, -1)
      let root = replaceAlong(this._root, oldParentSegs, 0, (parent) => ({
        ...parent,
        children: parent.children.filter((c) => c.id !== nodeId),
      }))
      root = replaceAlong(root, toSegs, 0, (parent) => {
        const children = parent.children.slice()
        children.splice(clamp(index, children.length), 0, node)
        return { ...parent, children }
      })
      this._root = root
      this.parents.set(nodeId, newParent)
      return { touched: [nodeId] }
    }
  }
}

/** A snapshot as the server sends it, made safe to render: children always arrays, no empty props. */
export function normalizeTree(node: WireNode): TreeNode {
  return copyTree(node, null, new Map())
}

/** Does `o` have an own enumerable key? (without allocating Object.keys for every node) */
function hasKeys(o: Record<string, unknown>): boolean {
  for (const _ in o) return true
  return false
}

function nonEmptyProps(p: unknown): p is TreeNode['props'] {
  return isRecord(p) && hasKeys(p)
}

/**
 * A normalized copy of `node`, each node's parent id recorded in `parents`. Recursive: a snapshot's depth is
 * bounded by the server's TREE_MAX_DEPTH. Props are shared, not copied: nodes are immutable here (an update
 * makes a merged copy).
 */
function copyTree(node: WireNode, parentId: string | null, parents: Map<string, string | null>): TreeNode {
  const id = String(node.id)
  parents.set(id, parentId)
  const kids = Array.isArray(node.children) ? node.children : []
  const children = new Array<TreeNode>(kids.length)
  for (let i = 0; i < kids.length; i++) children[i] = copyTree(kids[i] as WireNode, id, parents)
  const out: TreeNode = { id, value: String(node.value ?? ''), children }
  if (nonEmptyProps(node.props)) out.props = node.props
  return out
}

/** `w` itself, normalized in place (fields made strings, `children` always an array, empty props dropped). */
function adoptNode(w: WireNode): TreeNode {
  const n = w as unknown as TreeNode
  if (typeof n.id !== 'string') n.id = String(w.id)
  if (typeof n.value !== 'string') n.value = String(w.value ?? '')
  if (!Array.isArray(n.children)) n.children = []
  if (n.props !== undefined && !nonEmptyProps(n.props)) delete n.props
  return n
}

/** Normalize `root` in place, in one iterative walk. */
function adoptTree(root: WireNode): TreeNode {
  const top = adoptNode(root)
  const stack = [top]
  while (stack.length) {
    const kids = stack.pop()!.children
    for (let i = 0; i < kids.length; i++) stack.push(adoptNode(kids[i] as unknown as WireNode))
  }
  return top
}

/** Apply one delta to a plain tree (O(tree) for the index; convenient for tests and one-offs). */
export function applyDelta(root: WireNode, delta: Delta | unknown, limits?: Readonly<TreeLimits>): TreeNode {
  const doc = new TreeDocument(root, 0, limits)
  doc.apply(delta)
  return doc.root
}

/** A fresh client-side node id, e.g. `n-1a2b3c4d5e6f`. */
export function newNodeId(): string {
  const bytes = new Uint8Array(6)
  crypto.getRandomValues(bytes)
  return 'n-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

export function childrenPath(nodePath: string): string {
  return nodePath + CHILDREN
}
