import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { createMemoryRouter, RouterProvider } from 'react-router'
import { sessionsKeys } from '@/features/sessions'
import { auth } from '@/lib/auth'
import { FakeSocket, ready } from '@/testing/fake-socket'
import { createTestQueryClient, json, mockFetch } from '@/testing/render'
import { AppProvider } from './provider'
import { routes } from './router'

const tree = { id: 'root', value: 'Root', children: [{ id: 'p', value: 'Project', children: [] }] }

let queryClient = createTestQueryClient()

function renderApp(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] })
  queryClient = createTestQueryClient()
  render(
    <AppProvider queryClient={queryClient}>
      <RouterProvider router={router} />
    </AppProvider>,
  )
  return router
}

/** Opens the app on session s1 with the given role; returns the socket once the session is ready. */
async function openAs(role: 'owner' | 'editor' | 'viewer', extra: Record<string, unknown> = {}) {
  const router = renderApp('/sessions/s1')
  await waitFor(() => expect(FakeSocket.instances.length).toBeGreaterThan(0))
  const sock = FakeSocket.last
  act(() => sock.open())
  const frame = ready('s1', 4, 10, tree)
  act(() => sock.receive({ ...frame, data: { ...frame.data, role, owner: 'olive', ...extra } }))
  await screen.findByRole('treeitem', { name: 'Project' })
  return { sock, router }
}

const proposal = {
  id: 'pr1',
  base_rev: 4,
  author: { username: 'eddie', via: 'assistant' },
  summary: "Add 'Design', add 'Build'",
  status: 'open',
  deltas: [
    { action: 'add', path: '/root/p/children', node: { id: 'd', value: 'Design', children: [] } },
    { action: 'add', path: '/root/p/children', node: { id: 'b', value: 'Build', children: [] } },
  ],
}

const presence = (users: Array<Record<string, unknown>>) => ({
  type: 'presence',
  data: { users: users.map((u) => ({ role: 'editor', tabs: 1, selected: null, typing: false, ...u })) },
})

/** The REST answers the dashboard needs; `members` answers the owner's member list (else 404). */
function stubFetch(members?: Array<{ username: string; role: string }>) {
  vi.stubGlobal(
    'fetch',
    mockFetch({
      'GET /api/sessions': () =>
        json([{ session_id: 's1', title: 'Plans', updated_at: '2025-01-02T10:00:00Z', node_count: 2, role: 'owner', owner: 'olive' }]),
      'GET /api/auth/me': () => json({ id: 1, username: 'olive' }),
      ...(members ? { 'GET /api/sessions/s1/members': () => json(members) } : {}),
    }).fn,
  )
}

beforeEach(() => {
  FakeSocket.reset()
  vi.stubGlobal('WebSocket', FakeSocket)
  stubFetch()
  auth.setSession({ access_token: 'tok', expires_in: 1800 })
})
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

