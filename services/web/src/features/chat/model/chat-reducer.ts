/**
 * The chat column's state, driven by server frames and by what the user sends.
 * Pure: no React, no socket.
 */
import {
  chatMessageText,
  reasoningText,
  type AssistantInfo,
  type HistoryMessage,
  type ProposalData,
  type ProposalResolvedData,
  type ServerFrame,
} from '@/lib/protocol'

export interface ChatMessage {
  key: string
  role: 'user' | 'assistant'
  text: string
  /** Reasoning steps of the assistant's turn. */
  reasoning: string[]
  /** Assistant text still arriving. */
  streaming: boolean
  cancelled?: boolean
  /** The answer was cut short: at the model's output limit, or by the provider's content filter. */
  truncated?: Truncation
  /** The turn (assistant) or the prompt (user) failed. */
  error?: string
  /** A prompt of ours not yet answered by any frame of its turn. */
  awaiting?: boolean
  /** A prompt of ours sent while disconnected: queued until the connection is back (then echoed). */
  pending?: boolean
  /** Correlation id of a prompt we sent. */
  clientId?: string
  /** When it was written (ISO-8601): stored, or the frame's timestamp, or the moment we sent it. */
  at?: string
  /** A proposal of the assistant (review mode): the message shows its summary, then its outcome. */
  proposal?: ProposalNote
  /** Who wrote it, as the server says (absent for messages stored before authors were, and our own unsent ones). */
  author?: Author
}

/** A message's author: the user, and how it came (`user`, `agent` with the token's `name`, `assistant`). */
export interface Author {
  username: string
  via: string
  name?: string
}

/** The `author` of a chat_message or history entry, when it is well formed. */
export function authorOf(raw: unknown): Author | undefined {
  if (!raw || typeof raw !== 'object') return undefined
  const { username, via, name } = raw as { username?: unknown; via?: unknown; name?: unknown }
  if (typeof username !== 'string' || typeof via !== 'string') return undefined
  return typeof name === 'string' ? { username, via, name } : { username, via }
}

/**
 * The name a shared session's chat shows on a prompt: "You" for one's own (sent from this tab, or
 * written by `me`), else the author's username; "… via <token>" for an outside agent's. Null when
 * unknown (a message stored before authors were) and for the assistant's answers.
 */
export function authorLabel(m: ChatMessage, me: string | null): string | null {
  if (m.role !== 'user') return null
  if (m.clientId !== undefined) return 'You'
  if (!m.author) return null
  const who = me !== null && m.author.username === me ? 'You' : m.author.username
  return m.author.via === 'agent' && m.author.name ? `${who} via ${m.author.name}` : who
}

/** Whether someone other than `me` wrote a prompt in this chat (then it is a shared chat, whoever is a member now). */
export function hasOtherAuthors(messages: readonly ChatMessage[], me: string | null): boolean {
  return messages.some((m) => m.role === 'user' && m.author !== undefined && m.author.username !== me)
}

export interface ProposalNote {
  id: string
  author: string
  summary: string
  count: number
  /** Set by `proposal_resolved`: "Accepted 2 of 3 changes (alice)…". */
  outcome?: string
}

export type Truncation = 'length' | 'content_filter'

/** The `truncated` field of a final answer or a history message, when it holds a known reason. */
export function truncationOf(value: unknown): Truncation | undefined {
  return value === 'length' || value === 'content_filter' ? value : undefined
}

export interface DebugEntry {
  key: string
  at: string
  data: Record<string, unknown>
}

export interface ChatState {
  messages: ChatMessage[]
  /** A turn is running (ours or another tab's). */
  busy: boolean
  debug: DebugEntry[]
  /** Correlation ids of prompts we sent (their `chat_message` echo is not shown twice). */
  ownIds: string[]
  /** The assistant the server named in `session_ready` (null until then, or from an older server). */
  assistant: AssistantInfo | null
}

export type ChatAction =
  | { type: 'reset' }
  /** `queued`: the socket was not connected, the prompt waits in its queue. */
  | { type: 'prompt_sent'; id: string; text: string; queued?: boolean; at?: string }
  /** The user gave up waiting for the end of a cancelled turn. */
  | { type: 'turn_abandoned' }
  | { type: 'frame'; frame: ServerFrame }

export const initialChatState: ChatState = { messages: [], busy: false, debug: [], ownIds: [], assistant: null }

const MAX_DEBUG = 100
const TURN_ERROR_CODES = new Set([500, 502, 504])
let keyCounter = 0
const nextKey = () => `m${++keyCounter}`

function readAssistant(raw: unknown): AssistantInfo | null {
  if (!raw || typeof raw !== 'object') return null
  const { name, examples } = raw as { name?: unknown; examples?: unknown }
  if (typeof name !== 'string') return null
  const lines = Array.isArray(examples) ? examples.filter((e): e is string => typeof e === 'string') : []
  return { name, examples: lines }
}

