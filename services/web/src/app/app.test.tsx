import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { createMemoryRouter, RouterProvider } from 'react-router'
import { auth } from '@/lib/auth'
import { addUpdate, FakeSocket, ready } from '@/testing/fake-socket'
import { createTestQueryClient, json, mockFetch } from '@/testing/render'
import { AppProvider } from './provider'
import { routes } from './router'

const sessions = [
  { session_id: 's1', title: 'Groceries', updated_at: '2025-01-02T10:00:00Z', node_count: 3, role: 'owner', owner: 'alice' },
  { session_id: 's0', title: 'Older', updated_at: '2025-01-01T10:00:00Z', node_count: 1, role: 'owner', owner: 'alice' },
]

function renderApp(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] })
  render(
    <AppProvider queryClient={createTestQueryClient()}>
      <RouterProvider router={router} />
    </AppProvider>,
  )
  return router
}

async function socketReady() {
  await waitFor(() => expect(FakeSocket.instances.length).toBeGreaterThan(0))
  const sock = FakeSocket.last
  act(() => sock.open())
  return sock
}

let fetchMock: ReturnType<typeof mockFetch>

beforeEach(() => {
  FakeSocket.reset()
  vi.stubGlobal('WebSocket', FakeSocket)
  fetchMock = mockFetch({
    'GET /api/sessions': () => json(sessions),
    'GET /api/auth/me': () => json({ id: 1, username: 'alice' }),
    'POST /api/auth/login': () => json({ access_token: 'tok', token_type: 'bearer', expires_in: 1800 }),
    'POST /api/sessions': () => json({ session_id: 's9', title: null, tree: { id: 'root', value: 'Root', children: [] }, rev: 0, history: [] }, 201),
  })
  vi.stubGlobal('fetch', fetchMock.fn)
})
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

