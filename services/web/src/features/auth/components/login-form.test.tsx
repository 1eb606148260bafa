import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import { LoginForm } from './login-form'

beforeEach(() => {
  auth.clear()
  localStorage.clear()
  sessionStorage.clear()
})
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

describe('LoginForm', () => {
  it('logs in with an OAuth2 password form and keeps the token in memory only', async () => {
    const { fn, calls } = mockFetch({
      'POST /api/auth/login': () => json({ access_token: 'tok-1', token_type: 'bearer', expires_in: 1800 }),
    })
    vi.stubGlobal('fetch', fn)
    const onSuccess = vi.fn()
    const user = userEvent.setup()
    renderWithClient(<LoginForm onSuccess={onSuccess} />)

    await user.type(screen.getByLabelText('Username'), 'alice')
    await user.type(screen.getByLabelText('Password'), 's3cret pass&=')
    await user.click(screen.getByRole('button', { name: 'Log in' }))

    await waitFor(() => expect(onSuccess).toHaveBeenCalled())
    const call = calls.find((c) => c.url === '/api/auth/login')!
    expect((call.init!.headers as Record<string, string>)['Content-Type']).toBe('application/x-www-form-urlencoded')
    expect(new URLSearchParams(call.init!.body as string).get('password')).toBe('s3cret pass&=')
    expect(call.init!.body).toBe('username=alice&password=s3cret+pass%26%3D')
    expect(auth.getAccessToken()).toBe('tok-1')
    expect(auth.getState().status).toBe('authenticated')
    // The token never reaches storage; the one stored key is lib/auth's signed-in hint (no secret in it).
    expect(sessionStorage.length).toBe(0)
    const stored = Array.from({ length: localStorage.length }, (_, i) => localStorage.key(i)!)
    expect(stored).toEqual(['canopy.signed-in'])
    expect(localStorage.getItem('canopy.signed-in')).toBe('1')
  })

  it('shows an error on bad credentials', async () => {
    vi.stubGlobal('fetch', mockFetch({ 'POST /api/auth/login': () => json({ detail: 'Incorrect' }, 401) }).fn)
    const onSuccess = vi.fn()
    const user = userEvent.setup()
    renderWithClient(<LoginForm onSuccess={onSuccess} />)
    await user.type(screen.getByLabelText('Username'), 'alice')
    await user.type(screen.getByLabelText('Password'), 'wrongwrong')
    await user.click(screen.getByRole('button', { name: 'Log in' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('Invalid username or password.')
    // The focus is in the password, to type it again (not lost with the button, disabled while it waited).
    await waitFor(() => expect(screen.getByLabelText('Password')).toHaveFocus())
    expect(onSuccess).not.toHaveBeenCalled()
    expect(auth.getAccessToken()).toBeNull()
  })

  it('asks for both fields before sending anything', async () => {
    const { fn, calls } = mockFetch({})
    vi.stubGlobal('fetch', fn)
    const user = userEvent.setup()
    renderWithClient(<LoginForm onSuccess={vi.fn()} />)
    await user.click(screen.getByRole('button', { name: 'Log in' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('Enter your username and password.')
    expect(screen.getByLabelText('Username')).toHaveFocus()
    expect(calls).toHaveLength(0)
  })

  it('creates an account, then logs in', async () => {
    const { fn, calls } = mockFetch({
      'POST /api/auth/register': () => json({ id: 1, username: 'bob_1' }, 201),
      'POST /api/auth/login': () => json({ access_token: 'tok-2', token_type: 'bearer', expires_in: 1800 }),
    })
    vi.stubGlobal('fetch', fn)
    const onSuccess = vi.fn()
    const user = userEvent.setup()
    renderWithClient(<LoginForm onSuccess={onSuccess} />)

    await user.click(screen.getByRole('button', { name: 'Create account' }))
    expect(screen.getByRole('heading', { name: 'Create an account' })).toBeInTheDocument()
    await user.type(screen.getByLabelText('Username'), 'bob_1')
    await user.type(screen.getByLabelText('Password'), 'longenough')
    await user.click(screen.getByRole('button', { name: 'Create account' }))

    await waitFor(() => expect(onSuccess).toHaveBeenCalled())
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual(['POST /api/auth/register', 'POST /api/auth/login'])
    expect(JSON.parse(calls[0]!.init!.body as string)).toEqual({ username: 'bob_1', password: 'longenough' })
    expect(auth.getAccessToken()).toBe('tok-2')
  })

  it('explains a taken username and a too short password', async () => {
    vi.stubGlobal('fetch', mockFetch({ 'POST /api/auth/register': () => json({ detail: 'taken' }, 409) }).fn)
    const user = userEvent.setup()
    renderWithClient(<LoginForm onSuccess={vi.fn()} initialMode="register" />)
    await user.type(screen.getByLabelText('Username'), 'carol')
    await user.type(screen.getByLabelText('Password'), 'short')
    await user.click(screen.getByRole('button', { name: 'Create account' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('Password: 8 to 256 characters.')
    expect(screen.getByLabelText('Password')).toHaveFocus()
    await user.type(screen.getByLabelText('Password'), '-but-longer')
    await user.click(screen.getByRole('button', { name: 'Create account' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('That username is already taken.')
    await waitFor(() => expect(screen.getByLabelText('Username')).toHaveFocus())
  })
})
