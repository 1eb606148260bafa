import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter } from 'react-router'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import { SessionsSidebar } from './sessions-sidebar'

const own = { role: 'owner', owner: 'me' }
const initialList = [
  { session_id: 'a', title: 'Alpha', updated_at: '2025-01-01T00:00:00Z', node_count: 1, ...own },
  { session_id: 'b', title: null, updated_at: '2025-02-01T00:00:00Z', node_count: 4, ...own },
  { session_id: 'c', title: 'Carol plans', updated_at: '2025-03-01T00:00:00Z', node_count: 2, role: 'viewer', owner: 'carol' },
  { session_id: 'd', title: 'Dan builds', updated_at: '2025-01-15T00:00:00Z', node_count: 7, role: 'editor', owner: 'dan' },
]

let list = initialList

beforeEach(() => {
  list = initialList
  auth.setSession({ access_token: 'tok', expires_in: 1800 })
})
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

function setup(activeId: string | null = 'a') {
  const { fn, calls } = mockFetch({
    'GET /api/sessions': () => json(list),
    'PATCH /api/sessions/a': (init) => {
      const { title } = JSON.parse(init!.body as string)
      list = list.map((s) => (s.session_id === 'a' ? { ...s, title } : s))
      return json({ session_id: 'a', title })
    },
    'DELETE /api/sessions/b': () => {
      list = list.filter((s) => s.session_id !== 'b')
      return json(null, 204)
    },
  })
  vi.stubGlobal('fetch', fn)
  const onCreated = vi.fn()
  const onDeleted = vi.fn()
  renderWithClient(
    <MemoryRouter>
      <SessionsSidebar activeId={activeId} onCreated={onCreated} onDeleted={onDeleted} />
    </MemoryRouter>,
  )
  return { calls, onCreated, onDeleted, user: userEvent.setup() }
}

describe('SessionsSidebar', () => {
  it('lists sessions, most recent first, with the open one marked', async () => {
    setup()
    const nav = screen.getByRole('navigation', { name: 'Sessions' })
    await within(nav).findAllByRole('link')
    const mine = within(nav).getAllByRole('list')[0]!
    const links = within(mine).getAllByRole('link')
    expect(links.map((l) => l.textContent)).toEqual([
      expect.stringContaining('Untitled session'),
      expect.stringContaining('Alpha'),
    ])
    expect(links[0]).toHaveTextContent('4 nodes')
    expect(links[1]).toHaveAttribute('aria-current', 'page')
    expect(links[1]).toHaveAttribute('href', '/sessions/a')
  })

  it('renames and deletes through the actions menu', async () => {
    const { calls, onDeleted, user } = setup()
    await user.click(await screen.findByRole('button', { name: 'Actions for Alpha' }))
    await user.click(await screen.findByRole('menuitem', { name: 'Rename' }))
    const title = await screen.findByLabelText('Title')
    await user.clear(title)
    await user.type(title, 'Shopping{Enter}')
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument())
    const patch = calls.find((c) => c.method === 'PATCH')!
    expect(JSON.parse(patch.init!.body as string)).toEqual({ title: 'Shopping' })
    expect(await screen.findByRole('link', { name: /Shopping/ })).toBeInTheDocument()

    await user.click(screen.getByRole('button', { name: 'Actions for Untitled session' }))
    await user.click(await screen.findByRole('menuitem', { name: 'Delete' }))
    const dialog = await screen.findByRole('dialog', { name: 'Delete session?' })
    await user.click(within(dialog).getByRole('button', { name: 'Delete' }))
    await waitFor(() => expect(onDeleted).toHaveBeenCalledWith('b'))
    await waitFor(() => expect(screen.queryByRole('link', { name: /Untitled/ })).not.toBeInTheDocument())
  })

  it("gives the focus back to the session's actions button when its dialog closes", async () => {
    const { user } = setup()
    await user.click(await screen.findByRole('button', { name: 'Actions for Alpha' }))
    await user.click(await screen.findByRole('menuitem', { name: 'Rename' }))
    await user.type(await screen.findByLabelText('Title'), ' 2{Enter}')
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument())
    await waitFor(() => expect(screen.getByRole('button', { name: 'Actions for Alpha 2' })).toHaveFocus())

    await user.keyboard('{Enter}')
    await user.click(await screen.findByRole('menuitem', { name: 'Share' }))
    await user.keyboard('{Escape}')
    await waitFor(() => expect(screen.getByRole('button', { name: 'Actions for Alpha 2' })).toHaveFocus())

    // A deleted session's button is gone: the first session in the list takes the focus.
    await user.click(screen.getByRole('button', { name: 'Actions for Untitled session' }))
    await user.click(await screen.findByRole('menuitem', { name: 'Delete' }))
    const dialog = await screen.findByRole('dialog', { name: 'Delete session?' })
    await user.click(within(dialog).getByRole('button', { name: 'Delete' }))
    await waitFor(() => expect(screen.getByRole('link', { name: /Alpha 2/ })).toHaveFocus())
  })

  it('searches sessions by title and says when none matches', async () => {
    list = initialList.slice(0, 2)
    const { user } = setup()
    const nav = screen.getByRole('navigation', { name: 'Sessions' })
    await within(nav).findAllByRole('link')
    const search = within(nav).getByRole('searchbox', { name: 'Search sessions' })
    await user.type(search, 'alp')
    expect(within(nav).getAllByRole('link').map((l) => l.textContent)).toEqual([expect.stringContaining('Alpha')])
    await user.clear(search)
    await user.type(search, 'zebra')
    expect(within(nav).queryAllByRole('link')).toHaveLength(0)
    expect(within(nav).getByRole('status')).toHaveTextContent('No session matches “zebra”.')
    await user.clear(search)
    expect(within(nav).getAllByRole('link')).toHaveLength(2)
  })
})

describe('SessionsSidebar: shared sessions', () => {
  it('lists sessions shared with me apart, with their owner and my role', async () => {
    setup()
    const shared = await screen.findByRole('list', { name: 'Shared with me' })
    const links = within(shared).getAllByRole('link')
    expect(links.map((l) => l.textContent)).toEqual([
      expect.stringContaining('Carol plans'),
      expect.stringContaining('Dan builds'),
    ])
    expect(links[0]).toHaveTextContent('carol · viewer')
    expect(links[1]).toHaveTextContent('dan · editor')
    expect(within(shared).queryByRole('link', { name: /Alpha/ })).not.toBeInTheDocument()
  })

  it('offers Share and Delete to the owner only, nothing to a viewer', async () => {
    const { user } = setup()
    await screen.findByRole('list', { name: 'Shared with me' })
    expect(screen.queryByRole('button', { name: 'Actions for Carol plans' })).not.toBeInTheDocument()

    await user.click(screen.getByRole('button', { name: 'Actions for Dan builds' }))
    expect(await screen.findByRole('menuitem', { name: 'Rename' })).toBeInTheDocument()
    expect(screen.queryByRole('menuitem', { name: 'Share' })).not.toBeInTheDocument()
    expect(screen.queryByRole('menuitem', { name: 'Delete' })).not.toBeInTheDocument()
    await user.keyboard('{Escape}')

    await user.click(screen.getByRole('button', { name: 'Actions for Alpha' }))
    await user.click(await screen.findByRole('menuitem', { name: 'Share' }))
    expect(await screen.findByRole('dialog', { name: 'Share session' })).toBeInTheDocument()
  })
})
