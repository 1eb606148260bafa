import { describe, expect, it, vi } from 'vitest'
import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { ConnectionBadge } from './connection-badge'

describe('ConnectionBadge', () => {
  it('offers "Reconnect now" while waiting to reconnect', async () => {
    const onReconnect = vi.fn()
    render(<ConnectionBadge state="reconnecting" onReconnect={onReconnect} />)
    expect(screen.getByRole('status', { name: 'Connection status' })).toHaveTextContent('Reconnecting…')
    await userEvent.setup().click(screen.getByRole('button', { name: 'Reconnect now' }))
    expect(onReconnect).toHaveBeenCalledTimes(1)
  })

  it('offers it when offline for want of a token, not when stopped, connecting or connected', () => {
    const onReconnect = vi.fn()
    const { rerender } = render(<ConnectionBadge state="offline" offlineReason="auth" onReconnect={onReconnect} />)
    expect(screen.getByRole('button', { name: 'Reconnect now' })).toBeInTheDocument()
    for (const [state, offlineReason] of [
      ['offline', 'stopped'],
      ['connecting', null],
      ['connected', null],
    ] as const) {
      rerender(<ConnectionBadge state={state} offlineReason={offlineReason} onReconnect={onReconnect} />)
      expect(screen.queryByRole('button', { name: 'Reconnect now' })).not.toBeInTheDocument()
    }
  })
})
