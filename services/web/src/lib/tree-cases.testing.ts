/**
 * The shared tree cases (tests/fixtures/tree_cases.json, written from the Python engine) for the
 * tests that hold the browser's tree code to the server's. Test-only: it reads the file from disk.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { TreeNode } from './protocol'

// Relative to services/web (vitest's root and working directory): the repository's tests/fixtures.
export const TREE_CASES_FILE = resolve(process.cwd(), '../../tests/fixtures/tree_cases.json')

export interface TreeCaseStep {
  delta: unknown
  error: null | 400 | 404 | 409
}

export interface TreeCase {
  name: string
  initial: TreeNode
  steps: TreeCaseStep[]
  final: TreeNode
  rev: number
}

/** Every case, or none when the file is missing (each suite asserts it has some). */
export function loadTreeCases(): TreeCase[] {
  if (!existsSync(TREE_CASES_FILE)) return []
  return (JSON.parse(readFileSync(TREE_CASES_FILE, 'utf8')) as { cases: TreeCase[] }).cases
}