describe('the dashboard in a shared session', () => {
  it('shows who is here and who is typing, and sends our own typing', async () => {
    const { sock } = await openAs('owner')
    act(() => sock.receive(presence([{ username: 'olive', role: 'owner' }, { username: 'eddie', typing: true }])))
    const people = screen.getByRole('list', { name: 'People here' })
    expect(within(people).getAllByRole('listitem').map((li) => li.getAttribute('aria-label'))).toEqual([
      'olive (you), owner',
      'eddie, editor, typing',
    ])
    expect(screen.getByText('eddie is typing…')).toBeInTheDocument()

    fireEvent.change(screen.getByRole('textbox', { name: 'Message' }), { target: { value: 'add' } })
    expect(sock.sentOfType('presence_update').map((f) => f.data)).toEqual([{ typing: true }])
  })

  it('tells the others which node this tab selected, and rings theirs', async () => {
    const { sock } = await openAs('editor')
    const user = userEvent.setup()
    await user.click(screen.getByRole('treeitem', { name: 'Project' }))
    await user.click(screen.getByRole('treeitem', { name: 'Root' }))
    await user.click(screen.getByRole('treeitem', { name: 'Project' }))
    await waitFor(() =>
      expect(sock.sentOfType('presence_update').map((f) => f.data)).toContainEqual({ selected: 'p' }),
    )
    // Others' selections show as rings.
    act(() => sock.receive(presence([{ username: 'eddie', selected: 'p' }])))
    expect(screen.getByRole('treeitem', { name: 'Project' })).toHaveAttribute('title', 'Selected by eddie')
  })

  it('gives a viewer a read-only session: no composer, no decisions', async () => {
    const { sock } = await openAs('viewer', { proposals: [proposal] })
    expect(screen.getByText('Viewer')).toBeInTheDocument()
    expect(screen.queryByRole('textbox', { name: 'Message' })).not.toBeInTheDocument()
    const review = screen.getByRole('region', { name: 'Proposal from eddie' })
    expect(within(review).queryByRole('button', { name: 'Accept all' })).not.toBeInTheDocument()
    // No review mode switch for anyone but the owner.
    expect(screen.queryByRole('switch', { name: 'Review mode' })).not.toBeInTheDocument()
    act(() => sock.receive(presence([{ username: 'vic', role: 'viewer' }])))
    expect(sock.sentOfType('presence_update')).toEqual([])
  })

  it('follows a role change the owner makes while we are here (presence carries it)', async () => {
    const { sock } = await openAs('viewer')
    expect(screen.queryByRole('textbox', { name: 'Message' })).not.toBeInTheDocument()
    act(() => sock.receive(presence([{ username: 'olive', role: 'editor' }])))
    expect(await screen.findByRole('textbox', { name: 'Message' })).toBeInTheDocument()
    expect(screen.getByText('Editor')).toBeInTheDocument()
  })

  it('lets an editor accept part of a proposal, then shows the outcome in the chat', async () => {
    const { sock } = await openAs('editor')
    act(() => sock.receive({ type: 'proposal', data: { proposal }, seq: 11 }))
    const review = screen.getByRole('region', { name: 'Proposal from eddie' })
    expect(within(log()).getByRole('note', { name: 'Proposal' })).toHaveTextContent("Add 'Design', add 'Build'")

    const user = userEvent.setup()
    await user.click(within(review).getByRole('checkbox', { name: "Add 'Design' under 'Project'" }))
    await user.click(within(review).getByRole('button', { name: /Accept selected/ }))
    expect(sock.sentOfType('proposal_decision').map((f) => f.data)).toEqual([{ proposal_id: 'pr1', accept: [1] }])

    act(() =>
      sock.receive({
        type: 'proposal_resolved',
        data: { proposal_id: 'pr1', accepted: [1], rejected: [0], conflicts: [], decided_by: 'olive' },
        seq: 12,
      }),
    )
    expect(screen.queryByRole('region', { name: 'Proposal from eddie' })).not.toBeInTheDocument()
    expect(within(log()).getByRole('note', { name: 'Proposal' })).toHaveTextContent(
      'Accepted 1 of 2 changes by olive; 1 rejected',
    )
  })

  it('moves the focus on when the proposal holding it is decided: to the next proposal, then to the tree', async () => {
    const { sock } = await openAs('editor')
    const second = { ...proposal, id: 'pr2', author: { username: 'ann', via: 'assistant' } }
    act(() => sock.receive({ type: 'proposal', data: { proposal }, seq: 11 }))
    act(() => sock.receive({ type: 'proposal', data: { proposal: second }, seq: 12 }))
    const user = userEvent.setup()
    const first = screen.getByRole('region', { name: 'Proposal from eddie' })
    within(first).getByRole('button', { name: 'Accept all' }).focus()
    await user.keyboard('{Enter}')
    expect(sock.sentOfType('proposal_decision').map((f) => f.data)).toEqual([{ proposal_id: 'pr1', accept: 'all' }])
    const resolved = (id: string, seq: number) =>
      act(() =>
        sock.receive({
          type: 'proposal_resolved',
          data: { proposal_id: id, accepted: [], rejected: [0, 1], conflicts: [], decided_by: 'olive' },
          seq,
        }),
      )
    resolved('pr1', 13)
    const next = screen.getByRole('region', { name: 'Proposal from ann' })
    expect(within(next).getByRole('checkbox', { name: "Add 'Design' under 'Project'" })).toHaveFocus()
    resolved('pr2', 14) // decided elsewhere, the focus still in it
    expect(screen.getByRole('tree', { name: 'Object tree' })).toHaveFocus()
  })

  it('hands the focus of a proposed row to the accepted node, though the tree feed renders a frame late', async () => {
    // The server sends the accepted change's tree_update, then proposal_resolved; the tree feed coalesces per
    // animation frame, the collaboration state does not: both must reach the tree in the same render, or the
    // proposed row goes before its node arrives and the focus falls back to the parent.
    const { sock } = await openAs('editor')
    act(() => sock.receive({ type: 'proposal', data: { proposal }, seq: 11 }))
    const user = userEvent.setup()
    await user.click(screen.getByRole('treeitem', { name: 'Proposed: Design' }))
    const treeEl = screen.getByRole('tree', { name: 'Object tree' })
    expect(treeEl).toHaveFocus()
    act(() =>
      sock.receive({
        type: 'tree_update',
        data: { delta: proposal.deltas[0], rev: 5, origin: 'proposal' },
        seq: 12,
      }),
    )
    act(() =>
      sock.receive({
        type: 'proposal_resolved',
        data: { proposal_id: 'pr1', accepted: [0], rejected: [1], conflicts: [], decided_by: 'olive' },
        seq: 13,
      }),
    )
    const design = await screen.findByRole('treeitem', { name: 'Design' })
    expect(design).toHaveAttribute('aria-selected', 'true')
    expect(screen.getByRole('treeitem', { name: 'Project' })).toHaveAttribute('aria-selected', 'false')
    expect(treeEl).toHaveAttribute('aria-activedescendant', design.id)
    expect(treeEl).toHaveFocus()
  })

  it('says so and leaves the session when the owner revokes our access', async () => {
    const { sock, router } = await openAs('editor')
    act(() => sock.serverClose(1008, 'access revoked'))
    expect(await screen.findByText('Your access to this session was removed by its owner.')).toBeInTheDocument()
    await waitFor(() => expect(router.state.location.pathname).toBe('/'))
    // It connects again, to the user's most recent session (no session id), without a forced token.
    await waitFor(() => expect(FakeSocket.instances.length).toBe(2))
    act(() => FakeSocket.last.open())
    expect(FakeSocket.last.sent[0]!.data).not.toHaveProperty('session_id')
  })
})

