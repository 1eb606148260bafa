import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import { TokensSettings } from './tokens-settings'

const base = {
  hint: 'cnp_abcd',
  created_at: '2026-01-01T00:00:00Z',
  expires_at: null,
  last_used_at: null,
}
let list: Array<Record<string, unknown>> = []

beforeEach(() => {
  auth.setSession({ access_token: 'tok', expires_in: 1800 })
  list = [{ ...base, id: 't1', name: 'Old script', scope: 'read', session_id: 's1' }]
})
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

function setup() {
  const { fn, calls } = mockFetch({
    'GET /api/tokens': () => json(list),
    'POST /api/tokens': (init) => {
      const body = JSON.parse(init!.body as string)
      const token = { ...base, id: 't2', session_id: null, ...body }
      list = [...list, token]
      return json({ ...token, token: 'cnp_secret-shown-once' }, 201)
    },
    'DELETE /api/tokens/t1': () => {
      list = list.filter((t) => t.id !== 't1')
      return json(null, 204)
    },
  })
  vi.stubGlobal('fetch', fn)
  renderWithClient(<TokensSettings sessions={[{ id: 's1', title: 'Plans' }]} />)
  return { calls, user: userEvent.setup() }
}

describe('TokensSettings', () => {
  it('lists tokens without secrets, with their session limit', async () => {
    setup()
    const table = await screen.findByRole('table')
    const row = within(table).getByRole('row', { name: /Old script/ })
    expect(row).toHaveTextContent('Read only')
    expect(row).toHaveTextContent('Only “Plans”')
    expect(row).toHaveTextContent('cnp_abcd…')
  })

  it('creates a token and shows its secret once in a dialog', async () => {
    const { calls, user } = setup()
    await user.type(screen.getByLabelText('Name'), 'Claude Desktop')
    await user.selectOptions(screen.getByLabelText('Expires after'), '30')
    await user.click(screen.getByRole('button', { name: 'Create token' }))
    const dialog = await screen.findByRole('dialog')
    expect(within(dialog).getByLabelText('Token')).toHaveValue('cnp_secret-shown-once')
    const post = calls.find((c) => c.method === 'POST')!
    expect(JSON.parse(post.init!.body as string)).toEqual({ name: 'Claude Desktop', scope: 'write', expires_days: 30 })
    await user.click(within(dialog).getByRole('button', { name: 'Done' }))
    expect(screen.queryByRole('dialog')).toBeNull()
    // The focus goes back to the form (the Create button is disabled until a new name is typed).
    await waitFor(() => expect(screen.getByLabelText('Name')).toHaveFocus())
    expect(await screen.findByRole('row', { name: /Claude Desktop/ })).toHaveTextContent('Read and write')
    expect(screen.queryByText('cnp_secret-shown-once')).toBeNull()
    expect(screen.queryByDisplayValue('cnp_secret-shown-once')).toBeNull()
  })

  it('revokes a token after asking (Cancel, the default, changes nothing), then focuses the list', async () => {
    const { calls, user } = setup()
    const button = await screen.findByRole('button', { name: 'Revoke Old script' })
    await user.click(button)
    let ask = await screen.findByRole('alertdialog', { name: 'Revoke “Old script”?' })
    expect(within(ask).getByRole('button', { name: 'Cancel' })).toHaveFocus()
    await user.keyboard('{Enter}')
    await waitFor(() => expect(screen.queryByRole('alertdialog')).toBeNull())
    await waitFor(() => expect(button).toHaveFocus())
    expect(calls.some((c) => c.method === 'DELETE')).toBe(false)

    await user.click(button)
    ask = await screen.findByRole('alertdialog', { name: 'Revoke “Old script”?' })
    await user.click(within(ask).getByRole('button', { name: 'Revoke' }))
    expect(await screen.findByText('No tokens yet.')).toBeInTheDocument()
    expect(calls.some((c) => c.method === 'DELETE' && c.url === '/api/tokens/t1')).toBe(true)
    // Its row is gone: the focus is on the list's heading, not lost.
    await waitFor(() => expect(screen.getByRole('heading', { name: 'Your tokens' })).toHaveFocus())
  })
})
