import { describe, expect, it } from 'vitest'
import { addUpdate, ready } from '@/testing/fake-socket'
import type { ClientFrame, ServerFrame } from './protocol'
import { DEFAULT_LIMITS } from './tree-engine'
import { initialSyncState, TreeSync, type SyncEvent, type TreeSyncState } from './tree-sync'

/** A tree sync with a recording host: no socket at all. */
function makeSync(sessionId: string | null = null) {
  const sent: ClientFrame[] = []
  const events: SyncEvent[] = []
  let state: TreeSyncState = initialSyncState(sessionId)
  const sync = new TreeSync(sessionId, {
    sendNow: (f) => sent.push(f),
    emit: (e) => events.push(e),
    changed: (patch) => (state = { ...state, ...patch }),
  })
  const receive = (frame: Record<string, unknown>) => sync.handleFrame(frame as unknown as ServerFrame)
  return { sync, sent, events, receive, state: () => state }
}

/** A chain root → d1 → … → d{depth-1}: `depth` levels. */
function chain(depth: number) {
  let node: Record<string, unknown> = { id: `d${depth - 1}`, value: 'leaf', children: [] }
  for (let i = depth - 2; i >= 1; i--) node = { id: `d${i}`, value: 'v', children: [node] }
  return { id: 'root', value: 'Root', children: depth > 1 ? [node] : [] }
}
const chainPath = (depth: number) => ['/root', ...Array.from({ length: depth - 1 }, (_, i) => `d${i + 1}`)].join('/')
const limitsWith = (patch: Record<string, number>) => ({ ...DEFAULT_LIMITS, ...patch })

describe('TreeSync', () => {
  it('takes tree, rev, seq, protocol version and limits from session_ready', () => {
    const { sync, receive, state } = makeSync()
    const frame = ready('s1', 3, 8)
    receive({ ...frame, data: { ...frame.data, protocol_version: 1, limits: limitsWith({ max_depth: 80 }) } })
    expect(state()).toMatchObject({ sessionId: 's1', ready: true, rev: 3, protocolVersion: 1 })
    expect(state().limits.max_depth).toBe(80)
    expect(sync.lastSeenSeq).toBe(8)
    expect(sync.initData()).toEqual({ session_id: 's1', last_seq: 8 })
  })

  it("applies a delta deeper than the default limit when the server's limit allows it", () => {
    const { receive, state, sent } = makeSync()
    const frame = ready('s1', 0, 0, chain(64))
    receive({ ...frame, data: { ...frame.data, limits: limitsWith({ max_depth: 100 }) } })
    const deeper = { action: 'add', path: `${chainPath(64)}/children`, node: { id: 'deep', value: 'Deep', children: [] } }
    receive({ type: 'tree_update', data: { delta: deeper, rev: 1, origin: 'assistant' } })
    expect(sent).toEqual([]) // no resync: the delta applied
    expect(state()).toMatchObject({ rev: 1, lastChange: { ids: ['deep'] } })
  })

  it("checks edits against the server's limits, not the defaults", () => {
    const { sync, receive } = makeSync()
    const frame = ready('s1', 0, 0, chain(3))
    receive({ ...frame, data: { ...frame.data, limits: limitsWith({ max_depth: 3, max_value_chars: 5 }) } })
    const add = (value: string, path: string) => ({ action: 'add', path: `${path}/children`, node: { id: 'x', value, children: [] } })
    expect(sync.validate(add('ok', chainPath(2)))).toBeNull()
    expect(sync.validate(add('ok', chainPath(3)))).toMatch(/exceed a depth of 3/)
    expect(sync.validate(add('toolong', chainPath(2)))).toMatch(/longer than 5 characters/)
  })

  it('falls back to the default limits for a server that sends none', () => {
    const { receive, state } = makeSync()
    receive(ready('s1'))
    expect(state()).toMatchObject({ limits: DEFAULT_LIMITS, protocolVersion: null })
  })

  it('asks one resync on a gap, ignores updates until the snapshot, then applies again', () => {
    const { receive, sent, events, state } = makeSync()
    receive(ready('s1', 1))
    receive(addUpdate('x', 'X', 3))
    receive(addUpdate('y', 'Y', 4))
    expect(sent).toEqual([{ type: 'resync', data: {} }])
    expect(events).toEqual([{ type: 'resynced', reason: 'gap' }])
    receive({ type: 'tree_snapshot', data: { tree: { id: 'root', value: 'Root', children: [] }, rev: 4 } })
    receive(addUpdate('z', 'Z', 5))
    expect(state().rev).toBe(5)
  })

  it('resyncs when its own tree_op is refused as stale, not for anyone else', () => {
    const { sync, receive, sent } = makeSync()
    receive(ready('s1'))
    receive({ type: 'error', data: {}, id: 'someone', error: { code: 409, message: 'conflict' } })
    expect(sent).toEqual([])
    sync.trackOp('mine')
    receive({ type: 'error', data: {}, id: 'mine', error: { code: 404, message: 'gone' } })
    expect(sent).toEqual([{ type: 'resync', data: {} }])
  })

  it('reports an error before session_ready as session_error, and forgets all on switchTo', () => {
    const { sync, receive, events, state } = makeSync('s1')
    receive({ type: 'error', data: {}, error: { code: 404, message: 'unknown session' } })
    expect(events).toEqual([{ type: 'session_error', code: 404, message: 'unknown session', sessionId: 's1' }])
    receive(ready('s1', 2, 5))
    sync.switchTo('s2')
    expect(state()).toMatchObject({ sessionId: 's2', ready: false, tree: null, rev: 0 })
    expect(sync.initData()).toEqual({ session_id: 's2' })
  })
})