function fromHistory(m: HistoryMessage): ChatMessage | null {
  if (!m || typeof m !== 'object') return null
  const role = m.role === 'assistant' ? 'assistant' : m.role === 'user' ? 'user' : null
  if (!role) return null
  const text = typeof m.content === 'string' ? m.content : ''
  const error = typeof m.error?.message === 'string' ? m.error.message : undefined
  const reasoning = Array.isArray(m.reasoning) ? m.reasoning.filter((s): s is string => typeof s === 'string') : []
  return {
    key: nextKey(),
    role,
    text,
    reasoning,
    streaming: false,
    at: typeof m.created_at === 'string' ? m.created_at : undefined,
    cancelled: m.cancelled === true ? true : undefined,
    truncated: truncationOf(m.truncated),
    error,
    author: authorOf(m.author),
  }
}

/** The index of the assistant message of the running turn, creating it when needed. */
function withTurnMessage(messages: ChatMessage[], at?: string): { messages: ChatMessage[]; index: number } {
  const last = messages[messages.length - 1]
  const settled = messages.map((m) => (m.awaiting ? { ...m, awaiting: false } : m))
  if (last && last.role === 'assistant' && last.streaming) return { messages: settled, index: settled.length - 1 }
  const fresh: ChatMessage = { key: nextKey(), role: 'assistant', text: '', reasoning: [], streaming: true, at }
  return { messages: [...settled, fresh], index: settled.length }
}

function patchAt(messages: ChatMessage[], index: number, patch: Partial<ChatMessage>): ChatMessage[] {
  const out = messages.slice()
  out[index] = { ...out[index]!, ...patch }
  return out
}

function proposalMessage(note: ProposalNote): ChatMessage {
  return { key: nextKey(), role: 'assistant', text: '', reasoning: [], streaming: false, proposal: note }
}

/** The proposal's message: added once (a replay or a session_ready listing it again changes nothing). */
function withProposal(state: ChatState, p: ProposalData | undefined): ChatState {
  if (!p || state.messages.some((m) => m.proposal?.id === p.id)) return state
  const note: ProposalNote = { id: p.id, author: p.author.username, summary: p.summary, count: p.deltas.length }
  // It comes before the turn's final answer: the running answer stays last (it is still being written).
  const last = state.messages[state.messages.length - 1]
  const at = last && last.role === 'assistant' && last.streaming ? state.messages.length - 1 : state.messages.length
  const messages = [...state.messages.slice(0, at), proposalMessage(note), ...state.messages.slice(at)]
  return { ...state, messages }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** "Accepted 2 of 3 changes (by alice); 1 rejected; 1 conflict: …". */
export function outcomeText(d: ProposalResolvedData): string {
  const total = d.accepted.length + d.rejected.length + d.conflicts.length
  const by = d.decided_by ? ` by ${d.decided_by}` : ''
  const head =
    d.accepted.length === 0 && d.conflicts.length === 0
      ? `Rejected${by}`
      : d.rejected.length === 0 && d.conflicts.length === 0
        ? `Accepted${by}: all ${plural(total, 'change')}`
        : `Accepted ${d.accepted.length} of ${plural(total, 'change')}${by}`
  const parts = [head]
  if (d.rejected.length && d.accepted.length + d.conflicts.length > 0) parts.push(`${d.rejected.length} rejected`)
  if (d.conflicts.length)
    parts.push(`${plural(d.conflicts.length, 'conflict')}: ${d.conflicts.map((c) => c.message).join('; ')}`)
  return parts.join('; ')
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'reset':
      return initialChatState
    case 'prompt_sent':
      return {
        ...state,
        busy: true,
        ownIds: [...state.ownIds.slice(-50), action.id],
        messages: [
          ...state.messages,
          {
            key: nextKey(),
            role: 'user',
            text: action.text,
            reasoning: [],
            streaming: false,
            awaiting: true,
            pending: action.queued ? true : undefined,
            clientId: action.id,
            at: action.at ?? new Date().toISOString(),
          },
        ],
      }
    case 'turn_abandoned':
      return {
        ...state,
        busy: false,
        messages: state.messages.map((m) =>
          m.streaming || m.awaiting ? { ...m, streaming: false, awaiting: false } : m,
        ),
      }
    case 'frame':
      return onFrame(state, action.frame)
  }
}

