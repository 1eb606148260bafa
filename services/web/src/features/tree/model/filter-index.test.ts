/**
 * The filter search in steps and narrowed from an earlier term must give exactly what one search at once
 * gives, and that must be what a plain scan of the tree gives: for every case of the shared fixture
 * tests/fixtures/tree_cases.json and for a wider generated tree.
 */
import { describe, expect, it } from 'vitest'
import type { TreeNode } from '@/lib/protocol'
import { TreeDocument } from '@/lib/tree-engine'
import { loadTreeCases } from '@/lib/tree-cases.testing'
import { FilterIndex, FilterSearch, normalizeTerm, searchText, type FilterResult } from './filter-index'

const cases = loadTreeCases()

/** The expected rows, by brute force: a node shows when it or a descendant matches. */
function naive(root: TreeNode, term: string): { rows: string[]; matches: number } {
  const t = normalizeTerm(term)
  const rows: string[] = []
  let matches = 0
  const visit = (n: TreeNode, depth: number): string[] => {
    const self = searchText(n).includes(t)
    if (self) matches++
    const below = n.children.flatMap((c) => visit(c, depth + 1))
    return self || below.length ? [`${depth}:${n.id}`, ...below] : []
  }
  rows.push(...visit(root, 0))
  return { rows, matches }
}

function rowsOf(r: FilterResult): string[] {
  return r.nodes.map((n, i) => `${r.depths[i]}:${n.id}`)
}

/** A search driven one chunk at a time (a deadline always past). */
function stepwise(index: FilterIndex, term: string, previous: FilterResult | null = null): [FilterResult, number] {
  const search = new FilterSearch(index, term, previous)
  let steps = 1
  let out = search.step(-Infinity)
  while (!out) {
    out = search.step(-Infinity)
    steps++
  }
  return [out, steps]
}

/** A tree of `groups` x `per` leaves whose values are `Item <k>` (like bench/browser.py's). */
function items(groups: number, per: number): TreeNode {
  let k = 0
  const children: TreeNode[] = []
  for (let g = 0; g < groups; g++) {
    const leaves: TreeNode[] = []
    for (let i = 0; i < per; i++) leaves.push({ id: `n${++k}`, value: `Item ${k}`, children: [] })
    children.push({ id: `g${g}`, value: `Group ${g}`, props: { kind: g % 2 ? 'odd' : 'even' }, children: leaves })
  }
  return { id: 'root', value: 'Root', children }
}

const TERMS = ['', 'a', 'o', 'high', 'x', 'zz-none', ' e ', 'A', 'ro', 'root']

describe('FilterSearch vs a plain scan (tests/fixtures/tree_cases.json)', () => {
  it('has the shared fixture', () => {
    expect(cases.length).toBeGreaterThan(0)
  })

  for (const c of cases) {
    it(c.name, () => {
      const doc = new TreeDocument(c.initial)
      for (const s of c.steps) if (s.error === null) doc.apply(s.delta)
      const index = FilterIndex.of(doc.root)
      for (const t of TERMS) {
        const want = naive(doc.root, t)
        const whole = index.run(t)
        expect(rowsOf(whole), `${c.name} '${t}'`).toEqual(want.rows)
        expect(whole.matches).toBe(want.matches)
        const [inSteps] = stepwise(index, t)
        expect(rowsOf(inSteps)).toEqual(want.rows)
        expect(inSteps.matches).toBe(want.matches)
        // narrowed from every shorter term it contains
        for (const p of TERMS) {
          const from = index.run(p)
          const [narrowed] = stepwise(index, t, from)
          expect(rowsOf(narrowed), `${c.name} '${p}' → '${t}'`).toEqual(want.rows)
          expect(narrowed.matches).toBe(want.matches)
        }
      }
    })
  }
})

describe('FilterSearch', () => {
  const root = items(40, 50) // 2,041 nodes
  const index = FilterIndex.of(root)

  it('types a term key by key, each search narrowed from the last, as a fresh search would', () => {
    let previous: FilterResult | null = null
    let term = ''
    for (const ch of 'Item 1234') {
      term += ch
      const [narrowed] = stepwise(index, term, previous)
      const want = naive(root, term)
      expect(rowsOf(narrowed), term).toEqual(want.rows)
      expect(narrowed.matches).toBe(want.matches)
      expect(narrowed.term).toBe(normalizeTerm(term))
      previous = narrowed
    }
    expect(previous!.matches).toBe(1)
  })

  it('works in chunks: a term 2,000 nodes match takes several steps', () => {
    const [hits, steps] = stepwise(index, 'i') // every "Item k", and every group by its prop key "kind"
    expect(rowsOf(hits)).toEqual(naive(root, 'i').rows)
    expect(hits.matches).toBe(2040)
    expect(steps).toBeGreaterThan(2)
  })

  it('keeps the index arrays when every row stays (nothing copied), and only then', () => {
    const everyone = index.run('')
    expect(everyone.nodes).toBe(index.nodes)
    expect(everyone.matches).toBe(index.size)
    const items = index.run('item') // every leaf matches: its group and the root stay as ancestors
    expect(items.nodes).toBe(index.nodes)
    expect(items.depths).toBe(index.depths)
    expect(items.matches).toBe(2000)
    const withO = index.run('o') // the root, the groups ("Group", "odd"), no item
    expect(withO.nodes).not.toBe(index.nodes)
    expect(rowsOf(withO)).toEqual(naive(root, 'o').rows)
    expect(withO.matches).toBe(41)
  })

  it('does not narrow from another index or from a term the new one does not contain', () => {
    const other = FilterIndex.of(items(2, 3))
    const foreign = other.run('item 1')
    const fresh = index.run('item 12', foreign)
    expect(rowsOf(fresh)).toEqual(naive(root, 'item 12').rows)
    const unrelated = index.run('group')
    expect(rowsOf(index.run('item 7', unrelated))).toEqual(naive(root, 'item 7').rows)
  })

  it('ignores the separator and surrounding blanks in a term', () => {
    expect(index.run('  ITEM 2000\u0000 ').matches).toBe(1)
  })
})