describe('who said it in the chat', () => {
  const history = (messages: Array<Record<string, unknown>>) => ({ type: 'chat_history', data: { messages } })
  const olives = { role: 'user', content: "add 'Project'", author: { username: 'olive', via: 'user' } }
  const prompts = () => within(log()).getAllByRole('listitem').filter((li) => li.dataset.role === 'user')

  it('names nobody while the owner is alone in the session', async () => {
    stubFetch([{ username: 'olive', role: 'owner' }])
    const { sock } = await openAs('owner')
    act(() => sock.receive(history([olives])))
    act(() => sock.receive(presence([{ username: 'olive', role: 'owner' }])))
    await screen.findByText("add 'Project'")
    await waitFor(() => expect(queryClient.getQueryState(sessionsKeys.members('s1'))?.status).toBe('success'))
    expect(within(log()).queryByText('You')).not.toBeInTheDocument()
    // Someone joins (a member the list did not know yet): now it is a shared chat.
    act(() => sock.receive(presence([{ username: 'olive', role: 'owner' }, { username: 'eddie' }])))
    expect(within(log()).getByText('You')).toBeInTheDocument()
  })

  it('says "You" on the owner’s prompts once the session has another member, and names the others', async () => {
    stubFetch([
      { username: 'olive', role: 'owner' },
      { username: 'eddie', role: 'editor' },
    ])
    const { sock } = await openAs('owner')
    act(() => sock.receive(history([olives])))
    expect(await within(log()).findByText('You')).toBeInTheDocument()
    act(() =>
      sock.receive({
        type: 'chat_message',
        id: 'e1',
        seq: 11,
        data: { role: 'user', content: "add 'Design'", author: { username: 'eddie', via: 'user' } },
      }),
    )
    expect(prompts().map((li) => li.textContent)).toEqual([
      expect.stringMatching(/^You:add 'Project'/),
      expect.stringMatching(/^eddie:add 'Design'/),
    ])
  })
})

const log = () => screen.getByRole('log', { name: 'Conversation' })
