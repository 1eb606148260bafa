import { describe, expect, it } from 'vitest'
import type { ProposalData, TreeNode } from '@/lib/protocol'
import { proposalOverlay } from './overlay'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    { id: 'p', value: 'Project', children: [{ id: 'x', value: 'Old', children: [] }] },
    { id: 'q', value: 'Later', children: [] },
  ],
}

const proposal: ProposalData = {
  id: 'pr',
  base_rev: 1,
  author: { username: 'eddie', via: 'assistant' },
  summary: '',
  status: 'open',
  deltas: [
    { action: 'add', path: '/root/p/children', node: { id: 'd', value: 'Design', children: [] } },
    { action: 'add', path: '/root/p/d/children', node: { id: 'w', value: 'Wireframes', children: [] } },
    { action: 'update', path: '/root/p/x', fields: { value: 'New' } },
    { action: 'move', path: '/root/q', to: '/root/p/children' },
    { action: 'remove', path: '/root/p/x' },
  ],
}

describe('proposalOverlay', () => {
  it('puts each change on the row it concerns, with its tick', () => {
    const overlay = proposalOverlay([proposal], () => new Set([0, 2, 3, 4]), tree)
    const kinds = (id: string) => overlay.get(id)?.map((c) => [c.index, c.kind, c.detail, c.checked])
    // Added nodes show under their parent; one under an added node shows on the nearest existing row.
    expect(kinds('p')).toEqual([
      [0, 'added', 'Design', true],
      [1, 'added', 'Wireframes', false],
    ])
    expect(kinds('x')).toEqual([
      [2, 'updated', 'New', true],
      [4, 'removed', '', true],
    ])
    expect(kinds('q')).toEqual([[3, 'moved', "moves under 'Project'", true]])
    expect(overlay.get('p')![1]!.description).toBe("Add 'Wireframes' under 'Design'")
    expect(overlay.has('root')).toBe(false)
  })

  it('is empty without a tree or proposals', () => {
    expect(proposalOverlay([proposal], () => new Set(), null).size).toBe(0)
    expect(proposalOverlay([], () => new Set(), tree).size).toBe(0)
  })
})
