import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import { AccountSettings } from './account-settings'

beforeEach(() => {
  auth.setSession({ access_token: 'tok', expires_in: 1800 })
})
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

function setup(
  password: (body: Record<string, unknown>) => Response,
  logoutAll: () => Response | Promise<Response> = () => json(null, 204),
) {
  const { fn, calls } = mockFetch({
    'POST /api/auth/password': (init) => password(JSON.parse(init!.body as string)),
    'POST /api/auth/logout-all': logoutAll,
  })
  vi.stubGlobal('fetch', fn)
  const onSignedOut = vi.fn()
  renderWithClient(<AccountSettings onSignedOut={onSignedOut} />)
  return { calls, onSignedOut, user: userEvent.setup() }
}

const refused = (msg: string) =>
  json({ detail: [{ loc: ['body', 'new_password'], msg, type: 'value_error' }] }, 422)

describe('AccountSettings', () => {
  it('changes the password, then this tab is logged out (the server ended every login)', async () => {
    const { calls, onSignedOut, user } = setup(() => json(null, 204))
    await user.type(screen.getByLabelText('Current password'), 'old-pass-word-1')
    await user.type(screen.getByLabelText('New password'), 'new-pass-word-2')
    await user.click(screen.getByRole('button', { name: 'Change password' }))
    await waitFor(() => expect(onSignedOut).toHaveBeenCalledWith('password'))
    const call = calls.find((c) => c.url === '/api/auth/password')!
    expect(JSON.parse(call.init!.body as string)).toEqual({
      current_password: 'old-pass-word-1',
      new_password: 'new-pass-word-2',
    })
    expect((call.init!.headers as Record<string, string>).Authorization).toBe('Bearer tok')
    expect(auth.getState().status).toBe('anonymous')
    expect(auth.getAccessToken()).toBeNull()
  })

  it("shows the server's refusals and stays logged in", async () => {
    let answer = json({ detail: 'Current password is wrong' }, 403)
    const { onSignedOut, user } = setup(() => answer)
    const current = screen.getByLabelText('Current password')
    await user.type(current, 'wrong-pass-word')
    await user.type(screen.getByLabelText('New password'), 'new-pass-word-2')
    await user.click(screen.getByRole('button', { name: 'Change password' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('The current password is wrong.')
    expect(current).toHaveAttribute('aria-invalid', 'true')
    // The focus is in the field to fix, not lost with the button (disabled while it waited).
    await waitFor(() => expect(current).toHaveFocus())

    answer = refused('Password is one of the most common passwords; choose another')
    await user.clear(current)
    await user.type(current, 'old-pass-word-1')
    await user.click(screen.getByRole('button', { name: 'Change password' }))
    await waitFor(() =>
      expect(screen.getByRole('alert')).toHaveTextContent(
        'Password is one of the most common passwords; choose another',
      ),
    )
    await waitFor(() => expect(screen.getByLabelText('New password')).toHaveFocus())
    expect(onSignedOut).not.toHaveBeenCalled()
    expect(auth.getState().status).toBe('authenticated')
  })

  it('checks what it can before asking the server', async () => {
    const { calls, user } = setup(() => json(null, 204))
    await user.click(screen.getByRole('button', { name: 'Change password' }))
    expect(screen.getByRole('alert')).toHaveTextContent('Enter your current password.')
    expect(screen.getByLabelText('Current password')).toHaveFocus()
    await user.type(screen.getByLabelText('Current password'), 'old-pass-word-1')
    await user.type(screen.getByLabelText('New password'), 'short')
    await user.click(screen.getByRole('button', { name: 'Change password' }))
    expect(screen.getByRole('alert')).toHaveTextContent('The new password needs 8 to 256 characters.')
    expect(screen.getByLabelText('New password')).toHaveFocus()
    expect(calls).toHaveLength(0)
  })

  it('asks before signing out of all devices: Cancel has the focus, and backing out changes nothing', async () => {
    const { calls, onSignedOut, user } = setup(() => json(null, 204))
    const opener = screen.getByRole('button', { name: 'Sign out of all devices' })
    await user.click(opener)
    const dialog = screen.getByRole('alertdialog', { name: 'Sign out of all devices?' })
    expect(dialog).toHaveAccessibleDescription(/this tab included/)
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus()
    await user.keyboard('{Enter}') // the focused default backs out
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
    expect(opener).toHaveFocus()

    await user.click(opener)
    await user.keyboard('{Escape}') // and so does Escape
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
    expect(opener).toHaveFocus()
    expect(calls).toHaveLength(0)
    expect(onSignedOut).not.toHaveBeenCalled()
    expect(auth.getState().status).toBe('authenticated')
  })

  it('signs out of all devices once confirmed, this tab included', async () => {
    let answer: (response: Response) => void = () => {}
    const pending = new Promise<Response>((resolve) => (answer = resolve))
    const { calls, onSignedOut, user } = setup(() => json(null, 204), () => pending)
    await user.click(screen.getByRole('button', { name: 'Sign out of all devices' }))
    const dialog = screen.getByRole('alertdialog', { name: 'Sign out of all devices?' })
    await user.click(within(dialog).getByRole('button', { name: 'Sign out everywhere' }))
    // While the server works, the dialog stays and neither button can be pressed again.
    expect(within(dialog).getByRole('button', { name: 'Signing out…' })).toBeDisabled()
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toBeDisabled()
    await user.keyboard('{Escape}')
    expect(dialog).toBeInTheDocument()
    answer(json(null, 204))
    await waitFor(() => expect(onSignedOut).toHaveBeenCalledWith('everywhere'))
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual(['POST /api/auth/logout-all'])
    expect(auth.getState().status).toBe('anonymous')
  })

  it("shows why signing out everywhere failed, gives the focus back and stays logged in", async () => {
    const { onSignedOut, user } = setup(
      () => json(null, 204),
      () => json({ detail: 'Storage unavailable; try again later' }, 503),
    )
    const opener = screen.getByRole('button', { name: 'Sign out of all devices' })
    await user.click(opener)
    await user.click(screen.getByRole('button', { name: 'Sign out everywhere' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('Storage unavailable; try again later')
    await waitFor(() => expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument())
    expect(opener).toHaveFocus()
    expect(onSignedOut).not.toHaveBeenCalled()
    expect(auth.getState().status).toBe('authenticated')
  })
})
