/**
 * The browser's tree engine against the server's: the shared cases in
 * tests/fixtures/tree_cases.json (written from the Python engine) must give
 * identical final trees and revisions; failing steps throw and change nothing.
 */
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { TreeNode } from './protocol'
import { DeltaError, TreeDocument } from './tree-engine'
import { loadTreeCases, TREE_CASES_FILE as FIXTURE } from './tree-cases.testing'

const cases = loadTreeCases()

describe('tree engine vs the server engine (tests/fixtures/tree_cases.json)', () => {
  it('has the shared fixture', () => {
    expect(existsSync(FIXTURE), `${FIXTURE} is missing`).toBe(true)
    expect(cases.length).toBeGreaterThan(0)
  })

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const doc = new TreeDocument(c.initial, 0)
    c.steps.forEach((step, i) => {
      const before = doc.root
      const rev = doc.rev
      if (step.error === null) {
        expect(() => doc.apply(step.delta), `step ${i} should apply`).not.toThrow()
        expect(doc.rev).toBe(rev + 1)
      } else {
        let caught: unknown = null
        try {
          doc.apply(step.delta)
        } catch (err) {
          caught = err
        }
        expect(caught, `step ${i} should fail with ${step.error}`).toBeInstanceOf(DeltaError)
        expect((caught as DeltaError).code, `step ${i}: ${(caught as Error).message}`).toBe(step.error)
        expect(doc.root).toBe(before) // unchanged, same object
        expect(doc.rev).toBe(rev)
      }
    })
    expect(doc.root).toEqual(c.final)
    expect(doc.rev).toBe(c.rev)
  })
})

/** Every node's id path, by walking the tree (what the one-pass parent index must agree with). */
function walkPaths(root: TreeNode): Map<string, string> {
  const out = new Map<string, string>()
  const stack: Array<[TreeNode, string]> = [[root, '/' + root.id]]
  while (stack.length) {
    const [n, p] = stack.pop()!
    out.set(n.id, p)
    for (const c of n.children) stack.push([c, `${p}/${c.id}`])
  }
  return out
}

describe('a document built from a snapshot (tests/fixtures/tree_cases.json)', () => {
  for (const c of cases) {
    it(`${c.name}: the parent index of the final tree is the tree's own`, () => {
      const doc = new TreeDocument(c.final, c.rev)
      const paths = walkPaths(c.final)
      expect(doc.size).toBe(paths.size)
      for (const [id, path] of paths) expect(doc.pathOf(id), id).toBe(path)
      expect(doc.root).toEqual(c.final)
      // and an applied document continues from it exactly like the server's
      const fromSnapshot = new TreeDocument(c.initial)
      for (const s of c.steps) if (s.error === null) fromSnapshot.apply(s.delta)
      expect(new TreeDocument(fromSnapshot.root).root).toEqual(fromSnapshot.root)
    })
    it(`${c.name}: a snapshot adopted in place is the same document as a copied one`, () => {
      const wire = JSON.parse(JSON.stringify(c.final)) as TreeNode
      const copied = new TreeDocument(c.final, c.rev)
      const adopted = new TreeDocument(wire, c.rev, undefined, true)
      expect(adopted.root).toBe(wire)
      expect(adopted.root).toEqual(copied.root)
      for (const id of walkPaths(c.final).keys()) expect(adopted.pathOf(id)).toBe(copied.pathOf(id))
      // and deltas apply to it exactly as to the copy
      for (const s of c.steps) {
        if (s.error !== null) continue
        try {
          copied.apply(s.delta)
        } catch {
          continue // a step of the case's start state, not of its final tree
        }
        adopted.apply(s.delta)
      }
      expect(adopted.root).toEqual(copied.root)
    })
  }
})

describe('adopting a wire snapshot in place', () => {
  it('normalizes what JSON omits or leaves empty, as a copy does', () => {
    const wire = JSON.parse(
      '{"id":"root","value":"R","props":{},"children":[{"id":"a","value":"A","props":{"p":1}},{"id":"b","value":"B","children":null}]}',
    ) as TreeNode
    const copy = new TreeDocument(JSON.parse(JSON.stringify(wire)) as TreeNode)
    const doc = new TreeDocument(wire, 3, undefined, true)
    expect(doc.root).toEqual({
      id: 'root',
      value: 'R',
      children: [
        { id: 'a', value: 'A', props: { p: 1 }, children: [] },
        { id: 'b', value: 'B', children: [] },
      ],
    })
    expect(doc.root).toEqual(copy.root)
    expect('props' in doc.root).toBe(false)
    expect(doc.pathOf('b')).toBe('/root/b')
    expect(doc.rev).toBe(3)
  })
})

