import { describe, expect, it } from 'vitest'
import type { TreeNode } from '@/lib/protocol'
import { TreeDocument } from '@/lib/tree-engine'
import type { ProposedNode, ProposedPlace, RowChange } from './decorations'
import { isProposedId, proposedRowId, realChildren, withProposed } from './proposed'
import { RowModel, type OpenState } from './row-model'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    {
      id: 'p',
      value: 'Project',
      children: [
        { id: 'x', value: 'X', children: [] },
        { id: 'y', value: 'Y', children: [] },
      ],
    },
    { id: 'q', value: 'Q', children: [{ id: 'q1', value: 'Q1', children: [] }] },
  ],
}

const change: RowChange = { proposalId: 'pr', index: 0, kind: 'added', description: 'Add', detail: '', checked: true }

function proposed(key: string, value: string, children: ProposedNode[] = []): ProposedNode {
  return { key, nodeId: key, value, kind: 'added', change, box: true, more: [], children }
}

const place = (parentIds: string[], index: number | null, node: ProposedNode): ProposedPlace => ({
  parentIds,
  index,
  node,
})

/** Rows as `  id` lines (two spaces a level). */
function rows(m: RowModel): string[] {
  return m.nodes.map((n, i) => `${'  '.repeat(m.depths[i]!)}${n.id}`)
}

const CLOSED: OpenState = { defaultOpen: false, toggled: new Set(['root']) }

describe('withProposed', () => {
  it('passes the tree through when nothing is proposed', () => {
    expect(withProposed(tree, []).tree).toBe(tree)
    expect(withProposed(null, [place(['root'], 0, proposed('a', 'A'))]).tree).toBeNull()
  })

  it('inserts proposed nodes in order at their index, copying only the paths to them', () => {
    const design = proposed('d', 'Design', [proposed('w', 'Wireframes')])
    const shown = withProposed(tree, [
      place(['root', 'p'], 1, design),
      place(['root', 'p'], 0, proposed('m', 'Moved')),
      place(['root', 'p'], 99, proposed('z', 'Last')),
    ])
    const p = shown.tree!.children[0]!
    expect(p.children.map((c) => c.id)).toEqual([
      proposedRowId('m'),
      'x',
      proposedRowId('d'),
      'y',
      proposedRowId('z'),
    ])
    expect(p.children[2]!.children.map((c) => c.value)).toEqual(['Wireframes'])
    // Structural sharing: the untouched subtree and the real children are the very same objects.
    expect(shown.tree!.children[1]).toBe(tree.children[1])
    expect(p.children[1]).toBe(tree.children[0]!.children[0])
    expect(tree.children[0]!.children).toHaveLength(2) // the real tree is not touched
    // The way to them, and a proposed node with children, are pinned open.
    expect([...shown.pins].sort()).toEqual([proposedRowId('d'), 'p', 'root'].sort())
    expect(shown.rows.get(proposedRowId('w'))?.value).toBe('Wireframes')
    expect(realChildren(p).map((c) => c.id)).toEqual(['x', 'y'])
  })

  it("puts a node whose parent is gone last under what is left of its path; one outside the tree nowhere", () => {
    const shown = withProposed(tree, [
      place(['root', 'p', 'gone'], 0, proposed('a', 'A')),
      place(['other-root'], 0, proposed('b', 'B')),
    ])
    expect(shown.tree!.children[0]!.children.map((c) => c.id)).toEqual(['x', 'y', proposedRowId('a')])
    expect(shown.rows.has(proposedRowId('b'))).toBe(false)
  })

  it('makes row ids no real node can have', () => {
    expect(isProposedId(proposedRowId('pr:0:x'))).toBe(true)
    expect(isProposedId('x')).toBe(false)
    // lib/tree-engine refuses '~' in an id.
    const doc = new TreeDocument(tree, 0)
    expect(() =>
      doc.apply({ action: 'add', path: '/root/children', node: { id: proposedRowId('x'), value: 'v', children: [] } }),
    ).toThrow()
  })
})

