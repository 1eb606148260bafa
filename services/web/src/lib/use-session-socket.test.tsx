import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { act, renderHook } from '@testing-library/react'
import { FakeSocket, ready } from '@/testing/fake-socket'
import { useSessionSnapshot, useSessionSocket } from './use-session-socket'

const flush = () => act(() => vi.advanceTimersByTimeAsync(0))

function setVisibility(state: 'visible' | 'hidden') {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
}

/** The hook, connected to session s1, then dropped: waiting up to 1 s (random 1) to reconnect. */
async function droppedConnection() {
  const view = renderHook(() => {
    const client = useSessionSocket({ getToken: async () => 'token', WebSocketImpl: FakeSocket, random: () => 1 })
    return { client, snapshot: useSessionSnapshot(client) }
  })
  await flush()
  act(() => {
    FakeSocket.last.open()
    FakeSocket.last.receive(ready('s1'))
  })
  act(() => FakeSocket.last.serverClose(1006))
  expect(view.result.current.snapshot.state).toBe('reconnecting')
  return view
}

beforeEach(() => {
  vi.useFakeTimers()
  FakeSocket.reset()
  setVisibility('visible')
})
afterEach(() => {
  vi.useRealTimers()
})

describe('useSessionSocket reconnects at once', () => {
  it("on the browser's online event", async () => {
    await droppedConnection()
    act(() => void window.dispatchEvent(new Event('online')))
    await flush()
    expect(FakeSocket.instances).toHaveLength(2)
  })

  it('when the tab becomes visible, not while it is hidden', async () => {
    await droppedConnection()
    setVisibility('hidden')
    act(() => void document.dispatchEvent(new Event('visibilitychange')))
    await flush()
    expect(FakeSocket.instances).toHaveLength(1)
    setVisibility('visible')
    act(() => void document.dispatchEvent(new Event('visibilitychange')))
    await flush()
    expect(FakeSocket.instances).toHaveLength(2)
  })

  it('through the client\'s "Reconnect now" action', async () => {
    const view = await droppedConnection()
    act(() => view.result.current.client.reconnectNow())
    await flush()
    expect(FakeSocket.instances).toHaveLength(2)
    act(() => {
      FakeSocket.last.open()
      FakeSocket.last.receive(ready('s1'))
    })
    expect(view.result.current.snapshot.state).toBe('connected')
  })

  it('after going offline for want of a token, only when asked', async () => {
    let token: string | null = null
    const view = renderHook(() => {
      const client = useSessionSocket({ getToken: async () => token, WebSocketImpl: FakeSocket })
      return { client, snapshot: useSessionSnapshot(client) }
    })
    await flush()
    expect(view.result.current.snapshot).toMatchObject({ state: 'offline', offlineReason: 'auth' })
    token = 'token'
    act(() => void window.dispatchEvent(new Event('online'))) // automatic wake-ups do not retry a refused login
    await flush()
    expect(FakeSocket.instances).toHaveLength(0)
    act(() => view.result.current.client.reconnectNow())
    await flush()
    expect(FakeSocket.instances).toHaveLength(1)
  })
})
