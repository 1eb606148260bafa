import { describe, expect, it } from 'vitest'
import type { ServerFrame } from '@/lib/protocol'
import { chatReducer, initialChatState, type ChatState } from './chat-reducer'

const frame = (f: Record<string, unknown>) => ({ type: 'frame' as const, frame: f as unknown as ServerFrame })
const texts = (s: ChatState) => s.messages.map((m) => [m.role, m.text, m.pending === true])

describe('chatReducer: a prompt sent while disconnected', () => {
  const offline = chatReducer(initialChatState, { type: 'prompt_sent', id: 'p1', text: 'add a node', queued: true })

  it('shows as pending at once', () => {
    expect(texts(offline)).toEqual([['user', 'add a node', true]])
  })

  it('stays in the chat, after the history, when the reconnect brings chat_history', () => {
    const back = chatReducer(
      offline,
      frame({ type: 'chat_history', data: { messages: [{ role: 'user', content: 'earlier' }, { role: 'assistant', content: 'done' }] } }),
    )
    expect(texts(back)).toEqual([
      ['user', 'earlier', false],
      ['assistant', 'done', false],
      ['user', 'add a node', true],
    ])
    expect(back.busy).toBe(true)
  })

  it('is no longer pending once its echo arrives, and is not shown twice', () => {
    const echoed = chatReducer(offline, frame({ type: 'chat_message', id: 'p1', data: { role: 'user', content: 'add a node' } }))
    expect(texts(echoed)).toEqual([['user', 'add a node', false]])
  })

  it('shows the error when the server refuses it', () => {
    const refused = chatReducer(offline, frame({ type: 'error', id: 'p1', data: {}, error: { code: 429, message: 'slow down' } }))
    expect(refused.messages[0]).toMatchObject({ pending: undefined, error: 'slow down' })
  })

  it('a prompt sent while connected is not pending and is replaced by the history as before', () => {
    const online = chatReducer(initialChatState, { type: 'prompt_sent', id: 'p2', text: 'hi' })
    expect(online.messages[0]!.pending).toBeUndefined()
    expect(texts(chatReducer(online, frame({ type: 'chat_history', data: { messages: [] } })))).toEqual([])
  })
})

describe('outcomeText', () => {
  it('words every kind of decision', async () => {
    const { outcomeText } = await import('./chat-reducer')
    const base = { proposal_id: 'p', decided_by: 'olive', conflicts: [] }
    expect(outcomeText({ ...base, accepted: [0, 1], rejected: [] })).toBe('Accepted by olive: all 2 changes')
    expect(outcomeText({ ...base, accepted: [], rejected: [0, 1] })).toBe('Rejected by olive')
    expect(outcomeText({ ...base, accepted: [1], rejected: [0] })).toBe('Accepted 1 of 2 changes by olive; 1 rejected')
  })

  it('adds a proposal listed again by session_ready only once', () => {
    const p = { id: 'p1', base_rev: 0, author: { username: 'e', via: 'assistant' }, summary: 'S', deltas: [], status: 'open' }
    let s = chatReducer(initialChatState, frame({ type: 'proposal', data: { proposal: p } }))
    s = chatReducer(s, frame({ type: 'session_ready', data: { session_id: 's', proposals: [p] } }))
    expect(s.messages.filter((m) => m.proposal?.id === 'p1')).toHaveLength(1)
  })
})

describe('chatReducer: message authors', () => {
  it('keeps a well-formed author and drops a malformed one (the message stays)', async () => {
    const { hasOtherAuthors } = await import('./chat-reducer')
    const s = chatReducer(
      initialChatState,
      frame({
        type: 'chat_history',
        data: {
          messages: [
            { role: 'user', content: 'a', author: { username: 'olive', via: 'user' } },
            { role: 'user', content: 'b', author: { username: 7 } },
            { role: 'user', content: 'c', author: 'eddie' },
          ],
        },
      }),
    )
    expect(s.messages.map((m) => [m.text, m.author])).toEqual([
      ['a', { username: 'olive', via: 'user' }],
      ['b', undefined],
      ['c', undefined],
    ])
    expect(hasOtherAuthors(s.messages, 'olive')).toBe(false)
    expect(hasOtherAuthors(s.messages, 'eddie')).toBe(true)
  })
})