describe('RowModel with proposed nodes (pins)', () => {
  const places = [place(['root', 'q'], 1, proposed('n', 'New', [proposed('n1', 'Inner')]))]

  it("shows a proposed node's way open, and the user's open state again once it is gone", () => {
    const m = new RowModel(tree, CLOSED)
    expect(rows(m)).toEqual(['root', '  p', '  q'])
    const shown = withProposed(tree, places)
    m.update(shown.tree, shown.pins)
    expect(rows(m)).toEqual(['root', '  p', '  q', '    q1', `    ${proposedRowId('n')}`, `      ${proposedRowId('n1')}`])
    expect(m.openState).toBe(CLOSED) // the user's state is not changed
    m.update(tree, new Set())
    expect(rows(m)).toEqual(['root', '  p', '  q'])
  })

  it('lets the user close a pinned node, and keeps it closed while the proposal stays', () => {
    const m = new RowModel(tree, CLOSED)
    const shown = withProposed(tree, places)
    m.update(shown.tree, shown.pins)
    m.toggleAt(2) // q
    expect(rows(m)).toEqual(['root', '  p', '  q'])
    // The tree changes elsewhere: the proposal is merged again, q stays closed.
    const doc = new TreeDocument(tree, 0)
    doc.apply({ action: 'update', path: '/root/p', fields: { value: 'P2' } })
    const again = withProposed(doc.root, places)
    m.update(again.tree, again.pins)
    expect(rows(m)).toEqual(['root', '  p', '  q'])
    // Opened again by the user: it shows the proposed node.
    m.toggleAt(2)
    expect(rows(m)).toHaveLength(6)
  })

  it('matches a fresh build after every change of tree, proposals and pins', () => {
    const opens: OpenState[] = [CLOSED, { defaultOpen: true, toggled: new Set(['p']) }]
    const proposals: ProposedPlace[][] = [
      [],
      places,
      [place(['root', 'p'], 0, proposed('a', 'A')), ...places],
      [place(['root', 'p'], 2, proposed('b', 'B', [proposed('b1', 'B1')]))],
      [],
    ]
    for (const open of opens) {
      const doc = new TreeDocument(tree, 0)
      const m = new RowModel(doc.root, open)
      proposals.forEach((ps, i) => {
        if (i === 3) doc.apply({ action: 'add', path: '/root/p/children', node: { id: 'k', value: 'K', children: [] } })
        const shown = withProposed(doc.root, ps)
        m.update(shown.tree, shown.pins)
        const fresh = new RowModel(null, open)
        fresh.update(shown.tree, shown.pins)
        expect(rows(m), `step ${i}`).toEqual(rows(fresh))
      })
    }
  })
})

/** A small seeded PRNG (mulberry32), so a failure replays. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('RowModel with proposed nodes vs a full rebuild, random trees and proposals', () => {
  it.each([1, 2, 3])('seed %i', (seed) => {
    const rnd = prng(seed)
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
    const doc = new TreeDocument({ id: 'root', value: 'Root', children: [] }, 0)
    const open: OpenState = { defaultOpen: false, toggled: new Set(['root', 'n1', 'n4', 'n7']) }
    const m = new RowModel(doc.root, open)
    let places: ProposedPlace[] = []
    let next = 0
    for (let step = 0; step < 200; step++) {
      const paths: string[][] = []
      const walk = (n: TreeNode, above: string[]) => {
        paths.push([...above, n.id])
        for (const c of n.children) walk(c, [...above, n.id])
      }
      walk(doc.root, [])
      const r = rnd()
      if (r < 0.5 || paths.length < 4) {
        doc.apply({ action: 'add', path: `/${pick(paths).join('/')}/children`, node: { id: `n${next++}`, value: 'v', children: [] } })
      } else if (r < 0.65) {
        const victim = pick(paths.slice(1))
        doc.apply({ action: 'remove', path: '/' + victim.join('/') })
      } else {
        // A new proposal (or none): up to three places, some nested, some under paths gone since.
        places = Array.from({ length: Math.floor(rnd() * 4) }, (_, k) => ({
          parentIds: rnd() < 0.1 ? [...pick(paths), 'gone'] : pick(paths),
          index: rnd() < 0.3 ? null : Math.floor(rnd() * 4),
          node: proposed(`s${step}k${k}`, 'P', rnd() < 0.5 ? [proposed(`s${step}k${k}c`, 'C')] : []),
        }))
      }
      const shown = withProposed(doc.root, places)
      m.update(shown.tree, shown.pins)
      const fresh = new RowModel(null, open)
      fresh.update(shown.tree, shown.pins)
      expect(rows(m), `seed ${seed} step ${step}`).toEqual(rows(fresh))
      expect(m.nodes.every((n, i) => n === fresh.nodes[i]), `seed ${seed} step ${step}: the same node objects`).toBe(true)
    }
  })
})
