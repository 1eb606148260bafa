import { describe, expect, it, vi } from 'vitest'
import { act, render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import type { TreeNode } from '@/lib/protocol'
import type { RowChange, RowRing } from '../model/decorations'
import { TreePanel, type TreePanelProps } from './tree-panel'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    { id: 'p', value: 'Project', children: [] },
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

  it('overlays a proposal: added under the parent, removed struck through, moved as a ghost, updated old → new', async () => {
    const changes = new Map<string, RowChange[]>([
      ['p', [change(0, 'added', "Add 'Design' under 'Project'", 'Design')]],
      ['x', [change(1, 'updated', "Rename 'Old name' → 'New name'", 'New name')]],
      ['q', [change(2, 'moved', "Move 'Later' under 'Project'", "moves under 'Project'"), change(3, 'removed', "Remove 'Later'", '', false)]],
    ])
    const onToggleChange = vi.fn()
    const { user } = setup({ changes, onToggleChange })
    const project = screen.getByRole('treeitem', { name: 'Project' })
    expect(project).toHaveAttribute('data-proposal', 'added')
    expect(project).toHaveTextContent('+ Design')
    const renamed = screen.getByRole('treeitem', { name: 'Old name' })
    expect(renamed).toHaveTextContent('→ New name')
    expect(within(renamed).getByText('Old name')).toHaveClass('line-through')
    const later = screen.getByRole('treeitem', { name: 'Later' })
    expect(later).toHaveAttribute('data-proposal', 'moved removed')
    expect(later).toHaveClass('border-dashed')
    // An unticked removal is not struck through.
    expect(within(later).getByText('Later')).not.toHaveClass('line-through')

    const box = screen.getByRole('checkbox', { name: "Accept: Add 'Design' under 'Project'" })
    expect(box).toBeChecked()
    await user.click(box)
    expect(onToggleChange).toHaveBeenCalledWith('pr', 0, false)
    await act(async () => {})
    expect(screen.getByRole('checkbox', { name: "Accept: Remove 'Later'" })).not.toBeChecked()
  })
})
