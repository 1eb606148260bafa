import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { addUpdate, FakeSocket, ready } from '@/testing/fake-socket'
import { backoffDelay, SessionSocket, type SessionEvent, type SessionSocketOptions } from './ws-client'

const flush = () => vi.advanceTimersByTimeAsync(0)

function makeClient(overrides: Partial<SessionSocketOptions> = {}) {
  const getToken = vi.fn(async ({ force }: { force: boolean }) => (force ? 'fresh-token' : 'token'))
  const events: SessionEvent[] = []
  const client = new SessionSocket({
    url: 'ws://test/ws/session',
    getToken,
    WebSocketImpl: FakeSocket,
    random: () => 0.5,
    ...overrides,
  })
  client.onEvent((e) => events.push(e))
  return { client, getToken: (overrides.getToken as typeof getToken | undefined) ?? getToken, events }
}

/** Start, open the socket and answer init_session. */
async function connect(client: SessionSocket, frame = ready('s1')) {
  client.start()
  await flush()
  const sock = FakeSocket.last
  sock.open()
  sock.receive(frame)
  return sock
}

beforeEach(() => {
  vi.useFakeTimers()
  FakeSocket.reset()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('backoffDelay', () => {
  it('stays within 0.5 s and 10 s (issue 14) with full jitter over an exponential ceiling', () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const lo = backoffDelay(attempt, () => 0)
      const hi = backoffDelay(attempt, () => 1)
      expect(lo).toBe(500)
      expect(hi).toBe(Math.min(10_000, 500 * 2 ** (attempt + 1)))
      const mid = backoffDelay(attempt, () => 0.37)
      expect(mid).toBeGreaterThanOrEqual(500)
      expect(mid).toBeLessThanOrEqual(10_000)
    }
    expect(backoffDelay(50, () => 1)).toBe(10_000)
    expect(backoffDelay(0, () => 0.5)).toBe(750)
  })
})

