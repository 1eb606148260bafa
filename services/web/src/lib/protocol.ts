/**
 * TypeScript mirror of the Canopy WebSocket protocol (shared/contract.md).
 *
 * Every frame is one JSON object, the envelope. `type` and `data` are required;
 * `id` is a client correlation id echoed on replies; `seq` is the per-session
 * sequence number the server puts on every frame it broadcasts.
 */

export type Scalar = string | number | boolean | null

/** A tree node. `props` is omitted when empty. */
export interface TreeNode {
  id: string
  value: string
  children: TreeNode[]
  props?: Record<string, Scalar>
}

/** Node ids: the same pattern the server validates. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/

export interface AddDelta {
  action: 'add'
  /** `<parent id path>/children`, e.g. `/root/children` */
  path: string
  node: TreeNode
  index?: number
}

export interface UpdateDelta {
  action: 'update'
  /** `<node id path>`, e.g. `/root/node-7` */
  path: string
  fields: {
    value?: string
    /** Merged into the node's props; a `null` value deletes that key. */
    props?: Record<string, Scalar>
  }
}

export interface RemoveDelta {
  action: 'remove'
  path: string
}

export interface MoveDelta {
  action: 'move'
  path: string
  /** `<new parent id path>/children` */
  to: string
  /** Position among the new parent's children after the node left its old place. */
  index?: number
}

export type Delta = AddDelta | UpdateDelta | RemoveDelta | MoveDelta

export interface ProtocolError {
  code: number
  message: string
}

/** The envelope shared by both directions. */
export interface Envelope<T extends string = string, D = Record<string, unknown>> {
  type: T
  data: D
  session_id?: string
  timestamp?: string
  error?: ProtocolError
  id?: string
  seq?: number
}

// ---------------------------------------------------------------- client → server

export interface InitSessionData {
  token?: string
  session_id?: string
  last_seq?: number
}

export interface TreeOpData {
  delta: Delta
  base_rev: number
}

type Empty = Record<string, never>

export type ClientFrame =
  | Envelope<'init_session', InitSessionData>
  | Envelope<'user_prompt', { prompt: string }>
  | Envelope<'tree_op', TreeOpData>
  | Envelope<'cancel', Empty>
  | Envelope<'undo', Empty>
  | Envelope<'redo', Empty>
  | Envelope<'resync', Empty>
  | Envelope<'ping', Empty>
  | Envelope<'close_session', Empty>

export type ClientFrameType = ClientFrame['type']

/** The data type for a given client frame type. */
export type ClientData<T extends ClientFrameType> = Extract<ClientFrame, { type: T }>['data']

// ---------------------------------------------------------------- server → client

export interface SessionReadyData {
  session_id: string
  initial_tree: TreeNode
  rev: number
  seq: number
  /** True when the missed frames after `last_seq` follow (else `chat_history` does). */
  replay?: boolean
  title?: string
}

/** One stored chat message; servers may add fields (ids, timestamps...). */
export interface HistoryMessage {
  role: 'user' | 'assistant' | string
  content: string
  [extra: string]: unknown
}

export interface ChatHistoryData {
  messages: HistoryMessage[]
}

export type TreeUpdateOrigin = 'assistant' | 'user' | 'undo'

export interface TreeUpdateData {
  delta: Delta
  rev: number
  origin: TreeUpdateOrigin
}

export interface TreeSnapshotData {
  tree: TreeNode
  rev: number
}

export interface AssistantResponseData {
  text: string
  chunk: boolean
  cancelled?: boolean
  [extra: string]: unknown
}

/** Reasoning text; servers send `text` (one step) or `steps` (several). */
export interface ReasoningData {
  text?: string
  steps?: string[]
  [extra: string]: unknown
}

/** Timings and figures for a turn; free-form. */
export type DebugData = Record<string, unknown>

/** A prompt sent by another tab of the same session. */
export interface ChatMessageData {
  prompt?: string
  content?: string
  text?: string
  role?: string
  [extra: string]: unknown
}

export type ServerFrame =
  | Envelope<'session_ready', SessionReadyData>
  | Envelope<'chat_history', ChatHistoryData>
  | Envelope<'tree_update', TreeUpdateData>
  | Envelope<'tree_snapshot', TreeSnapshotData>
  | Envelope<'assistant_response', AssistantResponseData>
  | Envelope<'reasoning', ReasoningData>
  | Envelope<'debug', DebugData>
  | Envelope<'chat_message', ChatMessageData>
  | Envelope<'error', Record<string, unknown>>
  | Envelope<'pong', Record<string, unknown>>

export type ServerFrameType = ServerFrame['type']

const SERVER_TYPES: ReadonlySet<string> = new Set<ServerFrameType>([
  'session_ready',
  'chat_history',
  'tree_update',
  'tree_snapshot',
  'assistant_response',
  'reasoning',
  'debug',
  'chat_message',
  'error',
  'pong',
])

/**
 * Parses one incoming text frame. Returns null for anything that is not an
 * envelope (not JSON, no string `type`, no object `data`) or an unknown type:
 * unknown fields and types are ignored, never fatal.
 */
export function parseServerFrame(raw: unknown): ServerFrame | null {
  if (typeof raw !== 'string') return null
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return null
  }
  if (!isRecord(value)) return null
  const { type } = value
  if (typeof type !== 'string' || !SERVER_TYPES.has(type)) return null
  if (value.data === undefined || value.data === null) value.data = {}
  if (!isRecord(value.data)) return null
  return value as unknown as ServerFrame
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Text of a `chat_message` frame, whatever field the server used. */
export function chatMessageText(data: ChatMessageData): string {
  for (const key of ['prompt', 'content', 'text'] as const) {
    const v = data[key]
    if (typeof v === 'string') return v
  }
  return ''
}

/** Reasoning text of a `reasoning` frame, whatever shape the server used. */
export function reasoningText(data: ReasoningData): string {
  if (Array.isArray(data.steps)) return data.steps.filter((s) => typeof s === 'string').join('\n')
  for (const key of ['text', 'content', 'step', 'message'] as const) {
    const v = data[key]
    if (typeof v === 'string') return v
  }
  return ''
}
