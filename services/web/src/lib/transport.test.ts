import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FakeSocket } from '@/testing/fake-socket'
import type { ServerFrame } from './protocol'
import { SocketTransport, type ConnectionState, type TransportOptions } from './transport'

const flush = () => vi.advanceTimersByTimeAsync(0)

/** A transport with a recording owner: no tree, no session socket. */
function makeTransport(overrides: Partial<TransportOptions> = {}) {
  const seen = { frames: [] as ServerFrame[], states: [] as ConnectionState[], linkLost: 0, authFailed: 0 }
  const transport = new SocketTransport(
    {
      url: 'ws://test/ws/session',
      getToken: async () => 'token',
      WebSocketImpl: FakeSocket,
      random: () => 1,
      ...overrides,
    },
    {
      initData: () => ({ session_id: 's1', last_seq: 9 }),
      onFrame: (f) => seen.frames.push(f),
      onState: (s) => seen.states.push(s),
      onLinkLost: () => seen.linkLost++,
      onAuthFailed: () => seen.authFailed++,
    },
  )
  return { transport, seen }
}

/** Time until the next socket is created, in steps of 250 ms. */
async function waitForNextSocket(): Promise<number> {
  const count = FakeSocket.instances.length
  let waited = 0
  while (FakeSocket.instances.length === count) {
    await vi.advanceTimersByTimeAsync(250)
    waited += 250
  }
  return waited
}

beforeEach(() => {
  vi.useFakeTimers()
  FakeSocket.reset()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('SocketTransport', () => {
  it("opens with init_session carrying the token and the owner's data, and hands frames over", async () => {
    const { transport, seen } = makeTransport()
    transport.start()
    await flush()
    const sock = FakeSocket.last
    sock.open()
    expect(sock.sent).toEqual([{ type: 'init_session', data: { token: 'token', session_id: 's1', last_seq: 9 }, id: expect.any(String) }])
    sock.receive({ type: 'pong', data: {} })
    sock.onmessage?.({ data: 'not json' })
    expect(seen.frames).toEqual([{ type: 'pong', data: {} }])
  })

  it('caps the reconnect delay at 10 s', async () => {
    const { transport } = makeTransport()
    transport.start()
    await flush()
    const delays: number[] = []
    for (let i = 0; i < 7; i++) {
      FakeSocket.last.serverClose(1006)
      delays.push(await waitForNextSocket())
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
  })

  it('reconnectNow ends a backoff wait at once, and does nothing when not waiting', async () => {
    const { transport, seen } = makeTransport()
    transport.start()
    await flush()
    FakeSocket.last.open()
    transport.markReady()
    transport.reconnectNow() // connected: nothing to skip
    await flush()
    expect(FakeSocket.instances).toHaveLength(1)
    FakeSocket.last.serverClose(1006)
    expect(seen.states.at(-1)).toBe('reconnecting')
    expect(seen.linkLost).toBe(1)
    transport.reconnectNow()
    await flush()
    expect(FakeSocket.instances).toHaveLength(2)
  })

  it('queues until markReady (oldest dropped past maxQueue), then flushes in order', async () => {
    const { transport } = makeTransport({ maxQueue: 2 })
    transport.start()
    await flush()
    const sock = FakeSocket.last
    sock.open()
    for (const n of [1, 2, 3]) transport.send(JSON.stringify({ type: 'user_prompt', data: { prompt: `p${n}` } }))
    expect(transport.queuedCount).toBe(2)
    expect(sock.sentOfType('user_prompt')).toHaveLength(0)
    transport.markReady()
    expect(sock.sentOfType('user_prompt').map((f) => f.data.prompt)).toEqual(['p2', 'p3'])
    transport.send(JSON.stringify({ type: 'user_prompt', data: { prompt: 'p4' } }))
    expect(sock.sentOfType('user_prompt')).toHaveLength(3)
  })

  it('sendNow never queues: nothing is sent without an open link', async () => {
    const { transport } = makeTransport()
    transport.sendNow({ type: 'resync', data: {} })
    expect(transport.queuedCount).toBe(0)
    transport.start()
    await flush()
    FakeSocket.last.open()
    transport.sendNow({ type: 'resync', data: {} })
    expect(FakeSocket.last.sentOfType('resync')).toHaveLength(1)
  })

  it('goes offline for auth when no token is given', async () => {
    const { transport, seen } = makeTransport({ getToken: async () => null })
    transport.start()
    await flush()
    expect(FakeSocket.instances).toHaveLength(0)
    expect(seen.states.at(-1)).toBe('offline')
    expect(seen.authFailed).toBe(1)
  })
})
