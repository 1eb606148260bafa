/**
 * Who else is in the session and what they may do: the caller's role, the
 * owner, review mode, the people here (`presence`) and the open proposals.
 * Pure: no React, no socket. Driven by server frames (docs/protocol.md §15).
 */
import type { PresenceUser, ProposalData, Role, ServerFrame } from '@/lib/protocol'

export interface CollabState {
  role: Role
  owner: string | null
  reviewMode: boolean
  /** Everyone attached to the session (the caller included), from the latest `presence`. */
  users: PresenceUser[]
  /** Open proposals, oldest first. */
  proposals: ProposalData[]
}

export type CollabAction =
  | { type: 'reset' }
  | { type: 'frame'; frame: ServerFrame }
  /** The owner changed review mode (PATCH answered); every tab also gets `session_updated`. */
  | { type: 'review_mode'; on: boolean }

export const initialCollabState: CollabState = {
  role: 'owner',
  owner: null,
  reviewMode: false,
  users: [],
  proposals: [],
}

export function collabReducer(state: CollabState, action: CollabAction): CollabState {
  switch (action.type) {
    case 'reset':
      return initialCollabState
    case 'review_mode':
      return { ...state, reviewMode: action.on }
    case 'frame':
      return onFrame(state, action.frame)
  }
}

function onFrame(state: CollabState, frame: ServerFrame): CollabState {
  switch (frame.type) {
    case 'session_ready': {
      const d = frame.data
      return {
        ...state,
        role: d.role ?? 'owner',
        owner: d.owner ?? null,
        reviewMode: d.review_mode === true,
        proposals: (d.proposals ?? []).filter((p) => p.status === 'open'),
      }
    }
    case 'presence':
      return { ...state, users: Array.isArray(frame.data.users) ? frame.data.users : [] }
    case 'proposal': {
      const p = frame.data.proposal
      if (!p || p.status !== 'open') return state
      return { ...state, proposals: [...state.proposals.filter((q) => q.id !== p.id), p] }
    }
    case 'proposal_resolved':
      return { ...state, proposals: state.proposals.filter((p) => p.id !== frame.data.proposal_id) }
    case 'session_updated':
      // Review mode turned on or off (or the title changed) while this tab is open.
      return typeof frame.data.review_mode === 'boolean' ? { ...state, reviewMode: frame.data.review_mode } : state
    default:
      return state
  }
}

/** Everyone but `me`, in presence order. */
export function others(users: PresenceUser[], me: string | null | undefined): PresenceUser[] {
  return users.filter((u) => u.username !== me)
}

/** "alice is typing…", "alice and bob are typing…", "3 people are typing…", or null. */
export function typingText(users: PresenceUser[], me: string | null | undefined): string | null {
  const names = others(users, me)
    .filter((u) => u.typing)
    .map((u) => u.username)
  if (names.length === 0) return null
  if (names.length === 1) return `${names[0]} is typing…`
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`
  return `${names.length} people are typing…`
}

/** Ring colours for other people's selections (Tailwind-independent: inline styles). */
const PALETTE = ['#e11d48', '#2563eb', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c']

/** A stable colour per username. */
export function colorFor(username: string): string {
  let h = 0
  for (let i = 0; i < username.length; i++) h = (h * 31 + username.charCodeAt(i)) | 0
  return PALETTE[Math.abs(h) % PALETTE.length]!
}

export interface Selector {
  username: string
  color: string
}

/** Node id → the other people who have it selected (for rings on tree rows). */
export function selectionsOf(users: PresenceUser[], me: string | null | undefined): Map<string, Selector[]> {
  const map = new Map<string, Selector[]>()
  for (const u of others(users, me)) {
    if (!u.selected) continue
    const list = map.get(u.selected) ?? []
    list.push({ username: u.username, color: colorFor(u.username) })
    map.set(u.selected, list)
  }
  return map
}

/** Whether a role may change the tree, prompt, undo or decide proposals. */
export function canEdit(role: Role): boolean {
  return role !== 'viewer'
}
