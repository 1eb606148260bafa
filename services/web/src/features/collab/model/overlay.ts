/**
 * A proposal as a diff over the tree (docs: added green, removed struck through in red, moved as a ghost at
 * the old place, updated old → new). Two parts, both plain data for the tree feature:
 * - `changes`: node id → the changes to show on that node's row (removed, updated, moved at its old place);
 *   rows read it with one Map lookup.
 * - `proposed`: the nodes the proposal adds, as green rows where they would go (nested under the proposed
 *   node they are added to), and each moved node again at its new place; the tree merges them into its rows
 *   along their paths only.
 * Built when a proposal, its ticks or the tree change, in time proportional to the proposal and the depth of
 * its paths (never a pass over the whole tree while the paths still lead somewhere).
 */
import type { Delta, ProposalData, TreeNode } from '@/lib/protocol'
import { describeDelta, nameLookup, nodeAt, pathIds, targetId } from './proposal'

export interface RowChange {
  proposalId: string
  /** The delta's index in the proposal (what `proposal_decision.accept` lists). */
  index: number
  kind: 'added' | 'removed' | 'moved' | 'updated'
  /** The delta in words (the checkbox's name). */
  description: string
  /** added: the new node's value; moved: where it goes; updated: the new value (or props). */
  detail: string
  checked: boolean
}

/** A proposed node (the tree feature's `ProposedNode`): an added node, or a moved node at its new place. */
export interface ProposedNode {
  /** `<proposal id>:<delta index>:<node id>`: unique among the proposed nodes shown. */
  key: string
  /** The node's id (the id an added node will have). */
  nodeId: string
  value: string
  kind: 'added' | 'moved'
  change: RowChange
  /** Carries `change`'s checkbox: the top of an added subtree (a move's is on its row at the old place). */
  box: boolean
  /** Later changes of the same proposal to this node (a rename, a removal). */
  more: RowChange[]
  children: ProposedNode[]
}

/** Where a proposed node goes: under an existing node (id path, root first), at an index (null: last). */
export interface ProposedPlace {
  parentIds: readonly string[]
  index: number | null
  node: ProposedNode
}

export interface ProposalOverlay {
  changes: Map<string, RowChange[]>
  proposed: ProposedPlace[]
}

type Kind = RowChange['kind']
const KINDS: Record<Delta['action'], Kind> = { add: 'added', remove: 'removed', move: 'moved', update: 'updated' }

function detailOf(d: Delta, nameOf: (id: string) => string): string {
  switch (d.action) {
    case 'add':
      return d.node.value
    case 'move':
      return `moves under '${nameOf(pathIds(d.to).at(-1) ?? 'root')}'`
    case 'update':
      return d.fields.value ?? Object.entries(d.fields.props ?? {}).map(([k, v]) => `${k}: ${String(v)}`).join(', ')
    case 'remove':
      return ''
  }
}

/** The changes of `proposals` to show in the tree, with their ticks (`selectedOf`). */
export function proposalOverlay(
  proposals: readonly ProposalData[],
  selectedOf: (p: ProposalData) => ReadonlySet<number>,
  tree: TreeNode | null,
): ProposalOverlay {
  const overlay: ProposalOverlay = { changes: new Map(), proposed: [] }
  if (!tree) return overlay
  for (const p of proposals) addProposal(overlay, p, selectedOf(p), tree)
  return overlay
}

function addProposal(overlay: ProposalOverlay, p: ProposalData, selected: ReadonlySet<number>, tree: TreeNode): void {
  const nameOf = nameLookup(tree, p.deltas)
  // Node id → its proposed row (added nodes, moved nodes' new places): where later deltas of `p` nest or land.
  const shown = new Map<string, ProposedNode>()
  p.deltas.forEach((d, index) => {
    const change: RowChange = {
      proposalId: p.id,
      index,
      kind: KINDS[d.action],
      description: describeDelta(d, nameOf),
      detail: detailOf(d, nameOf),
      checked: selected.has(index),
    }
    if (d.action === 'add') {
      const node = proposedNode(p.id, index, d.node, change, true, shown)
      place(overlay, shown, d.path, d.index ?? null, node)
    } else if (d.action === 'move') {
      addChange(overlay, shown, targetId(d), change)
      const id = targetId(d)
      const node: ProposedNode = {
        key: `${p.id}:${index}:${id}`,
        nodeId: id,
        value: nameOf(id),
        kind: 'moved',
        change,
        box: false,
        more: [],
        children: [],
      }
      shown.set(id, node)
      place(overlay, shown, d.to, movedIndex(tree, d), node)
    } else {
      addChange(overlay, shown, targetId(d), change)
    }
  })
}

/** The rows of an added subtree: its top carries the checkbox (`box`), the nodes inside share its change. */
function proposedNode(
  proposalId: string,
  index: number,
  wire: Extract<Delta, { action: 'add' }>['node'],
  change: RowChange,
  box: boolean,
  shown: Map<string, ProposedNode>,
): ProposedNode {
  const node: ProposedNode = {
    key: `${proposalId}:${index}:${wire.id}`,
    nodeId: wire.id,
    value: wire.value,
    kind: 'added',
    change,
    box,
    more: [],
    children: (wire.children ?? []).map((c) => proposedNode(proposalId, index, c, change, false, shown)),
  }
  shown.set(wire.id, node)
  return node
}

/** A change to a node: on its proposed row when the proposal adds it, else on the node's own row. */
function addChange(overlay: ProposalOverlay, shown: Map<string, ProposedNode>, id: string, change: RowChange): void {
  const proposed = shown.get(id)
  if (proposed?.kind === 'added') {
    proposed.more.push(change)
    return
  }
  const list = overlay.changes.get(id)
  if (list) list.push(change)
  else overlay.changes.set(id, [change])
}

/**
 * `node` under the parent `parentPath` names: nested in that parent's proposed row when the proposal adds or
 * moves it (in order: the index counts the proposed siblings before it), else under the existing node.
 */
function place(
  overlay: ProposalOverlay,
  shown: Map<string, ProposedNode>,
  parentPath: string,
  index: number | null,
  node: ProposedNode,
): void {
  const ids = pathIds(parentPath)
  const parent = shown.get(ids.at(-1) ?? '')
  if (parent && parent !== node) {
    parent.children.splice(index === null ? parent.children.length : Math.min(index, parent.children.length), 0, node)
    return
  }
  // Not under a proposed node: under the existing one (the tree puts it last under the deepest node of the
  // path that is left when the tree has moved on since).
  overlay.proposed.push({ parentIds: ids, index, node })
}

/**
 * Where a moved node shows at its new place among what its new parent shows. The server's index counts the
 * siblings once the node has left its old place; under the same parent, the old place still shows (dashed),
 * so a later index is one more.
 */
function movedIndex(tree: TreeNode, d: Extract<Delta, { action: 'move' }>): number | null {
  const index = d.index ?? null
  const from = pathIds(d.path)
  const to = pathIds(d.to)
  if (index === null || from.length !== to.length + 1 || from.slice(0, -1).join('/') !== to.join('/')) return index
  const old = nodeAt(tree, '/' + to.join('/'))?.children.findIndex((c) => c.id === from.at(-1)) ?? -1
  return old >= 0 && old <= index ? index + 1 : index
}
