import { describe, expect, it, vi } from 'vitest'
import { fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { toast } from 'sonner'
import type { Delta, TreeNode } from '@/lib/protocol'
import { TreePanel, type TreePanelProps } from './tree-panel'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    { id: 't1', value: 'Task 1', props: { prio: 1, done: false }, children: [] },
    { id: 't2', value: 'Task 2', children: [{ id: 't2a', value: 'Sub task', children: [] }] },
  ],
}

function setup(props: Partial<TreePanelProps> = {}) {
  const handlers = { onOp: vi.fn(), onUndo: vi.fn(), onRedo: vi.fn() }
  const all = { tree, rev: 7, ...handlers, ...props }
  const view = render(<TreePanel {...all} />)
  return { ...handlers, user: userEvent.setup(), rerender: (p: Partial<TreePanelProps>) => view.rerender(<TreePanel {...all} {...p} />) }
}

describe('TreePanel', () => {
  it('renders a tree whose items are named by their values, with props beside them', () => {
    setup()
    const treeEl = screen.getByRole('tree', { name: 'Object tree' })
    const items = within(treeEl).getAllByRole('treeitem')
    expect(items.map((i) => i.getAttribute('aria-label'))).toEqual(['Root', 'Task 1', 'Task 2', 'Sub task'])
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).toHaveTextContent('prio: 1')
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).toHaveTextContent('done: false')
    // props are the row's description; the chips draw the same text from CSS (the name stays the value)
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).toHaveAccessibleDescription('prio: 1, done: false')
  })

  it("checks an edit with the engine's validation before sending it, and sends nothing it refuses", async () => {
    const error = vi.spyOn(toast, 'error').mockImplementation(() => 0)
    const validate = vi.fn((delta: Delta) =>
      delta.action === 'update' && delta.fields.value === 'Too long' ? "'fields.value' is longer than 5 characters" : null,
    )
    const { onOp, user } = setup({ validate })
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    await user.click(screen.getByRole('button', { name: 'Rename' }))
    const input = await screen.findByRole('textbox', { name: 'Node value' })
    await user.clear(input)
    await user.type(input, 'Too long{Enter}')
    expect(validate).toHaveBeenCalledWith({ action: 'update', path: '/root/t1', fields: { value: 'Too long' } })
    expect(error).toHaveBeenCalledWith("'fields.value' is longer than 5 characters")
    expect(onOp).not.toHaveBeenCalled()
    await user.click(screen.getByRole('button', { name: 'Delete Task 2' }))
    expect(onOp).toHaveBeenCalledWith({ delta: { action: 'remove', path: '/root/t2' }, base_rev: 7 })
    error.mockRestore()
  })

  it('rename via the UI sends an update delta with base_rev, without changing the tree itself', async () => {
    const { onOp, user } = setup()
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    await user.click(screen.getByRole('button', { name: 'Rename' }))
    const input = await screen.findByRole('textbox', { name: 'Node value' })
    expect(input).toHaveValue('Task 1')
    await user.clear(input)
    await user.type(input, 'Renamed{Enter}')
    expect(onOp).toHaveBeenCalledTimes(1)
    expect(onOp).toHaveBeenCalledWith({
      delta: { action: 'update', path: '/root/t1', fields: { value: 'Renamed' } },
      base_rev: 7,
    })
    // not optimistic: the value changes only when the server's tree_update comes back
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).toBeInTheDocument()
    expect(screen.queryByRole('treeitem', { name: 'Renamed' })).not.toBeInTheDocument()
  })

  it('renames a nested node by its full id path from the row action', async () => {
    const { onOp, user } = setup({ rev: 3 })
    await user.click(screen.getByRole('button', { name: 'Rename Sub task' }))
    const input = await screen.findByRole('textbox', { name: 'Node value' })
    await user.clear(input)
    await user.type(input, 'Deep{Enter}')
    expect(onOp).toHaveBeenCalledWith({
      delta: { action: 'update', path: '/root/t2/t2a', fields: { value: 'Deep' } },
      base_rev: 3,
    })
  })

  it('Escape or an unchanged value sends nothing', async () => {
    const { onOp, user } = setup()
    await user.click(screen.getByRole('button', { name: 'Rename Task 2' }))
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), ' more{Escape}')
    await user.click(screen.getByRole('button', { name: 'Rename Task 2' }))
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), '{Enter}')
    expect(onOp).not.toHaveBeenCalled()
  })

  it('adds a child by hand as one change: the editor opens first, the add goes out with its value', async () => {
    const { onOp, user, rerender } = setup()
    await user.click(screen.getByRole('button', { name: 'Add child to Task 1' }))
    expect(onOp).not.toHaveBeenCalled() // nothing is sent before it has a value
    const input = await screen.findByRole('textbox', { name: 'Node value' })
    expect(input).toHaveValue('')
    await user.type(input, 'Design{Escape}')
    expect(onOp).not.toHaveBeenCalled() // Escape: no node, nothing sent
    expect(screen.queryByRole('textbox', { name: 'Node value' })).not.toBeInTheDocument()

    await user.click(screen.getByRole('button', { name: 'Add child to Task 1' }))
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), 'Design')
    await user.keyboard('{Tab}') // Tab on a new node with no sibling above: it stays where it is
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), ' work{Enter}')
    expect(onOp).toHaveBeenCalledTimes(1) // one op: one undo step
    const op = onOp.mock.calls[0]![0]
    expect(op.base_rev).toBe(7)
    expect(op.delta).toMatchObject({ action: 'add', path: '/root/t1/children', index: 0, node: { value: 'Design work', children: [] } })
    expect(op.delta.node.id).toMatch(/^n-[0-9a-f]{12}$/)
    // Enter opened the next sibling's editor, below it
    const next = await screen.findByRole('textbox', { name: 'Node value' })
    expect(next).toHaveValue('')
    const t1 = { ...tree.children[0]!, children: [op.delta.node] }
    rerender({ tree: { ...tree, children: [t1, tree.children[1]!] }, rev: 8 })
    expect(screen.getByRole('treeitem', { name: 'Design work' })).toBeInTheDocument()
    await user.type(screen.getByRole('textbox', { name: 'Node value' }), 'Build{Tab}')
    // Tab on a new node: one level in, under the sibling above (still not sent)
    expect(onOp).toHaveBeenCalledTimes(1)
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), '{Enter}')
    expect(onOp).toHaveBeenCalledTimes(2)
    expect(onOp.mock.calls[1]![0].delta).toMatchObject({
      action: 'add',
      path: `/root/t1/${op.delta.node.id}/children`,
      index: 0,
      node: { value: 'Build' },
    })
  })

  it('outliner keys: Alt+↑/↓ move among siblings, Tab leaves the tree, Tab in the editor indents', async () => {
    const { onOp, user } = setup()
    await user.click(screen.getByRole('treeitem', { name: 'Task 2' }))
    await user.keyboard('{Alt>}{ArrowUp}{/Alt}')
    expect(onOp).toHaveBeenLastCalledWith({ delta: { action: 'move', path: '/root/t2', to: '/root/children', index: 0 }, base_rev: 7 })
    await user.keyboard('{Alt>}{ArrowDown}{/Alt}') // already last: nothing
    expect(onOp).toHaveBeenCalledTimes(1)
    await user.keyboard('{F2}')
    await user.keyboard('{Tab}') // editing: indent under Task 1
    expect(onOp).toHaveBeenLastCalledWith({ delta: { action: 'move', path: '/root/t2', to: '/root/t1/children', index: 0 }, base_rev: 7 })
    const treeEl = screen.getByRole('tree', { name: 'Object tree' })
    treeEl.focus()
    await user.keyboard('{Shift>}{Tab}{/Shift}')
    expect(treeEl).not.toHaveFocus() // not editing: Tab leaves the tree
  })

  it('Tab into the tree lands on a row: the first, else the selected one, scrolled back into view', async () => {
    const children: TreeNode[] = []
    for (let i = 0; i < 200; i++) children.push({ id: `n${i}`, value: `Node ${i}`, children: [] })
    const onSelect = vi.fn()
    const { user } = setup({ tree: { id: 'root', value: 'Root', children }, onSelect })
    const treeEl = screen.getByRole('tree', { name: 'Object tree' })
    screen.getByRole('button', { name: 'Export JSON' }).focus()
    await user.tab()
    expect(treeEl).toHaveFocus()
    const root = screen.getByRole('treeitem', { name: 'Root' })
    expect(root).toHaveAttribute('aria-selected', 'true')
    expect(treeEl).toHaveAttribute('aria-activedescendant', root.id)
    expect(onSelect).toHaveBeenLastCalledWith('root')
    await user.keyboard('{End}')
    expect(screen.getByRole('treeitem', { name: 'Node 199' })).toHaveAttribute('aria-selected', 'true')
    // Out, scrolled back to the top (the selected row leaves the DOM), and in again.
    await user.tab({ shift: true })
    expect(treeEl).not.toHaveFocus()
    treeEl.scrollTop = 0
    fireEvent.scroll(treeEl)
    expect(screen.queryByRole('treeitem', { name: 'Node 199' })).not.toBeInTheDocument()
    await user.tab()
    expect(treeEl).toHaveFocus()
    const last = screen.getByRole('treeitem', { name: 'Node 199' })
    expect(last).toHaveAttribute('aria-selected', 'true')
    expect(treeEl).toHaveAttribute('aria-activedescendant', last.id)
  })

  it('a click into the tree selects the row clicked, not the first one on the way', async () => {
    const onSelect = vi.fn()
    const { user } = setup({ onSelect })
    await user.click(screen.getByRole('treeitem', { name: 'Task 2' }))
    expect(screen.getByRole('tree', { name: 'Object tree' })).toHaveFocus()
    expect(screen.getByRole('treeitem', { name: 'Root' })).toHaveAttribute('aria-selected', 'false')
    expect(onSelect.mock.calls.map(([id]) => id as unknown)).not.toContain('root')
    expect(onSelect).toHaveBeenLastCalledWith('t2')
  })

  it('the node details panel adds, edits and removes props as one change; focus returns to its opener', async () => {
    const { onOp, user } = setup()
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    const opener = screen.getByRole('button', { name: 'Props' })
    await user.click(opener)
    const dialog = await screen.findByRole('dialog', { name: 'Props of “Task 1”' })
    const prio = within(dialog).getByRole('textbox', { name: 'Value of prio' })
    await user.clear(prio)
    await user.type(prio, '2')
    await user.click(within(dialog).getByRole('button', { name: 'Remove done' }))
    await user.click(within(dialog).getByRole('button', { name: 'Add prop' }))
    await user.type(within(dialog).getByRole('textbox', { name: 'Name of prop 2' }), 'owner')
    await user.type(within(dialog).getByRole('textbox', { name: 'Value of owner' }), 'Ann')
    await user.click(within(dialog).getByRole('button', { name: 'Save' }))
    expect(onOp).toHaveBeenCalledTimes(1)
    expect(onOp).toHaveBeenCalledWith({
      delta: { action: 'update', path: '/root/t1', fields: { props: { prio: 2, owner: 'Ann', done: null } } },
      base_rev: 7,
    })
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument())
    await waitFor(() => expect(opener).toHaveFocus())
  })

  it('focus goes to the next row after a delete', async () => {
    const { user } = setup()
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    await user.keyboard('{Delete}')
    expect(screen.getByRole('treeitem', { name: 'Task 2' })).toHaveAttribute('aria-selected', 'true')
  })

  it('deletes the focused node (never the root)', async () => {
    const { onOp, user } = setup()
    await user.click(screen.getByRole('treeitem', { name: 'Root' }))
    expect(screen.getByRole('button', { name: 'Delete' })).toBeDisabled()
    await user.click(screen.getByRole('treeitem', { name: 'Task 2' }))
    await user.click(screen.getByRole('button', { name: 'Delete' }))
    expect(onOp).toHaveBeenCalledWith({ delta: { action: 'remove', path: '/root/t2' }, base_rev: 7 })
  })

  it('Undo/Redo buttons and Ctrl+Z / Ctrl+Shift+Z', async () => {
    const { onUndo, onRedo, user } = setup()
    await user.click(screen.getByRole('button', { name: 'Undo' }))
    await user.click(screen.getByRole('button', { name: 'Redo' }))
    expect(onUndo).toHaveBeenCalledTimes(1)
    expect(onRedo).toHaveBeenCalledTimes(1)
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    await user.keyboard('{Control>}z{/Control}')
    expect(onUndo).toHaveBeenCalledTimes(2)
    await user.keyboard('{Control>}{Shift>}z{/Shift}{/Control}')
    expect(onRedo).toHaveBeenCalledTimes(2)
    // not inside a text field: that is the field's own undo
    await user.click(screen.getByRole('searchbox', { name: 'Filter nodes' }))
    await user.keyboard('{Control>}z{/Control}')
    expect(onUndo).toHaveBeenCalledTimes(2)
  })

  it('disables Undo / Redo, and ignores their shortcuts, when the server says there is nothing to undo / redo', async () => {
    const { onUndo, onRedo, user, rerender } = setup({ canUndo: false, canRedo: false })
    const undo = screen.getByRole('button', { name: 'Undo' })
    const redo = screen.getByRole('button', { name: 'Redo' })
    expect(undo).toBeDisabled()
    expect(redo).toBeDisabled()
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    await user.keyboard('{Control>}z{/Control}{Control>}{Shift>}z{/Shift}{/Control}{Control>}y{/Control}')
    expect(onUndo).not.toHaveBeenCalled()
    expect(onRedo).not.toHaveBeenCalled()

    rerender({ canUndo: true, canRedo: false }) // an edit of ours came back
    expect(undo).toBeEnabled()
    expect(redo).toBeDisabled()
    await user.keyboard('{Control>}z{/Control}{Control>}y{/Control}')
    expect(onUndo).toHaveBeenCalledTimes(1)
    expect(onRedo).not.toHaveBeenCalled()
  })

  it('keeps the focus when Undo or Redo turns off under it: on the other one, else in the tree', async () => {
    const { onUndo, onRedo, user, rerender } = setup({ canUndo: true, canRedo: false })
    const undo = screen.getByRole('button', { name: 'Undo' })
    const redo = screen.getByRole('button', { name: 'Redo' })
    await user.click(screen.getByRole('treeitem', { name: 'Task 2' }))
    await user.click(undo)
    expect(onUndo).toHaveBeenCalledTimes(1)
    rerender({ canUndo: false, canRedo: true }) // that emptied the stack: nothing to undo, something to redo
    expect(undo).toBeDisabled()
    expect(redo).toHaveFocus()
    await user.keyboard('{Enter}')
    expect(onRedo).toHaveBeenCalledTimes(1)
    rerender({ canUndo: true, canRedo: false })
    expect(undo).toHaveFocus()
    rerender({ canUndo: false, canRedo: false }) // neither: the tree, on its selected row
    const treeEl = screen.getByRole('tree', { name: 'Object tree' })
    expect(treeEl).toHaveFocus()
    const row = screen.getByRole('treeitem', { name: 'Task 2' })
    expect(row).toHaveAttribute('aria-selected', 'true')
    expect(treeEl).toHaveAttribute('aria-activedescendant', row.id)
    // Turning off while something else has the focus moves nothing.
    rerender({ canUndo: true, canRedo: true })
    screen.getByRole('searchbox', { name: 'Filter nodes' }).focus()
    rerender({ canUndo: false, canRedo: false })
    expect(screen.getByRole('searchbox', { name: 'Filter nodes' })).toHaveFocus()
  })

  it('Enter on a row adds a sibling after it and starts editing it: one add, sent with its value', async () => {
    const { onOp, user } = setup()
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    await user.keyboard('{Enter}')
    expect(onOp).not.toHaveBeenCalled() // not a rename, and nothing sent before it has a value
    const input = await screen.findByRole('textbox', { name: 'Node value' })
    expect(input).toHaveValue('')
    // the draft is the row right after Task 1, at Task 1's level
    const rows = screen.getAllByRole('treeitem')
    expect(rows.map((r) => r.getAttribute('aria-label'))).toEqual(['Root', 'Task 1', '', 'Task 2', 'Sub task'])
    expect(rows[2]).toHaveAttribute('aria-level', '2')
    await user.type(input, 'Between{Enter}')
    expect(onOp).toHaveBeenCalledTimes(1) // one change: one undo step
    expect(onOp.mock.calls[0]![0].delta).toMatchObject({
      action: 'add',
      path: '/root/children',
      index: 1,
      node: { value: 'Between', children: [] },
    })
    await user.keyboard('{Escape}') // the next sibling's draft Enter opened: dropped

    // deeper: after Sub task, under Task 2; on the root: its first child
    await user.click(screen.getByRole('treeitem', { name: 'Sub task' }))
    await user.keyboard('{Enter}')
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), 'Deep{Enter}')
    expect(onOp.mock.calls[1]![0].delta).toMatchObject({ action: 'add', path: '/root/t2/children', index: 1 })
    await user.keyboard('{Escape}')
    await user.click(screen.getByRole('treeitem', { name: 'Root' }))
    await user.keyboard('{Enter}')
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), 'First{Enter}')
    expect(onOp.mock.calls[2]![0].delta).toMatchObject({ action: 'add', path: '/root/children', index: 0 })
    await user.keyboard('{Escape}')

    // F2 still renames
    await user.click(screen.getByRole('treeitem', { name: 'Task 2' }))
    await user.keyboard('{F2}')
    expect(await screen.findByRole('textbox', { name: 'Node value' })).toHaveValue('Task 2')
  })

  it('a dropped draft hands the focus back: to the row above it, or to the node just added before it', async () => {
    const { onOp, user, rerender } = setup()
    const treeEl = screen.getByRole('tree', { name: 'Object tree' })
    const active = () => document.getElementById(treeEl.getAttribute('aria-activedescendant') ?? '')
    await user.click(screen.getByRole('treeitem', { name: 'Task 1' }))
    await user.keyboard('{Enter}')
    await user.keyboard('{Escape}') // dropped at once: back on Task 1
    expect(treeEl).toHaveFocus()
    expect(active()).toHaveAccessibleName('Task 1')
    await user.keyboard('{Insert}{Escape}') // a first child dropped: back on its parent
    expect(active()).toHaveAccessibleName('Task 1')
    await user.click(screen.getByRole('treeitem', { name: 'Task 2' }))
    await user.keyboard('{Insert}{Escape}') // a last child dropped: back on the row above it
    expect(active()).toHaveAccessibleName('Sub task')

    // Enter on a new node: sent, and the next one's draft opens; dropping that focuses the new node (once it lands).
    await user.click(screen.getByRole('treeitem', { name: 'Sub task' }))
    await user.keyboard('{Enter}')
    await user.type(await screen.findByRole('textbox', { name: 'Node value' }), 'Deep{Enter}')
    await user.keyboard('{Escape}')
    const added = onOp.mock.calls[0]![0].delta.node as TreeNode
    const t2 = tree.children[1]!
    rerender({ tree: { ...tree, children: [tree.children[0]!, { ...t2, children: [...t2.children, added] }] }, rev: 8 })
    expect(active()).toHaveAccessibleName('Deep')
    await user.keyboard('{ArrowUp}')
    expect(active()).toHaveAccessibleName('Sub task')
  })

  it('filters nodes by value or props', async () => {
    const { user } = setup()
    await user.type(screen.getByRole('searchbox', { name: 'Filter nodes' }), 'sub')
    await waitFor(() => expect(screen.queryByRole('treeitem', { name: 'Task 1' })).not.toBeInTheDocument())
    expect(screen.getByRole('treeitem', { name: 'Sub task' })).toBeInTheDocument()
    expect(screen.getByRole('treeitem', { name: 'Task 2' })).toBeInTheDocument() // its ancestor stays
    await user.clear(screen.getByRole('searchbox', { name: 'Filter nodes' }))
    await user.type(screen.getByRole('searchbox', { name: 'Filter nodes' }), 'prio')
    await waitFor(() => expect(screen.queryByRole('treeitem', { name: 'Sub task' })).not.toBeInTheDocument())
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).toBeInTheDocument()
  })

  it('says how many nodes match, and when none does', async () => {
    const { user } = setup()
    const box = screen.getByRole('searchbox', { name: 'Filter nodes' })
    await user.type(box, 'task')
    await waitFor(() => expect(screen.getByRole('status', { name: 'Filter matches' })).toHaveTextContent('3 matches'))
    await user.type(box, ' zzz')
    await waitFor(() => expect(screen.getByRole('status', { name: 'Filter matches' })).toHaveTextContent('No match'))
    expect(screen.queryAllByRole('treeitem')).toHaveLength(0)
    await user.clear(box)
    await waitFor(() => expect(screen.getAllByRole('treeitem')).toHaveLength(4))
    expect(screen.getByRole('status', { name: 'Filter matches' })).toHaveTextContent('')
  })

  it('moves focus with the arrow keys and opens / closes branches', async () => {
    const { user } = setup()
    await user.click(screen.getByRole('treeitem', { name: 'Root' }))
    const treeEl = screen.getByRole('tree', { name: 'Object tree' })
    expect(treeEl).toHaveFocus()
    await user.keyboard('{ArrowDown}{ArrowDown}')
    const t2 = screen.getByRole('treeitem', { name: 'Task 2' })
    expect(t2).toHaveAttribute('aria-selected', 'true')
    expect(treeEl).toHaveAttribute('aria-activedescendant', t2.id)
    await user.keyboard('{ArrowLeft}')
    expect(t2).toHaveAttribute('aria-expanded', 'false')
    expect(screen.queryByRole('treeitem', { name: 'Sub task' })).not.toBeInTheDocument()
    await user.keyboard('{ArrowRight}{ArrowRight}')
    expect(screen.getByRole('treeitem', { name: 'Sub task' })).toHaveAttribute('aria-selected', 'true')
    await user.keyboard('{ArrowLeft}')
    expect(t2).toHaveAttribute('aria-selected', 'true')
  })

  it('offers to jump to a change made inside a collapsed branch, and reveals it', async () => {
    const { user, rerender } = setup()
    await user.click(screen.getByRole('button', { name: 'Collapse all' }))
    const sub = { id: 't2b', value: 'Far away', children: [] }
    const t2 = { ...tree.children[1]!, children: [...tree.children[1]!.children, sub] }
    rerender({ tree: { ...tree, children: [tree.children[0]!, t2] }, rev: 8, lastChange: { ids: ['t2b'], version: 3, origin: 'assistant' } })
    expect(screen.queryByRole('treeitem', { name: 'Far away' })).not.toBeInTheDocument()
    await user.click(await screen.findByRole('button', { name: 'Jump to change' }))
    expect(await screen.findByRole('treeitem', { name: 'Far away' })).toHaveAttribute('aria-selected', 'true')
    expect(screen.queryByRole('button', { name: 'Jump to change' })).not.toBeInTheDocument()
  })

  it('collapses and expands all', async () => {
    const { user } = setup()
    await user.click(screen.getByRole('button', { name: 'Collapse all' }))
    expect(screen.queryByRole('treeitem', { name: 'Sub task' })).not.toBeInTheDocument()
    expect(screen.getByRole('treeitem', { name: 'Task 2' })).toHaveAttribute('aria-expanded', 'false')
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).toBeInTheDocument() // the root stays open
    await user.click(screen.getByRole('button', { name: 'Expand all' }))
    expect(screen.getByRole('treeitem', { name: 'Sub task' })).toBeInTheDocument()
  })

  it('highlights the nodes the last update changed', () => {
    const { rerender } = setup()
    rerender({ lastChange: { ids: ['t2'], version: 1 } })
    expect(screen.getByRole('treeitem', { name: 'Task 2' })).toHaveAttribute('data-highlight', 'true')
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).not.toHaveAttribute('data-highlight')
  })

  it('exports the tree as JSON', async () => {
    const create = vi.fn(() => 'blob:x')
    const revoke = vi.fn()
    Object.assign(URL, { createObjectURL: create, revokeObjectURL: revoke })
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(() => {})
    const { user } = setup()
    await user.click(screen.getByRole('button', { name: 'Export JSON' }))
    expect(create).toHaveBeenCalledTimes(1)
    const blob = (create.mock.calls[0] as unknown as [Blob])[0]
    expect(JSON.parse(await blob.text())).toEqual(tree)
    expect(click).toHaveBeenCalled()
  })

  it('virtualizes a 10,000-node tree', () => {
    const children: TreeNode[] = []
    for (let i = 0; i < 10_000; i++) children.push({ id: `n${i}`, value: `Node ${i}`, children: [] })
    setup({ tree: { id: 'root', value: 'Root', children } })
    // Only a window of rows is in the DOM (how fast it opens is a benchmark: bench/browser.py)
    const rendered = screen.getAllByRole('treeitem').length
    expect(rendered).toBeGreaterThan(5)
    expect(rendered).toBeLessThan(100)
  })
})
