import { describe, expect, it, vi } from 'vitest'
import { act, render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import type { TreeNode } from '@/lib/protocol'
import type { ProposedNode, ProposedPlace, RowChange, RowRing } from '../model/decorations'
import { TreePanel, type TreePanelProps } from './tree-panel'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    { id: 'p', value: 'Project', children: [{ id: 'a', value: 'Alpha', children: [] }] },
    { id: 'x', value: 'Old name', children: [] },
    { id: 'q', value: 'Later', children: [] },
  ],
}

function setup(props: Partial<TreePanelProps> = {}) {
  const handlers = { onOp: vi.fn(), onUndo: vi.fn(), onRedo: vi.fn() }
  const all = { tree, rev: 3, ...handlers, ...props }
  const view = render(<TreePanel {...all} />)
  return {
    ...handlers,
    user: userEvent.setup(),
    rerender: (p: Partial<TreePanelProps>) => view.rerender(<TreePanel {...all} {...p} />),
  }
}

const change = (index: number, kind: RowChange['kind'], description: string, detail = '', checked = true): RowChange => ({
  proposalId: 'pr',
  index,
  kind,
  description,
  detail,
  checked,
})

describe('TreePanel in a shared session', () => {
  it('is read-only for a viewer: no edit tools, no row actions, keys change nothing', async () => {
    const { onOp, onUndo, user } = setup({ readOnly: true })
    for (const name of ['Undo', 'Redo', 'Add child', 'Rename', 'Delete']) {
      expect(screen.queryByRole('button', { name })).not.toBeInTheDocument()
    }
    await user.click(screen.getByRole('treeitem', { name: 'Project' }))
    expect(screen.queryByRole('button', { name: 'Rename Project' })).not.toBeInTheDocument()
    await user.keyboard('{F2}{Delete}{Insert}')
    await user.keyboard('{Control>}z{/Control}')
    expect(screen.queryByRole('textbox', { name: 'Node value' })).not.toBeInTheDocument()
    expect(onOp).not.toHaveBeenCalled()
    expect(onUndo).not.toHaveBeenCalled()
    // Browsing still works.
    expect(screen.getByRole('button', { name: 'Export JSON' })).toBeInTheDocument()
    expect(screen.getByRole('searchbox', { name: 'Filter nodes' })).toBeInTheDocument()
  })

  it('reports the focused node (for presence)', async () => {
    const onSelect = vi.fn()
    const { user } = setup({ onSelect })
    await user.click(screen.getByRole('treeitem', { name: 'Later' }))
    expect(onSelect).toHaveBeenLastCalledWith('q')
  })

  it("rings the nodes others have selected, in their colour", () => {
    const rings = new Map<string, RowRing[]>([['q', [{ username: 'eddie', color: '#2563eb' }]]])
    setup({ rings })
    const row = screen.getByRole('treeitem', { name: 'Later' })
    expect(row).toHaveAttribute('title', 'Selected by eddie')
    expect(row.style.boxShadow).toContain('2px')
    expect(screen.getByRole('treeitem', { name: 'Project' })).not.toHaveAttribute('title')
  })

  it('highlights the emphasised nodes (a hovered history entry)', () => {
    const { rerender } = setup({ emphasis: ['x'] })
    expect(screen.getByRole('treeitem', { name: 'Old name' })).toHaveAttribute('data-highlight', 'true')
    expect(screen.getByRole('treeitem', { name: 'Project' })).not.toHaveAttribute('data-highlight')
    rerender({ emphasis: null })
    expect(screen.getByRole('treeitem', { name: 'Old name' })).not.toHaveAttribute('data-highlight')
  })

  it('overlays a proposal on existing rows: removed struck through, moved as a ghost, updated old → new', async () => {
    const changes = new Map<string, RowChange[]>([
      ['x', [change(1, 'updated', "Rename 'Old name' → 'New name'", 'New name')]],
      ['q', [change(2, 'moved', "Move 'Later' under 'Project'", "moves under 'Project'"), change(3, 'removed', "Remove 'Later'", '', false)]],
    ])
    const onToggleChange = vi.fn()
    const { user } = setup({ changes, onToggleChange })
    const renamed = screen.getByRole('treeitem', { name: 'Old name' })
    expect(renamed).toHaveTextContent('→ New name')
    expect(within(renamed).getByText('Old name')).toHaveClass('line-through')
    const later = screen.getByRole('treeitem', { name: 'Later' })
    expect(later).toHaveAttribute('data-proposal', 'moved removed')
    expect(later).toHaveClass('border-dashed')
    // An unticked removal is not struck through.
    expect(within(later).getByText('Later')).not.toHaveClass('line-through')

    const box = screen.getByRole('checkbox', { name: "Accept: Rename 'Old name' → 'New name'" })
    expect(box).toBeChecked()
    await user.click(box)
    expect(onToggleChange).toHaveBeenCalledWith('pr', 1, false)
    await act(async () => {})
    expect(screen.getByRole('checkbox', { name: "Accept: Remove 'Later'" })).not.toBeChecked()
  })

  describe('proposed nodes as rows', () => {
    const add = (index: number, value: string, parent: string, children: ProposedNode[] = []): ProposedNode => ({
      key: `pr:${index}:${value}`,
      nodeId: value.toLowerCase(),
      value,
      kind: 'added',
      change: change(index, 'added', `Add '${value}' under '${parent}'`, value, index !== 1),
      box: true,
      more: [],
      children,
    })
    const later: ProposedNode = {
      key: 'pr:2:q',
      nodeId: 'q',
      value: 'Later',
      kind: 'moved',
      change: change(2, 'moved', "Move 'Later' under 'Root'", "moves under 'Root'"),
      box: false,
      more: [],
      children: [],
    }
    const proposed: ProposedPlace[] = [
      { parentIds: ['root', 'p'], index: 0, node: add(0, 'Design', 'Project', [add(1, 'Wireframes', 'Design')]) },
      { parentIds: ['root'], index: 1, node: later },
    ]
    const moveChanges = new Map([['q', [change(2, 'moved', "Move 'Later' under 'Root'", "moves under 'Root'")]]])
    const names = () => screen.getAllByRole('treeitem').map((r) => r.getAttribute('aria-label'))

    it('shows them in green where they would go, nested, each added one with its checkbox', async () => {
      const onToggleChange = vi.fn()
      const { user } = setup({ proposed, changes: moveChanges, onToggleChange })
      expect(names()).toEqual([
        'Root',
        'Project',
        'Proposed: Design',
        'Proposed: Wireframes',
        'Alpha',
        'Proposed: Later',
        'Old name',
        'Later',
      ])
      const design = screen.getByRole('treeitem', { name: 'Proposed: Design' })
      expect(design).toHaveAttribute('aria-level', '3')
      expect(design).toHaveAttribute('aria-expanded', 'true')
      expect(design).toHaveAttribute('data-proposal', 'added')
      expect(screen.getByRole('treeitem', { name: 'Proposed: Wireframes' })).toHaveAttribute('aria-level', '4')
      // Not a node: no drag, no row buttons.
      expect(design).not.toHaveAttribute('draggable', 'true')
      expect(within(design).queryByRole('button')).not.toBeInTheDocument()
      // Its checkbox, ticked as the proposal's selection says; an unticked one is struck through.
      const box = within(design).getByRole('checkbox', { name: "Accept: Add 'Design' under 'Project'" })
      expect(box).toBeChecked()
      const wire = screen.getByRole('treeitem', { name: 'Proposed: Wireframes' })
      expect(within(wire).getByRole('checkbox')).not.toBeChecked()
      expect(within(wire).getByText('Wireframes')).toHaveClass('line-through')
      await user.click(box)
      expect(onToggleChange).toHaveBeenCalledWith('pr', 0, false)
      // A moved node: a green ghost at its new place (no second checkbox), the dashed one at the old place.
      const movedHere = screen.getByRole('treeitem', { name: 'Proposed: Later' })
      expect(movedHere).toHaveAttribute('data-proposal', 'moved-here')
      expect(within(movedHere).queryByRole('checkbox')).not.toBeInTheDocument()
      const oldPlace = screen.getByRole('treeitem', { name: 'Later' })
      expect(oldPlace).toHaveAttribute('data-proposal', 'moved')
      expect(within(oldPlace).getByRole('checkbox', { name: "Accept: Move 'Later' under 'Root'" })).toBeChecked()
    })

    it('shows a viewer the selection with every checkbox disabled: clicks and Space decide nothing', async () => {
      const onToggleChange = vi.fn()
      const { user } = setup({ proposed, changes: moveChanges, onToggleChange, readOnly: true })
      const boxes = within(screen.getByRole('tree', { name: 'Object tree' })).getAllByRole('checkbox')
      expect(boxes.map((b) => b.getAttribute('aria-label'))).toEqual([
        "Accept: Add 'Design' under 'Project'",
        "Accept: Add 'Wireframes' under 'Design'",
        "Accept: Move 'Later' under 'Root'",
      ])
      for (const box of boxes) expect(box).toBeDisabled()
      await user.click(boxes[0]!)
      await user.click(screen.getByRole('treeitem', { name: 'Proposed: Design' }))
      await user.keyboard(' ')
      expect(onToggleChange).not.toHaveBeenCalled()
      expect(boxes[0]).toBeChecked()
    })

    it('hands the focus of a proposed row on when the proposal is decided: to the accepted node', async () => {
      const { user, rerender } = setup({ proposed })
      const treeEl = screen.getByRole('tree', { name: 'Object tree' })
      await user.click(screen.getByRole('treeitem', { name: 'Proposed: Design' }))
      expect(treeEl).toHaveFocus()
      // Accepted: Design is a node now, the proposed rows are gone.
      const accepted: TreeNode = {
        ...tree,
        children: [{ ...tree.children[0]!, children: [{ id: 'design', value: 'Design', children: [] }, ...tree.children[0]!.children] }, ...tree.children.slice(1)],
      }
      rerender({ tree: accepted, proposed: [] })
      const design = screen.getByRole('treeitem', { name: 'Design' })
      expect(design).toHaveAttribute('aria-selected', 'true')
      expect(treeEl).toHaveAttribute('aria-activedescendant', design.id)
      expect(treeEl).toHaveFocus()
    })

    it('hands the focus on to the parent row when the proposal is rejected, even from its checkbox', async () => {
      const { user, rerender } = setup({ proposed })
      const treeEl = screen.getByRole('tree', { name: 'Object tree' })
      const wire = screen.getByRole('treeitem', { name: 'Proposed: Wireframes' })
      await user.click(within(wire).getByRole('checkbox'))
      expect(wire).toHaveAttribute('aria-selected', 'true')
      rerender({ proposed: [] })
      const project = screen.getByRole('treeitem', { name: 'Project' })
      expect(project).toHaveAttribute('aria-selected', 'true')
      expect(treeEl).toHaveAttribute('aria-activedescendant', project.id)
      expect(treeEl).toHaveFocus()
      await user.keyboard('{ArrowDown}')
      expect(screen.getByRole('treeitem', { name: 'Alpha' })).toHaveAttribute('aria-selected', 'true')
    })

    it('highlights them with the emphasis (a hovered change): a moved node at both places', () => {
      setup({ proposed, emphasis: ['design', 'q'] })
      expect(screen.getByRole('treeitem', { name: 'Proposed: Design' })).toHaveAttribute('data-highlight', 'true')
      expect(screen.getByRole('treeitem', { name: 'Proposed: Later' })).toHaveAttribute('data-highlight', 'true')
      expect(screen.getByRole('treeitem', { name: 'Later' })).toHaveAttribute('data-highlight', 'true')
      expect(screen.getByRole('treeitem', { name: 'Proposed: Wireframes' })).not.toHaveAttribute('data-highlight')
    })

    it("opens their parent while they show, leaving the user's expand state as it was", async () => {
      const { user, rerender } = setup()
      await user.click(screen.getByRole('button', { name: 'Collapse all' }))
      expect(screen.getByRole('treeitem', { name: 'Project' })).toHaveAttribute('aria-expanded', 'false')
      rerender({ proposed })
      expect(screen.getByRole('treeitem', { name: 'Project' })).toHaveAttribute('aria-expanded', 'true')
      expect(screen.getByRole('treeitem', { name: 'Proposed: Design' })).toBeInTheDocument()
      expect(screen.getByRole('treeitem', { name: 'Alpha' })).toBeInTheDocument()
      // The proposal decided: its rows go, and Project is closed again, as the user left it.
      rerender({ proposed: [] })
      expect(names()).toEqual(['Root', 'Project', 'Old name', 'Later'])
      expect(screen.getByRole('treeitem', { name: 'Project' })).toHaveAttribute('aria-expanded', 'false')
    })

    it('reaches them by keyboard: Space ticks, edit keys and tools do nothing', async () => {
      const onToggleChange = vi.fn()
      const onSelect = vi.fn()
      const { onOp, user } = setup({ proposed, onToggleChange, onSelect })
      await user.click(screen.getByRole('treeitem', { name: 'Project' }))
      await user.keyboard('{ArrowDown}')
      const design = screen.getByRole('treeitem', { name: 'Proposed: Design' })
      expect(design).toHaveAttribute('aria-selected', 'true')
      expect(screen.getByRole('tree', { name: 'Object tree' })).toHaveAttribute('aria-activedescendant', design.id)
      // Not a node to tell the others about.
      expect(onSelect).toHaveBeenLastCalledWith(null)
      await user.keyboard(' ')
      expect(onToggleChange).toHaveBeenCalledWith('pr', 0, false)
      await user.keyboard('{F2}{Enter}{Insert}{Delete}{Alt>}{ArrowUp}{/Alt}')
      expect(screen.queryByRole('textbox', { name: 'Node value' })).not.toBeInTheDocument()
      expect(screen.getByRole('button', { name: 'Delete' })).toBeDisabled()
      await user.click(screen.getByRole('button', { name: 'Rename' }))
      expect(screen.queryByRole('textbox', { name: 'Node value' })).not.toBeInTheDocument()
      expect(onOp).not.toHaveBeenCalled()
      // ← on an open proposed node closes it; ↓ then goes on past it to the real rows.
      await user.click(design)
      await user.keyboard('{ArrowLeft}{ArrowDown}')
      expect(screen.queryByRole('treeitem', { name: 'Proposed: Wireframes' })).not.toBeInTheDocument()
      expect(screen.getByRole('treeitem', { name: 'Alpha' })).toHaveAttribute('aria-selected', 'true')
    })
  })
})
