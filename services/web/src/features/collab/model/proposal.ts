/**
 * Reading a proposal: each delta in words, which deltas need which (so that
 * ticking one ticks what it needs), and what each delta does to which node
 * (for the tree's diff overlay). Pure.
 */
import type { Delta, TreeNode, WireNode } from '@/lib/protocol'

/** The ids named by a path: `/root/a/children` → ['root', 'a']. */
export function pathIds(path: string): string[] {
  const parts = path.split('/').filter(Boolean)
  if (parts[parts.length - 1] === 'children') parts.pop()
  return parts
}

/** The node an id path leads to in `tree`, or null. */
export function nodeAt(tree: TreeNode | null, path: string): TreeNode | null {
  const ids = pathIds(path)
  if (!tree || ids[0] !== tree.id) return null
  let node: TreeNode = tree
  for (const id of ids.slice(1)) {
    const next: TreeNode | undefined = node.children.find((c) => c.id === id)
    if (!next) return null
    node = next
  }
  return node
}

function subtreeIds(node: WireNode, out: Set<string>): void {
  out.add(node.id)
  for (const c of node.children ?? []) subtreeIds(c, out)
}

/** The id a delta acts on: the added node, or the last id of its path. */
export function targetId(delta: Delta): string {
  if (delta.action === 'add') return delta.node.id
  const ids = pathIds(delta.path)
  return ids[ids.length - 1] ?? ''
}

/**
 * For each delta, the earlier deltas it needs: delta j needs i when j's `path`
 * or `to` names a node that i adds (anywhere in i's subtree) or moves (the
 * server's rule, docs/protocol.md §15.4).
 */
export function prerequisites(deltas: Delta[]): number[][] {
  const introduced: Array<Set<string>> = deltas.map((d) => {
    const ids = new Set<string>()
    if (d.action === 'add') subtreeIds(d.node, ids)
    else if (d.action === 'move') ids.add(targetId(d))
    return ids
  })
  return deltas.map((d, j) => {
    const named = new Set(pathIds(d.path))
    if (d.action === 'move') for (const id of pathIds(d.to)) named.add(id)
    const needs: number[] = []
    for (let i = 0; i < j; i++) {
      for (const id of introduced[i]!) {
        if (named.has(id)) {
          needs.push(i)
          break
        }
      }
    }
    return needs
  })
}

/** `index` ticked: it and (transitively) what it needs. */
export function withPrerequisites(selected: ReadonlySet<number>, index: number, needs: number[][]): Set<number> {
  const out = new Set(selected)
  const stack = [index]
  while (stack.length) {
    const i = stack.pop()!
    if (out.has(i) && i !== index) continue
    out.add(i)
    stack.push(...(needs[i] ?? []).filter((n) => !out.has(n)))
  }
  return out
}

/** `index` unticked: it and (transitively) every delta that needs it. */
export function withoutDependents(selected: ReadonlySet<number>, index: number, needs: number[][]): Set<number> {
  const out = new Set(selected)
  const stack = [index]
  while (stack.length) {
    const i = stack.pop()!
    out.delete(i)
    needs.forEach((list, j) => {
      if (out.has(j) && list.includes(i)) stack.push(j)
    })
  }
  return out
}

/** A node's name for a sentence: its value in the tree or in the proposal, else its id. */
type NameOf = (id: string) => string

/** Records the value of every node along `path` (as far as it leads in `tree`). */
function namesAlong(tree: TreeNode, path: string, out: Map<string, string>): void {
  const ids = pathIds(path)
  if (ids[0] !== tree.id) return
  let node: TreeNode | undefined = tree
  out.set(node.id, node.value)
  for (let k = 1; k < ids.length && node; k++) {
    node = node.children.find((c) => c.id === ids[k])
    if (node) out.set(node.id, node.value)
  }
}

export function nameLookup(tree: TreeNode | null, deltas: Delta[]): NameOf {
  const added = new Map<string, string>()
  const walk = (n: WireNode) => {
    added.set(n.id, n.value)
    for (const c of n.children ?? []) walk(c)
  }
  for (const d of deltas) if (d.action === 'add') walk(d.node)
  // The names a delta's sentence uses are on its paths: walking them costs their depth, not the tree's size
  // (a proposal over a 100k-node tree is read again on every tree update while it is open).
  const index = new Map<string, string>()
  if (tree)
    for (const d of deltas) {
      namesAlong(tree, d.path, index)
      if (d.action === 'move') namesAlong(tree, d.to, index)
    }
  let indexed = false
  return (id) => {
    const fromProposal = added.get(id) ?? index.get(id)
    if (fromProposal !== undefined) return fromProposal
    if (!indexed && tree) {
      // Built once per lookup, and only when a name is on no path (the tree moved on since the proposal).
      const stack: TreeNode[] = [tree]
      while (stack.length) {
        const n = stack.pop()!
        index.set(n.id, n.value)
        stack.push(...n.children)
      }
      indexed = true
    }
    return index.get(id) ?? id
  }
}

function propsText(props: Record<string, unknown>): string {
  return Object.entries(props)
    .map(([k, v]) => (v === null ? `remove ${k}` : `${k} = ${String(v)}`))
    .join(', ')
}

/** One delta in words: "Add 'Design' under 'Project'", "Rename 'A' → 'B'". */
export function describeDelta(delta: Delta, nameOf: NameOf): string {
  switch (delta.action) {
    case 'add': {
      const parent = pathIds(delta.path)
      return `Add '${delta.node.value}' under '${nameOf(parent[parent.length - 1] ?? 'root')}'`
    }
    case 'remove':
      return `Remove '${nameOf(targetId(delta))}'`
    case 'move': {
      const to = pathIds(delta.to)
      return `Move '${nameOf(targetId(delta))}' under '${nameOf(to[to.length - 1] ?? 'root')}'`
    }
    case 'update': {
      const name = nameOf(targetId(delta))
      const parts: string[] = []
      if (typeof delta.fields.value === 'string') parts.push(`Rename '${name}' → '${delta.fields.value}'`)
      if (delta.fields.props && Object.keys(delta.fields.props).length)
        parts.push(`${parts.length ? 'set' : `Set on '${name}':`} ${propsText(delta.fields.props)}`)
      return parts.join('; ') || `Update '${name}'`
    }
  }
}
