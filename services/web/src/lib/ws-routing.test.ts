import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FakeSocket, ready } from '@/testing/fake-socket'
import { SessionSocket, sessionSocketUrl } from './ws-client'

// Routing across API replicas: the socket URL names its session (`?session=`) for nginx.
const flush = () => vi.advanceTimersByTimeAsync(0)

function makeClient(sessionId: string | null) {
  return new SessionSocket({
    url: 'ws://test/ws/session',
    sessionId,
    getToken: async () => 'token',
    WebSocketImpl: FakeSocket,
    random: () => 0.5,
  })
}

beforeEach(() => {
  vi.useFakeTimers()
  FakeSocket.reset()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('session routing', () => {
  it('adds ?session= only when the id is known, encoded', () => {
    expect(sessionSocketUrl('wss://h/ws/session', null)).toBe('wss://h/ws/session')
    expect(sessionSocketUrl('wss://h/ws/session', 'a b/c')).toBe('wss://h/ws/session?session=a+b%2Fc')
  })

  it('names the session in the URL, and learns it for reconnects', async () => {
    const client = makeClient(null)
    client.start()
    await flush()
    const first = FakeSocket.last
    expect(first.url).toBe('ws://test/ws/session')
    first.open()
    first.receive(ready('s1'))
    first.serverClose(1012) // the replica handed the session over
    await vi.advanceTimersByTimeAsync(30_000)
    expect(FakeSocket.last).not.toBe(first)
    expect(FakeSocket.last.url).toBe('ws://test/ws/session?session=s1')
  })

  it('reconnects at once when init_session is answered 421 (routed for another session)', async () => {
    const client = makeClient('s2')
    const events: string[] = []
    client.onEvent((e) => events.push(e.type))
    client.start()
    await flush()
    const first = FakeSocket.last
    expect(first.url).toBe('ws://test/ws/session?session=s2')
    first.open()
    first.receive({ type: 'error', data: {}, error: { code: 421, message: 'reconnect with ?session=' } })
    await flush()
    expect(first.closedWith).toBe(1000)
    expect(FakeSocket.instances).toHaveLength(2)
    const second = FakeSocket.last
    expect(second.url).toBe('ws://test/ws/session?session=s2')
    second.open()
    expect(second.sent[0]).toMatchObject({ type: 'init_session', data: { session_id: 's2' } })
    expect(events).not.toContain('session_error')
  })
})
