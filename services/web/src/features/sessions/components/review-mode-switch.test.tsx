import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import { ReviewModeSwitch } from './review-mode-switch'

beforeEach(() => auth.setSession({ access_token: 'tok', expires_in: 1800 }))
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

describe('ReviewModeSwitch', () => {
  it('PATCHes review_mode and reports the server’s answer', async () => {
    const { fn, calls } = mockFetch({
      'PATCH /api/sessions/s1': (init) => {
        const { review_mode } = JSON.parse(init!.body as string)
        return json({ session_id: 's1', title: 'T', updated_at: '', node_count: 1, role: 'owner', owner: 'o', review_mode })
      },
    })
    vi.stubGlobal('fetch', fn)
    const onChanged = vi.fn()
    renderWithClient(<ReviewModeSwitch sessionId="s1" on={false} onChanged={onChanged} />)
    const toggle = screen.getByRole('switch', { name: 'Review mode' })
    expect(toggle).toHaveAttribute('aria-checked', 'false')
    await userEvent.setup().click(toggle)
    await waitFor(() => expect(onChanged).toHaveBeenCalledWith(true))
    expect(JSON.parse(calls[0]!.init!.body as string)).toEqual({ review_mode: true })
  })

  it('changes nothing when the server refuses', async () => {
    const { fn } = mockFetch({ 'PATCH /api/sessions/s1': () => json({ detail: 'Only the owner' }, 403) })
    vi.stubGlobal('fetch', fn)
    const onChanged = vi.fn()
    renderWithClient(<ReviewModeSwitch sessionId="s1" on onChanged={onChanged} />)
    await userEvent.setup().click(screen.getByRole('switch', { name: 'Review mode' }))
    await waitFor(() => expect(screen.getByRole('switch', { name: 'Review mode' })).not.toBeDisabled())
    expect(onChanged).not.toHaveBeenCalled()
  })
})