function onFrame(state: ChatState, frame: ServerFrame): ChatState {
  switch (frame.type) {
    case 'session_ready': {
      // A (re)connection: a turn still running shows itself by its next frames.
      let next: ChatState = {
        ...state,
        busy: state.messages.some((m) => m.awaiting),
        assistant: readAssistant(frame.data.assistant),
      }
      for (const p of frame.data.proposals ?? []) next = withProposal(next, p)
      return next
    }
    case 'chat_history': {
      const raw = Array.isArray(frame.data.messages) ? frame.data.messages : []
      const messages = raw.map(fromHistory).filter((m): m is ChatMessage => m !== null)
      // Prompts still queued go out after this history was taken: they stay, after it.
      const queued = state.messages.filter((m) => m.pending)
      return { ...state, messages: [...messages, ...queued], busy: queued.length > 0 }
    }
    case 'chat_message': {
      if (frame.id && state.ownIds.includes(frame.id)) {
        // Our own prompt's echo: it reached the session.
        if (!state.messages.some((m) => m.pending && m.clientId === frame.id)) return state
        const messages = state.messages.map((m) => (m.clientId === frame.id ? { ...m, pending: undefined } : m))
        return { ...state, messages }
      }
      const text = chatMessageText(frame.data)
      const role = frame.data.role === 'assistant' ? 'assistant' : 'user'
      const message: ChatMessage = {
        key: nextKey(),
        role,
        text,
        reasoning: [],
        streaming: false,
        at: frame.timestamp ?? undefined,
        author: authorOf(frame.data.author),
      }
      return { ...state, busy: role === 'user' ? true : state.busy, messages: [...state.messages, message] }
    }
    case 'reasoning': {
      const text = reasoningText(frame.data)
      if (!text) return state
      const { messages, index } = withTurnMessage(state.messages, frame.timestamp ?? undefined)
      const current = messages[index]!
      return { ...state, busy: true, messages: patchAt(messages, index, { reasoning: [...current.reasoning, text] }) }
    }
    case 'assistant_response': {
      const d = frame.data
      const text = typeof d.text === 'string' ? d.text : ''
      if (d.chunk === true) {
        const { messages, index } = withTurnMessage(state.messages, frame.timestamp ?? undefined)
        return { ...state, busy: true, messages: patchAt(messages, index, { text: messages[index]!.text + text }) }
      }
      // The final piece: the full text replaces whatever streamed.
      const { messages, index } = withTurnMessage(state.messages, frame.timestamp ?? undefined)
      return {
        ...state,
        busy: false,
        messages: patchAt(messages, index, {
          text: text || messages[index]!.text,
          streaming: false,
          cancelled: d.cancelled === true ? true : undefined,
          truncated: truncationOf(d.truncated),
        }),
      }
    }
    case 'proposal':
      return withProposal(state, frame.data.proposal)
    case 'proposal_resolved': {
      const d = frame.data
      const outcome = outcomeText(d)
      if (!state.messages.some((m) => m.proposal?.id === d.proposal_id)) {
        // Proposed before this tab's history began: the outcome stands alone.
        const note: ProposalNote = { id: d.proposal_id, author: '', summary: '', count: 0, outcome }
        return { ...state, messages: [...state.messages, proposalMessage(note)] }
      }
      const messages = state.messages.map((m) =>
        m.proposal?.id === d.proposal_id ? { ...m, proposal: { ...m.proposal, outcome } } : m,
      )
      return { ...state, messages }
    }
    case 'debug': {
      const entry: DebugEntry = {
        key: nextKey(),
        at: frame.timestamp ?? new Date().toISOString(),
        data: frame.data,
      }
      return { ...state, debug: [...state.debug.slice(-(MAX_DEBUG - 1)), entry] }
    }
    case 'error': {
      const code = frame.error?.code ?? 500
      const message = frame.error?.message ?? 'Something went wrong'
      // A turn ends with exactly one final answer or one 500/502/504 error (carrying the prompt's id).
      const endsTurn = TURN_ERROR_CODES.has(code) && (state.busy || state.messages.some((m) => m.streaming))
      if (!endsTurn && frame.id && state.ownIds.includes(frame.id)) {
        // Our prompt was refused (busy, rate limited, invalid...).
        const messages = state.messages.map((m) =>
          m.clientId === frame.id ? { ...m, awaiting: false, pending: undefined, error: message } : m,
        )
        const running = messages.some((m) => m.streaming)
        return { ...state, messages, busy: running }
      }
      if (endsTurn) {
        const last = state.messages[state.messages.length - 1]
        const messages =
          last && last.role === 'assistant' && last.streaming
            ? patchAt(state.messages, state.messages.length - 1, { streaming: false, error: message })
            : [
                ...state.messages.map((m) => (m.awaiting ? { ...m, awaiting: false } : m)),
                { key: nextKey(), role: 'assistant' as const, text: '', reasoning: [], streaming: false, error: message },
              ]
        return { ...state, busy: false, messages }
      }
      return state
    }
    default:
      return state
  }
}

/** The text of the last prompt in the chat (ours or another tab's), for ↑ in an empty input. */
export function lastPrompt(messages: readonly ChatMessage[]): string | null {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === 'user') return messages[i]!.text
  return null
}

/** Characters as the server counts them (code points, not UTF-16 units). */
export function promptLength(text: string): number {
  let n = 0
  for (const _ of text) n++
  return n
}
