import { describe, expect, it } from 'vitest'
import type { ProposalData, TreeNode } from '@/lib/protocol'
import { proposalOverlay, type ProposedNode } from './overlay'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    {
      id: 'p',
      value: 'Project',
      children: [
        { id: 'x', value: 'Old', children: [] },
        { id: 'y', value: 'Other', children: [] },
      ],
    },
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
    { action: 'add', path: '/root/p/children', node: { id: 'd', value: 'Design', children: [] }, index: 1 },
    { action: 'add', path: '/root/p/d/children', node: { id: 'w', value: 'Wireframes', children: [] } },
    { action: 'update', path: '/root/p/x', fields: { value: 'New' } },
    { action: 'move', path: '/root/q', to: '/root/p/children', index: 0 },
    { action: 'remove', path: '/root/p/x' },
    {
      action: 'add',
      path: '/root/p/d/children',
      node: { id: 's', value: 'Sketches', children: [{ id: 's1', value: 'Paper', children: [] }] },
      index: 0,
    },
    { action: 'update', path: '/root/p/d/w', fields: { value: 'Mockups' } },
  ],
}

/** A proposed node as `[value, kind, has its checkbox, ticked, children]`. */
type Shape = [string, string, boolean, boolean, Shape[]]
const shape = (n: ProposedNode): Shape => [n.value, n.kind, n.box, n.change.checked, n.children.map(shape)]

describe('proposalOverlay', () => {
  const overlay = proposalOverlay([proposal], () => new Set([0, 2, 3, 4]), tree)

  it('puts changes to existing nodes on their rows, with their ticks', () => {
    const kinds = (id: string) => overlay.changes.get(id)?.map((c) => [c.index, c.kind, c.detail, c.checked])
    expect(kinds('x')).toEqual([
      [2, 'updated', 'New', true],
      [4, 'removed', '', true],
    ])
    // The old place of a move keeps its change (and checkbox).
    expect(kinds('q')).toEqual([[3, 'moved', "moves under 'Project'", true]])
    // Added nodes are not chips on their parent any more: they are rows of their own.
    expect(overlay.changes.has('p')).toBe(false)
    expect(overlay.changes.has('root')).toBe(false)
  })

  it('places added nodes under their parent at their index, nesting adds under adds', () => {
    const places = overlay.proposed.map((pl) => [pl.parentIds.join('/'), pl.index, shape(pl.node)])
    expect(places).toEqual([
      [
        'root/p',
        1,
        [
          'Design',
          'added',
          true,
          true,
          [
            // Added at index 0 of the proposed 'Design', after 'Wireframes' was: first.
            ['Sketches', 'added', true, false, [['Paper', 'added', false, false, []]]],
            ['Wireframes', 'added', true, false, []],
          ],
        ],
      ],
      // The moved node again at its new place, without a second checkbox.
      ['root/p', 0, ['Later', 'moved', false, true, []]],
    ])
    const design = overlay.proposed[0]!.node
    expect(design.change.description).toBe("Add 'Design' under 'Project'")
    expect(design.children[1]!.change.description).toBe("Add 'Wireframes' under 'Design'")
    // A later change to a proposed node shows on its proposed row.
    expect(design.children[1]!.more.map((c) => [c.index, c.kind, c.detail])).toEqual([[6, 'updated', 'Mockups']])
    // The ids the nodes have (or will have): what a hovered change emphasises.
    expect([design.nodeId, overlay.proposed[1]!.node.nodeId]).toEqual(['d', 'q'])
    // Keys tell every proposed row apart.
    const keys = [design, ...design.children, design.children[0]!.children[0]!, overlay.proposed[1]!.node].map(
      (n) => n.key,
    )
    expect(new Set(keys).size).toBe(keys.length)
  })

  it('counts a move within its parent as the server does (the node leaves its old place first)', () => {
    const within: ProposalData = {
      ...proposal,
      deltas: [{ action: 'move', path: '/root/p/x', to: '/root/p/children', index: 1 }],
    }
    // [Old, Other] → [Other, Old]: shown while the old place still shows, the new place is after 'Other'.
    const [place] = proposalOverlay([within], () => new Set([0]), tree).proposed
    expect([place!.parentIds, place!.index, place!.node.value]).toEqual([['root', 'p'], 2, 'Old'])
  })

  it('is empty without a tree or proposals', () => {
    const none = proposalOverlay([proposal], () => new Set(), null)
    expect([none.changes.size, none.proposed.length]).toEqual([0, 0])
    const empty = proposalOverlay([], () => new Set(), tree)
    expect([empty.changes.size, empty.proposed.length]).toEqual([0, 0])
  })
})
