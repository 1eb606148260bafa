import { describe, expect, it } from 'vitest'
import type { Delta, TreeNode } from '@/lib/protocol'
import { describeDelta, nameLookup, nodeAt, prerequisites, withoutDependents, withPrerequisites } from './proposal'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    { id: 'p', value: 'Project', children: [{ id: 'x', value: 'Old', children: [] }] },
    { id: 'q', value: 'Later', children: [] },
  ],
}

const deltas: Delta[] = [
  { action: 'add', path: '/root/p/children', node: { id: 'd', value: 'Design', children: [] } },
  { action: 'add', path: '/root/p/d/children', node: { id: 'w', value: 'Wireframes', children: [] } },
  { action: 'update', path: '/root/p/x', fields: { value: 'New', props: { priority: 'high' } } },
  { action: 'move', path: '/root/q', to: '/root/p/children', index: 0 },
  { action: 'remove', path: '/root/p/q' },
]

describe('proposal model', () => {
  it('finds nodes by id path', () => {
    expect(nodeAt(tree, '/root/p/x')?.value).toBe('Old')
    expect(nodeAt(tree, '/root/p/children')?.value).toBe('Project')
    expect(nodeAt(tree, '/root/nope')).toBeNull()
  })

  it("names nodes from the tree along the deltas' paths, and a node the tree moved since from the whole tree", () => {
    // 'x' is on a delta's path; 'q' was moved under 'p' since the proposal (its path no longer leads to it).
    const moved: TreeNode = {
      ...tree,
      children: [{ ...tree.children[0]!, children: [...tree.children[0]!.children, tree.children[1]!] }],
    }
    const nameOf = nameLookup(moved, [
      { action: 'update', path: '/root/p/x', fields: { value: 'New' } },
      { action: 'remove', path: '/root/q' },
    ])
    expect([nameOf('x'), nameOf('p'), nameOf('root'), nameOf('q'), nameOf('nope')]).toEqual([
      'Old',
      'Project',
      'Root',
      'Later',
      'nope',
    ])
  })

  it('describes each change in words', () => {
    const nameOf = nameLookup(tree, deltas)
    expect(deltas.map((d) => describeDelta(d, nameOf))).toEqual([
      "Add 'Design' under 'Project'",
      "Add 'Wireframes' under 'Design'",
      "Rename 'Old' → 'New'; set priority = high",
      "Move 'Later' under 'Project'",
      "Remove 'Later'",
    ])
  })

  it('knows which change needs which: a child needs its added parent, a moved node its move', () => {
    const needs = prerequisites(deltas)
    expect(needs).toEqual([[], [0], [], [], [3]])
    // Ticking the child ticks its parent; unticking the parent unticks the child.
    expect([...withPrerequisites(new Set(), 1, needs)].sort()).toEqual([0, 1])
    expect([...withoutDependents(new Set([0, 1, 2]), 0, needs)].sort()).toEqual([2])
  })
})
