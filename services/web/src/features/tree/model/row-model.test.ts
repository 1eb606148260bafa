/**
 * The incremental row model against a full rebuild: for every case of the shared fixture
 * tests/fixtures/tree_cases.json, after every step (one delta at a time, and all steps as one coalesced
 * update), under several open states, `update` must give exactly the rows a fresh build gives.
 */
import { describe, expect, it } from 'vitest'
import type { TreeNode } from '@/lib/protocol'
import { TreeDocument } from '@/lib/tree-engine'
import { loadTreeCases } from '@/lib/tree-cases.testing'
import { FilterIndex, FilterIndexBuilder } from './filter-index'
import { ALL_OPEN, ancestorsOf, pathAt, RowModel, type OpenState } from './row-model'

const cases = loadTreeCases()

function allIds(root: TreeNode): string[] {
  const out: string[] = []
  const stack = [root]
  while (stack.length) {
    const n = stack.pop()!
    out.push(n.id)
    stack.push(...n.children)
  }
  return out
}

/** Open states to check under: all open, all closed but the root, every other node closed. */
function openStates(root: TreeNode): OpenState[] {
  const ids = allIds(root)
  return [
    ALL_OPEN,
    { defaultOpen: false, toggled: new Set([root.id]) },
    { defaultOpen: true, toggled: new Set(ids.filter((_, i) => i % 2 === 1)) },
  ]
}

function rows(m: RowModel) {
  return m.nodes.map((n, i) => `${'  '.repeat(m.depths[i]!)}${n.id}:${n.value}`)
}

function expectSame(m: RowModel, open: OpenState, where: string) {
  const fresh = new RowModel(m.tree, open)
  expect(rows(m), where).toEqual(rows(fresh))
  m.nodes.forEach((n, i) => expect(n, `${where}: row ${i} is the current node object`).toBe(fresh.nodes[i]))
}

describe('RowModel.update vs a full rebuild (tests/fixtures/tree_cases.json)', () => {
  it('has the shared fixture', () => {
    expect(cases.length).toBeGreaterThan(0)
  })

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    for (const open of openStates(c.initial)) {
      const doc = new TreeDocument(c.initial, 0)
      const stepwise = new RowModel(doc.root, open)
      const coalesced = new RowModel(doc.root, open)
      c.steps.forEach((step, i) => {
        try {
          doc.apply(step.delta)
        } catch {
          return // a failing step changes nothing (the engine's own test checks that)
        }
        stepwise.update(doc.root)
        expectSame(stepwise, open, `step ${i}`)
      })
      coalesced.update(doc.root)
      expectSame(coalesced, open, 'all steps in one update')
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

describe('RowModel.update vs a full rebuild, random deltas', () => {
  it.each([1, 2, 3, 4])('seed %i: adds, removes, moves and renames, one by one and in bursts', (seed) => {
    const rnd = prng(seed)
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
    const doc = new TreeDocument({ id: 'root', value: 'Root', children: [] }, 0)
    let next = 0
    // some of the nodes to come are closed branches
    const open: OpenState = { defaultOpen: true, toggled: new Set(['n2', 'n5', 'k4', 'n9', 'n14', 'k20', 'n31']) }
    const oneByOne = new RowModel(doc.root, open)
    const bursts = new RowModel(doc.root, open)
    for (let step = 0; step < 400; step++) {
      const ids = allIds(doc.root)
      const path = (id: string) => '/' + [...(ancestorsOf(doc.root, id) ?? []), id].join('/')
      const id = pick(ids)
      const r = rnd()
      try {
        if (r < 0.45 || ids.length < 5) {
          const kids = Array.from({ length: Math.floor(rnd() * 3) }, () => ({ id: `k${next++}`, value: 'kid', children: [] }))
          doc.apply({ action: 'add', path: `${path(id)}/children`, node: { id: `n${next++}`, value: `v${step}`, children: kids }, index: Math.floor(rnd() * 4) })
        } else if (r < 0.6 && id !== 'root') {
          doc.apply({ action: 'remove', path: path(id) })
        } else if (r < 0.8 && id !== 'root') {
          doc.apply({ action: 'move', path: path(id), to: `${path(pick(ids))}/children`, index: Math.floor(rnd() * 4) })
        } else {
          doc.apply({ action: 'update', path: path(id), fields: { value: `r${step}` } })
        }
      } catch {
        continue // a move into its own subtree: refused, nothing changed
      }
      oneByOne.update(doc.root)
      expectSame(oneByOne, oneByOne.openState, `seed ${seed} step ${step}`)
      if (step % 5 === 4) {
        bursts.update(doc.root)
        expectSame(bursts, bursts.openState, `seed ${seed} burst at ${step}`)
      }
    }
  })
})

describe('RowModel', () => {
  const tree: TreeNode = {
    id: 'root',
    value: 'Root',
    children: [
      { id: 'a', value: 'A', children: [{ id: 'a1', value: 'A1', children: [] }] },
      { id: 'b', value: 'B', props: { prio: 'high' }, children: [] },
    ],
  }

  it('touches only the changed rows: untouched node objects stay', () => {
    const doc = new TreeDocument(tree, 0)
    const m = new RowModel(doc.root)
    const before = m.nodes.slice()
    doc.apply({ action: 'update', path: '/root/b', fields: { value: 'B2' } })
    m.update(doc.root)
    expect(m.nodes[2]).toBe(before[2]) // a1
    expect(m.nodes[3]!.value).toBe('B2')
  })

  it('toggles a branch and finds paths and ancestors', () => {
    const m = new RowModel(tree)
    expect(m.nodes.map((n) => n.id)).toEqual(['root', 'a', 'a1', 'b'])
    m.toggleAt(1)
    expect(m.nodes.map((n) => n.id)).toEqual(['root', 'a', 'b'])
    m.toggleAt(1)
    expect(pathAt(m.nodes, m.depths, 2)).toBe('/root/a/a1')
    expect(ancestorsOf(tree, 'a1')).toEqual(['root', 'a'])
    expect(ancestorsOf(tree, 'zz')).toBeNull()
  })

  it('filters by value or prop, keeps ancestors, counts only matches', () => {
    const f = FilterIndex.of(tree)
    expect(f.run('a1')).toMatchObject({ matches: 1, depths: [0, 1, 2] })
    expect(f.run('HIGH').nodes.map((n) => n.id)).toEqual(['root', 'b'])
    expect(f.run('nothing like it')).toMatchObject({ matches: 0, nodes: [] })
  })
})

describe('FilterIndexBuilder in steps vs a build at once (tests/fixtures/tree_cases.json)', () => {
  const terms = ['', 'a', 'o', 'high', 'x', 'zz-none', ' e ']
  for (const c of cases) {
    it(c.name, () => {
      const doc = new TreeDocument(c.initial)
      for (const s of c.steps) if (s.error === null) doc.apply(s.delta)
      const whole = FilterIndex.of(doc.root)
      const builder = new FilterIndexBuilder(doc.root, 1)
      let steps = 0
      let built: FilterIndex | null = null
      // A deadline already past: every call does one node and stops.
      while (!built) {
        built = builder.step(-Infinity)
        steps++
      }
      expect(steps).toBe(whole.nodes.length)
      expect(builder.step(-Infinity)).toBe(built)
      for (const t of terms) {
        const a = built.run(t)
        const b = whole.run(t)
        expect(a.matches, `${c.name} '${t}'`).toBe(b.matches)
        expect(a.depths).toEqual(b.depths)
        expect(a.nodes.map((n) => n.id)).toEqual(b.nodes.map((n) => n.id))
      }
    })
  }
})

