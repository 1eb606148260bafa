import { describe, expect, it } from 'vitest'
import type { PresenceUser, ProposalData, ServerFrame } from '@/lib/protocol'
import { collabReducer, initialCollabState, selectionsOf, typingText } from './collab-reducer'

const user = (username: string, extra: Partial<PresenceUser> = {}): PresenceUser => ({
  username,
  role: 'editor',
  tabs: 1,
  selected: null,
  typing: false,
  ...extra,
})

const proposal = (id: string): ProposalData => ({
  id,
  base_rev: 3,
  author: { username: 'eddie', via: 'assistant' },
  summary: "Add 'A'",
  deltas: [{ action: 'add', path: '/root/children', node: { id: 'n-a', value: 'A', children: [] } }],
  status: 'open',
})

const frame = (f: unknown) => ({ type: 'frame' as const, frame: f as ServerFrame })

describe('collabReducer', () => {
  it('takes role, owner, review mode and open proposals from session_ready', () => {
    const s = collabReducer(
      initialCollabState,
      frame({
        type: 'session_ready',
        data: { session_id: 's', role: 'viewer', owner: 'olive', review_mode: true, proposals: [proposal('p1')] },
      }),
    )
    expect(s).toMatchObject({ role: 'viewer', owner: 'olive', reviewMode: true })
    expect(s.proposals.map((p) => p.id)).toEqual(['p1'])
  })

  it('adds a proposal once and drops it when resolved', () => {
    let s = collabReducer(initialCollabState, frame({ type: 'proposal', data: { proposal: proposal('p1') } }))
    s = collabReducer(s, frame({ type: 'proposal', data: { proposal: proposal('p1') } }))
    s = collabReducer(s, frame({ type: 'proposal', data: { proposal: proposal('p2') } }))
    expect(s.proposals.map((p) => p.id)).toEqual(['p1', 'p2'])
    s = collabReducer(
      s,
      frame({ type: 'proposal_resolved', data: { proposal_id: 'p1', accepted: [0], rejected: [], conflicts: [] } }),
    )
    expect(s.proposals.map((p) => p.id)).toEqual(['p2'])
  })

  it('follows review mode live from session_updated', () => {
    let s = collabReducer(
      initialCollabState,
      frame({ type: 'session_updated', data: { title: 'Plan', review_mode: true } }),
    )
    expect(s.reviewMode).toBe(true)
    s = collabReducer(s, frame({ type: 'session_updated', data: { title: 'Plan', review_mode: false } }))
    expect(s.reviewMode).toBe(false)
    // a malformed frame changes nothing
    expect(collabReducer(s, frame({ type: 'session_updated', data: { title: 'X' } }))).toBe(s)
  })

  it('replaces the people here with each presence frame', () => {
    const s = collabReducer(initialCollabState, frame({ type: 'presence', data: { users: [user('a'), user('b')] } }))
    expect(s.users.map((u) => u.username)).toEqual(['a', 'b'])
    expect(collabReducer(s, { type: 'review_mode', on: true }).reviewMode).toBe(true)
    expect(collabReducer(s, { type: 'reset' })).toEqual(initialCollabState)
  })
})

describe('typingText', () => {
  it('names who else is typing', () => {
    expect(typingText([user('me', { typing: true })], 'me')).toBeNull()
    expect(typingText([user('me'), user('ann', { typing: true })], 'me')).toBe('ann is typing…')
    expect(typingText([user('ann', { typing: true }), user('bob', { typing: true })], 'me')).toBe(
      'ann and bob are typing…',
    )
    expect(typingText(['a', 'b', 'c'].map((n) => user(n, { typing: true })), 'me')).toBe('3 people are typing…')
  })
})

describe('selectionsOf', () => {
  it('maps each node to the others who selected it, with a colour each', () => {
    const map = selectionsOf(
      [user('me', { selected: 'n1' }), user('ann', { selected: 'n1' }), user('bob', { selected: 'n2' }), user('cy')],
      'me',
    )
    expect([...map.keys()].sort()).toEqual(['n1', 'n2'])
    expect(map.get('n1')!.map((s) => s.username)).toEqual(['ann'])
    expect(map.get('n2')![0]!.color).toMatch(/^#[0-9a-f]{6}$/)
  })
})
