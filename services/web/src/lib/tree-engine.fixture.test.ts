/**
 * The browser's tree engine against the server's: the shared cases in
 * tests/fixtures/tree_cases.json (written from the Python engine) must give
 * identical final trees and revisions; failing steps throw and change nothing.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { TreeNode } from './protocol'
import { DeltaError, TreeDocument } from './tree-engine'

// Relative to services/web (vitest's root and working directory): the repository's tests/fixtures.
const FIXTURE = resolve(process.cwd(), '../../tests/fixtures/tree_cases.json')

interface Step {
  delta: unknown
  error: null | 400 | 404 | 409
}
interface Case {
  name: string
  initial: TreeNode
  steps: Step[]
  final: TreeNode
  rev: number
}

function loadCases(): Case[] {
  if (!existsSync(FIXTURE)) return []
  const body = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { cases: Case[] }
  return body.cases
}

const cases = loadCases()

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
  }
})