describe('SessionSocket', () => {
  it('sends init_session first with a token from getToken, then is connected', async () => {
    const { client, getToken } = makeClient()
    expect(client.getSnapshot().state).toBe('connecting')
    const sock = await connect(client)
    expect(sock.url).toBe('ws://test/ws/session')
    expect(getToken).toHaveBeenCalledWith({ force: false })
    expect(sock.sent[0]).toMatchObject({ type: 'init_session', data: { token: 'token' } })
    expect(sock.sent[0]!.data).not.toHaveProperty('session_id')
    const snap = client.getSnapshot()
    expect(snap).toMatchObject({ state: 'connected', sessionId: 's1', ready: true, rev: 0 })
    expect(snap.tree).toEqual({ id: 'root', value: 'Root', children: [] })
  })

  it('reconnects with backoff and resumes with session_id and the highest seq seen', async () => {
    const { client, getToken } = makeClient()
    const sock = await connect(client, ready('s1', 0, 4))
    sock.receive(addUpdate('a', 'A', 1, 5))
    sock.receive({ type: 'pong', data: {}, seq: 3 }) // lower seq does not win
    sock.receive({ type: 'assistant_response', data: { text: 'x', chunk: true }, seq: 7 })
    expect(client.lastSeenSeq).toBe(7)

    sock.serverClose(1006)
    expect(client.getSnapshot().state).toBe('reconnecting')
    expect(FakeSocket.instances).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(749) // random 0.5 → 750 ms for the first attempt
    expect(FakeSocket.instances).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(FakeSocket.instances).toHaveLength(2)
    expect(getToken).toHaveBeenCalledTimes(2) // a fresh token before each connect

    const sock2 = FakeSocket.last
    sock2.open()
    expect(sock2.sent[0]).toEqual(
      expect.objectContaining({ type: 'init_session', data: { token: 'token', session_id: 's1', last_seq: 7 } }),
    )
    // the missed frames follow: replayed tree_updates at or below the ready rev are ignored
    sock2.receive(ready('s1', 2, 9, { id: 'root', value: 'Root', children: [{ id: 'a', value: 'A', children: [] }, { id: 'b', value: 'B', children: [] }] }))
    sock2.receive(addUpdate('b', 'B', 2, 8))
    expect(client.getSnapshot().rev).toBe(2)
    expect(client.getSnapshot().tree!.children.map((c) => c.id)).toEqual(['a', 'b'])
    expect(sock2.sentOfType('resync')).toHaveLength(0)
    expect(client.getSnapshot().state).toBe('connected')
  })

  it('grows the delay exponentially with jitter up to 10 s (issue 14) and resets after session_ready', async () => {
    const { client } = makeClient({ random: () => 1 })
    client.start()
    await flush()
    const delays: number[] = []
    for (let i = 0; i < 8; i++) {
      const count = FakeSocket.instances.length
      FakeSocket.last.serverClose(1006) // never opened
      let waited = 0
      while (FakeSocket.instances.length === count) {
        await vi.advanceTimersByTimeAsync(250)
        waited += 250
      }
      delays.push(waited)
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000])
    // a successful session resets the backoff
    FakeSocket.last.open()
    FakeSocket.last.receive(ready('s1'))
    const count = FakeSocket.instances.length
    FakeSocket.last.serverClose(1006)
    await vi.advanceTimersByTimeAsync(1000)
    expect(FakeSocket.instances.length).toBe(count + 1)
  })

  it('never waits less than 0.5 s', async () => {
    const { client } = makeClient({ random: () => 0 })
    const sock = await connect(client)
    sock.serverClose(1011)
    await vi.advanceTimersByTimeAsync(499)
    expect(FakeSocket.instances).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(FakeSocket.instances).toHaveLength(2)
  })

  it('ignores replayed tree_updates and applies the next rev', async () => {
    const { client } = makeClient()
    const sock = await connect(client, ready('s1', 3))
    sock.receive(addUpdate('old', 'Old', 2))
    sock.receive(addUpdate('old2', 'Old2', 3))
    expect(client.getSnapshot().tree!.children).toHaveLength(0)
    sock.receive(addUpdate('n', 'New', 4))
    expect(client.getSnapshot().rev).toBe(4)
    expect(client.getSnapshot().tree!.children.map((c) => c.value)).toEqual(['New'])
    expect(client.getSnapshot().lastChange).toMatchObject({ ids: ['n'], origin: 'assistant' })
  })

  it('asks resync on a rev gap and replaces the tree from tree_snapshot', async () => {
    const { client, events } = makeClient()
    const sock = await connect(client, ready('s1', 1))
    sock.receive(addUpdate('x', 'X', 3)) // rev 2 is missing
    expect(sock.sentOfType('resync')).toHaveLength(1)
    expect(events).toContainEqual({ type: 'resynced', reason: 'gap' })
    sock.receive(addUpdate('y', 'Y', 4)) // still waiting for the snapshot: no second resync
    expect(sock.sentOfType('resync')).toHaveLength(1)
    expect(client.getSnapshot().rev).toBe(1)
    const tree = { id: 'root', value: 'Root', children: [{ id: 'x', value: 'X', children: [] }, { id: 'y', value: 'Y', children: [] }] }
    sock.receive({ type: 'tree_snapshot', data: { tree, rev: 4 } })
    expect(client.getSnapshot()).toMatchObject({ rev: 4, tree })
    sock.receive(addUpdate('z', 'Z', 5))
    expect(client.getSnapshot().rev).toBe(5)
  })

  it('asks resync when its own tree_op gets 409', async () => {
    const { client } = makeClient()
    const sock = await connect(client, ready('s1', 2))
    const id = client.send('tree_op', { delta: { action: 'remove', path: '/root/gone' }, base_rev: 2 })
    sock.receive({ type: 'error', data: {}, id, error: { code: 409, message: 'conflict' } })
    expect(sock.sentOfType('resync')).toHaveLength(1)
  })

  it('reconnects at once when told the network is back', async () => {
    const { client } = makeClient({ random: () => 1 })
    const sock = await connect(client)
    sock.serverClose(1006)
    client.reconnectNow()
    await flush()
    expect(FakeSocket.instances).toHaveLength(2)
    client.reconnectNow() // not reconnecting any more: nothing happens
    await flush()
    expect(FakeSocket.instances).toHaveLength(2)
  })

  it('pings every 30 s and replaces a connection that stays silent', async () => {
    const { client } = makeClient()
    const sock = await connect(client)
    await vi.advanceTimersByTimeAsync(29_999)
    expect(sock.sentOfType('ping')).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(sock.sentOfType('ping')).toHaveLength(1)
    sock.receive({ type: 'pong', data: {} })
    await vi.advanceTimersByTimeAsync(30_000)
    expect(sock.sentOfType('ping')).toHaveLength(2)
    // no pong this time: at the next tick the link is considered dead
    await vi.advanceTimersByTimeAsync(30_000)
    expect(sock.closedWith).toBe(4000)
    expect(client.getSnapshot().state).toBe('reconnecting')
  })

  it('queues frames sent while not connected and flushes them after session_ready', async () => {
    const { client } = makeClient()
    client.start()
    client.send('user_prompt', { prompt: 'early' })
    await flush()
    const sock = FakeSocket.last
    sock.open()
    expect(sock.sent.map((f) => f.type)).toEqual(['init_session']) // not before the session is ready
    sock.receive(ready('s1'))
    expect(sock.sent.map((f) => f.type)).toEqual(['init_session', 'user_prompt'])
    expect(client.queuedCount).toBe(0)

    sock.serverClose(1006)
    client.send('undo', {})
    client.send('redo', {})
    await vi.advanceTimersByTimeAsync(1000)
    const sock2 = FakeSocket.last
    sock2.open()
    sock2.receive(ready('s1'))
    expect(sock2.sent.map((f) => f.type)).toEqual(['init_session', 'undo', 'redo'])
  })

  it('on 1008 gets a new token once, then goes offline', async () => {
    const { client, getToken, events } = makeClient()
    client.start()
    await flush()
    FakeSocket.last.open()
    FakeSocket.last.serverClose(1008)
    await flush()
    expect(getToken).toHaveBeenLastCalledWith({ force: true })
    expect(FakeSocket.instances).toHaveLength(2)
    FakeSocket.last.open()
    expect(FakeSocket.last.sent[0]!.data).toMatchObject({ token: 'fresh-token' })
    FakeSocket.last.serverClose(1008)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(FakeSocket.instances).toHaveLength(2)
    expect(client.getSnapshot()).toMatchObject({ state: 'offline', offlineReason: 'auth' })
    expect(events).toContainEqual({ type: 'auth_failed' })
  })

  it('on 1008 "access revoked" goes offline at once, without asking for a token again', async () => {
    const { client, getToken, events } = makeClient()
    client.start()
    await flush()
    FakeSocket.last.open()
    FakeSocket.last.receive(ready('s1'))
    FakeSocket.last.serverClose(1008, 'access revoked')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(FakeSocket.instances).toHaveLength(1)
    expect(getToken).toHaveBeenCalledTimes(1)
    expect(client.getSnapshot()).toMatchObject({ state: 'offline', offlineReason: 'revoked' })
    expect(events).toContainEqual({ type: 'access_revoked', sessionId: 's1' })
    expect(events).not.toContainEqual({ type: 'auth_failed' })

    // Leaving for another session connects again.
    client.switchSession(null)
    await flush()
    expect(FakeSocket.instances).toHaveLength(2)
    FakeSocket.last.open()
    expect(FakeSocket.last.sent[0]!.data).not.toHaveProperty('session_id')
  })

  it('goes offline when there is no token (logged out)', async () => {
    const { client } = makeClient({ getToken: vi.fn(async () => null) })
    client.start()
    await flush()
    expect(FakeSocket.instances).toHaveLength(0)
    expect(client.getSnapshot().state).toBe('offline')
  })

  it('reports an init error (unknown session) as session_error', async () => {
    const { client, events } = makeClient({ sessionId: 'nope' })
    client.start()
    await flush()
    FakeSocket.last.open()
    expect(FakeSocket.last.sent[0]!.data).toMatchObject({ session_id: 'nope' })
    FakeSocket.last.receive({ type: 'error', data: {}, error: { code: 404, message: 'unknown session' } })
    expect(events).toContainEqual({ type: 'session_error', code: 404, message: 'unknown session', sessionId: 'nope' })
  })

  it('switches session: closes the old socket and starts fresh without last_seq', async () => {
    const { client } = makeClient()
    const sock = await connect(client, ready('s1', 0, 10))
    client.switchSession('s2')
    expect(sock.closedWith).toBe(1000)
    expect(client.getSnapshot()).toMatchObject({ sessionId: 's2', ready: false, tree: null })
    await flush()
    const sock2 = FakeSocket.last
    expect(sock2).not.toBe(sock)
    sock2.open()
    expect(sock2.sent[0]!.data).toEqual({ token: 'token', session_id: 's2' })
    // late frames of the old socket are ignored
    sock.receive(addUpdate('late', 'Late', 1))
    sock2.receive(ready('s2'))
    expect(client.getSnapshot().tree!.children).toHaveLength(0)
  })

  it('stop() closes and stays offline', async () => {
    const { client } = makeClient()
    const sock = await connect(client)
    client.stop()
    expect(sock.closedWith).toBe(1000)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(FakeSocket.instances).toHaveLength(1)
    expect(client.getSnapshot().state).toBe('offline')
  })
})
