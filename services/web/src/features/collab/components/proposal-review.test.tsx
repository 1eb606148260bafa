import { useState } from 'react'
import { describe, expect, it, vi } from 'vitest'
import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import type { ProposalData, TreeNode } from '@/lib/protocol'
import { ProposalReview, type Acceptance } from './proposal-review'

const tree: TreeNode = { id: 'root', value: 'Root', children: [{ id: 'p', value: 'Project', children: [] }] }

const proposal: ProposalData = {
  id: 'pr1',
  base_rev: 2,
  author: { username: 'eddie', via: 'assistant' },
  summary: "Add 'Design', add 'Wireframes', remove 'Project'",
  status: 'open',
  deltas: [
    { action: 'add', path: '/root/p/children', node: { id: 'd', value: 'Design', children: [] } },
    { action: 'add', path: '/root/p/d/children', node: { id: 'w', value: 'Wireframes', children: [] } },
    { action: 'remove', path: '/root/p' },
  ],
}

function Harness({ canDecide = true, onDecide }: { canDecide?: boolean; onDecide: (a: Acceptance) => void }) {
  const [selected, setSelected] = useState<Set<number>>(new Set([0, 1, 2]))
  return (
    <ProposalReview
      proposal={proposal}
      tree={tree}
      selected={selected}
      onSelectedChange={setSelected}
      canDecide={canDecide}
      onDecide={onDecide}
    />
  )
}

describe('ProposalReview', () => {
  it('lists each change with a checkbox, all ticked', () => {
    render(<Harness onDecide={vi.fn()} />)
    const region = screen.getByRole('region', { name: 'Proposal from eddie' })
    expect(region).toHaveTextContent('eddie’s assistant proposes 3 changes')
    const boxes = within(region).getAllByRole('checkbox')
    expect(boxes).toHaveLength(3)
    for (const b of boxes) expect(b).toBeChecked()
    expect(within(region).getByRole('checkbox', { name: "Add 'Wireframes' under 'Design'" })).toBeInTheDocument()
  })

  it('names an outside agent or an import as the proposer', () => {
    const agent: ProposalData = { ...proposal, author: { username: 'eddie', via: 'agent', name: 'Claude' } }
    const { rerender } = render(
      <ProposalReview proposal={agent} tree={tree} selected={new Set()} onSelectedChange={vi.fn()} canDecide onDecide={vi.fn()} />,
    )
    expect(screen.getByRole('region', { name: 'Proposal from eddie' })).toHaveTextContent(
      'eddie’s agent “Claude” proposes 3 changes',
    )
    const imported: ProposalData = { ...proposal, author: { username: 'eddie', via: 'import', name: 'opml' } }
    rerender(
      <ProposalReview proposal={imported} tree={tree} selected={new Set()} onSelectedChange={vi.fn()} canDecide onDecide={vi.fn()} />,
    )
    expect(screen.getByRole('region', { name: 'Proposal from eddie' })).toHaveTextContent(
      'eddie’s import (opml) proposes 3 changes',
    )
  })

  it('accepts the ticked changes only; unticking a parent unticks its child', async () => {
    const onDecide = vi.fn()
    const user = userEvent.setup()
    render(<Harness onDecide={onDecide} />)
    await user.click(screen.getByRole('checkbox', { name: "Add 'Design' under 'Project'" }))
    expect(screen.getByRole('checkbox', { name: "Add 'Wireframes' under 'Design'" })).not.toBeChecked()
    await user.click(screen.getByRole('button', { name: /Accept selected/ }))
    expect(onDecide).toHaveBeenLastCalledWith([2])

    // Ticking the child ticks the parent it needs.
    await user.click(screen.getByRole('checkbox', { name: "Add 'Wireframes' under 'Design'" }))
    expect(screen.getByRole('checkbox', { name: "Add 'Design' under 'Project'" })).toBeChecked()
    await user.click(screen.getByRole('button', { name: 'Accept all' }))
    expect(onDecide).toHaveBeenLastCalledWith('all')
    await user.click(screen.getByRole('button', { name: 'Reject all' }))
    expect(onDecide).toHaveBeenLastCalledWith([])
  })

  it('shows a viewer the changes without any way to decide', () => {
    render(<Harness canDecide={false} onDecide={vi.fn()} />)
    expect(screen.queryByRole('button', { name: 'Accept all' })).not.toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Reject all' })).not.toBeInTheDocument()
    for (const b of screen.getAllByRole('checkbox')) expect(b).toBeDisabled()
  })
})