describe('the app', () => {
  it('sends a logged-out visitor to /login and back to the page asked for', async () => {
    auth.clear()
    const router = renderApp('/sessions/s0')
    const user = userEvent.setup()
    await user.type(await screen.findByLabelText('Username'), 'alice')
    await user.type(screen.getByLabelText('Password'), 'password1')
    await user.click(screen.getByRole('button', { name: 'Log in' }))
    await waitFor(() => expect(router.state.location.pathname).toBe('/sessions/s0'))
    const sock = await socketReady()
    expect(sock.url).toBe(`ws://${location.host}/ws/session?session=s0`) // names its session for nginx
    expect(sock.sent[0]).toMatchObject({ type: 'init_session', data: { token: 'tok', session_id: 's0' } })
  })

  it('opens the most recent session on "/", and wires chat, tree and connection badge to the socket', async () => {
    auth.setSession({ access_token: 'tok', expires_in: 1800 })
    const router = renderApp('/')
    const user = userEvent.setup()
    const badge = await screen.findByRole('status', { name: 'Connection status' })
    expect(badge).toHaveTextContent('Connecting…')
    const sock = await socketReady()
    expect(sock.sent[0]).toEqual(expect.objectContaining({ type: 'init_session', data: { token: 'tok' } }))

    act(() => {
      sock.receive({ ...ready('s1', 0, 10), seq: undefined })
      sock.receive({ type: 'chat_history', data: { messages: [{ role: 'user', content: 'earlier prompt' }] } })
    })
    await waitFor(() => expect(router.state.location.pathname).toBe('/sessions/s1'))
    expect(badge).toHaveTextContent('Connected')
    expect(screen.getByText('earlier prompt')).toBeInTheDocument()
    expect(await screen.findByRole('treeitem', { name: 'Root' })).toBeInTheDocument() // the tree renders on the next animation frame
    // sessions sidebar
    const nav = await screen.findByRole('navigation', { name: 'Sessions' })
    expect(within(nav).getByRole('link', { name: /Groceries/ })).toHaveAttribute('aria-current', 'page')

    // a server tree_update shows up
    act(() => sock.receive(addUpdate('t1', 'Task 1', 1, 11)))
    expect(await screen.findByRole('treeitem', { name: 'Task 1' })).toBeInTheDocument()

    // a rename in the tree goes out as a tree_op with the current rev, and is applied only when echoed
    await user.click(screen.getByRole('button', { name: 'Rename Task 1' }))
    const input = await screen.findByRole('textbox', { name: 'Node value' })
    await user.clear(input)
    await user.type(input, 'Milk{Enter}')
    const op = sock.sentOfType('tree_op')[0]!
    expect(op.data).toEqual({ delta: { action: 'update', path: '/root/t1', fields: { value: 'Milk' } }, base_rev: 1 })
    expect(screen.getByRole('treeitem', { name: 'Task 1' })).toBeInTheDocument()
    act(() =>
      sock.receive({
        type: 'tree_update',
        id: op.id,
        seq: 12,
        data: { delta: op.data.delta, rev: 2, origin: 'user' },
      }),
    )
    expect(await screen.findByRole('treeitem', { name: 'Milk' })).toBeInTheDocument()

    // chat: prompt out, streaming answer in
    await user.type(screen.getByRole('textbox', { name: 'Message' }), 'Add Eggs under root')
    await user.click(screen.getByRole('button', { name: 'Send' }))
    const prompt = sock.sentOfType('user_prompt')[0]!
    expect(prompt.data).toEqual({ prompt: 'Add Eggs under root' })
    act(() => {
      sock.receive({ type: 'chat_message', id: prompt.id, data: { content: 'Add Eggs under root' } })
      sock.receive({ type: 'assistant_response', id: prompt.id, data: { text: 'Adding ', chunk: true } })
    })
    expect(screen.getByRole('button', { name: 'Stop' })).toBeInTheDocument()
    act(() => sock.receive({ type: 'assistant_response', id: prompt.id, data: { text: 'Added Eggs.', chunk: false } }))
    expect(screen.getByText('Added Eggs.')).toBeInTheDocument()
    expect(screen.getAllByText('Add Eggs under root')).toHaveLength(1)

    // undo / redo: off until the server's undo_state for this user says there is something to undo / redo
    const undo = screen.getByRole('button', { name: 'Undo' })
    const redo = screen.getByRole('button', { name: 'Redo' })
    expect(undo).toBeDisabled()
    expect(redo).toBeDisabled()
    act(() => sock.receive({ type: 'undo_state', session_id: 's1', data: { can_undo: true, can_redo: false } }))
    expect(undo).toBeEnabled()
    expect(redo).toBeDisabled()
    await user.click(undo)
    act(() => sock.receive({ type: 'undo_state', session_id: 's1', data: { can_undo: true, can_redo: true } }))
    await user.click(redo)
    expect(sock.sent.map((f) => f.type).slice(-2)).toEqual(['undo', 'redo'])
    // undo_state leaves turns out: both are off while a turn runs (anyone's: its chat_message starts it)
    act(() => sock.receive({ type: 'chat_message', session_id: 's1', id: 'x1', seq: 9, data: { role: 'user', content: 'hi' } }))
    expect(undo).toBeDisabled()
    expect(redo).toBeDisabled()
    act(() =>
      sock.receive({ type: 'assistant_response', session_id: 's1', id: 'x1', seq: 10, data: { text: 'Hello.', chunk: false } }),
    )
    expect(undo).toBeEnabled()
    expect(redo).toBeEnabled()
    // another session's state (a switch in flight) is not this one's
    act(() => sock.receive({ type: 'undo_state', session_id: 's0', data: { can_undo: true, can_redo: true } }))
    expect(undo).toBeDisabled()

    // errors become toasts
    act(() => sock.receive({ type: 'error', data: {}, error: { code: 409, message: 'Nothing to redo' } }))
    expect(await screen.findByText('Nothing to redo (409)')).toBeInTheDocument()

    // a dropped connection shows in the badge
    act(() => sock.serverClose(1006))
    expect(badge).toHaveTextContent('Reconnecting…')
  })

  it('switching session re-attaches the socket; an unknown session falls back to "/"', async () => {
    auth.setSession({ access_token: 'tok', expires_in: 1800 })
    const router = renderApp('/sessions/s1')
    const sock = await socketReady()
    expect(sock.sent[0]!.data).toMatchObject({ session_id: 's1' })
    act(() => sock.receive(ready('s1', 0, 5)))
    const nav = await screen.findByRole('navigation', { name: 'Sessions' })
    const user = userEvent.setup()
    await user.click(within(nav).getByRole('link', { name: /Older/ }))
    await waitFor(() => expect(FakeSocket.instances.length).toBe(2))
    expect(sock.closedWith).toBe(1000)
    const sock2 = await socketReady()
    expect(sock2.sent[0]!.data).toEqual({ token: 'tok', session_id: 's0' })
    act(() => sock2.receive({ type: 'error', data: {}, error: { code: 404, message: 'unknown session' } }))
    await waitFor(() => expect(FakeSocket.instances.length).toBe(3))
    const sock3 = await socketReady()
    expect(sock3.sent[0]!.data).toEqual({ token: 'tok' })
    act(() => sock3.receive(ready('s1')))
    await waitFor(() => expect(router.state.location.pathname).toBe('/sessions/s1'))
  })

  it('creates a session from the sidebar and opens it', async () => {
    auth.setSession({ access_token: 'tok', expires_in: 1800 })
    const router = renderApp('/sessions/s1')
    const sock = await socketReady()
    act(() => sock.receive(ready('s1')))
    const user = userEvent.setup()
    await user.click(await screen.findByRole('button', { name: 'New session' }))
    await waitFor(() => expect(router.state.location.pathname).toBe('/sessions/s9'))
    const call = fetchMock.calls.find((c) => c.method === 'POST' && c.url === '/api/sessions')!
    expect((call.init!.headers as Record<string, string>).Authorization).toBe('Bearer tok')
    // The switch opens a second socket; wait for it rather than racing the first one.
    await waitFor(() => expect(FakeSocket.instances.length).toBe(2))
    const sock2 = await socketReady()
    expect(sock2.sent[0]!.data).toEqual({ token: 'tok', session_id: 's9' })
  })
})
