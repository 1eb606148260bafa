import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import type { SessionSummary } from '../api/sessions'
import { ShareDialog } from './share-dialog'

const session: SessionSummary = {
  session_id: 's1',
  title: 'Plans',
  updated_at: '2025-01-01T00:00:00Z',
  node_count: 3,
  role: 'owner',
  owner: 'olive',
}

let members: Array<{ username: string; role: string }>

beforeEach(() => {
  auth.setSession({ access_token: 'tok', expires_in: 1800 })
  members = [
    { username: 'olive', role: 'owner' },
    { username: 'vic', role: 'viewer' },
  ]
})
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

function setup() {
  const { fn, calls } = mockFetch({
    'GET /api/sessions/s1/members': () => json(members),
    'POST /api/sessions/s1/members': (init) => {
      const body = JSON.parse(init!.body as string)
      if (body.username === 'nobody') return json({ detail: 'User not found' }, 404)
      members = [...members, body]
      return json(body, 201)
    },
    'PATCH /api/sessions/s1/members/vic': (init) => {
      const { role } = JSON.parse(init!.body as string)
      members = members.map((m) => (m.username === 'vic' ? { ...m, role } : m))
      return json({ username: 'vic', role })
    },
    'DELETE /api/sessions/s1/members/vic': () => {
      members = members.filter((m) => m.username !== 'vic')
      return json(null, 204)
    },
  })
  vi.stubGlobal('fetch', fn)
  const onClose = vi.fn()
  renderWithClient(<ShareDialog session={session} onClose={onClose} />)
  return { calls, onClose, user: userEvent.setup() }
}

const bodyOf = (c: { init: RequestInit | undefined }) => JSON.parse(c.init!.body as string)

describe('ShareDialog', () => {
  it('lists the owner and the members', async () => {
    setup()
    const list = await screen.findByRole('region', { name: 'Members' })
    expect(await within(list).findByText('vic')).toBeInTheDocument()
    expect(within(list).getByText('olive')).toBeInTheDocument()
    expect(within(list).getByText('Owner')).toBeInTheDocument()
    // The owner cannot be removed or demoted.
    expect(within(list).queryByRole('button', { name: 'Remove olive' })).not.toBeInTheDocument()
    expect(within(list).getByRole('combobox', { name: 'Role of vic' })).toHaveValue('viewer')
  })

  it('shares with a username and a role', async () => {
    const { calls, user } = setup()
    await user.type(screen.getByLabelText('Username'), 'eddie')
    await user.selectOptions(screen.getByLabelText('Role'), 'editor')
    await user.click(screen.getByRole('button', { name: 'Share' }))
    const list = screen.getByRole('region', { name: 'Members' })
    expect(await within(list).findByText('eddie')).toBeInTheDocument()
    expect(bodyOf(calls.find((c) => c.method === 'POST')!)).toEqual({ username: 'eddie', role: 'editor' })
    expect(screen.getByLabelText('Username')).toHaveValue('')
  })

  it('says why a share failed and keeps the name', async () => {
    const { user } = setup()
    await user.type(screen.getByLabelText('Username'), 'nobody')
    await user.click(screen.getByRole('button', { name: 'Share' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('User not found')
    expect(screen.getByLabelText('Username')).toHaveValue('nobody')
  })

  it('changes a role and removes a member', async () => {
    const { calls, user } = setup()
    const role = await screen.findByRole('combobox', { name: 'Role of vic' })
    await user.selectOptions(role, 'editor')
    await waitFor(() => expect(screen.getByRole('combobox', { name: 'Role of vic' })).toHaveValue('editor'))
    expect(bodyOf(calls.find((c) => c.method === 'PATCH')!)).toEqual({ role: 'editor' })

    await user.click(screen.getByRole('button', { name: 'Remove vic' }))
    await waitFor(() => expect(screen.queryByText('vic')).not.toBeInTheDocument())
    expect(calls.some((c) => c.method === 'DELETE' && c.url === '/api/sessions/s1/members/vic')).toBe(true)
  })
})
