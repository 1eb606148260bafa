/**
 * The Canopy WebSocket protocol, as the web app uses it.
 *
 * Every frame type comes from ./generated/protocol.ts, generated from
 * docs/protocol.schema.json (itself exported from the server's pydantic models):
 * this module only names the unions the client needs and parses incoming text.
 */
import type {
  AddDelta,
  ChatMessageData,
  ClientFrame,
  MoveDelta,
  Node,
  PresenceUser,
  ReasoningData,
  RemoveDelta,
  ServerFrame,
  UpdateDelta,
} from './generated/protocol'

export type {
  ActorData,
  AddDelta,
  AssistantInfo,
  ChatMessageData,
  ClientFrame,
  ConflictInfo,
  MoveDelta,
  PresenceUser,
  ProposalData,
  ProposalResolvedData,
  ReasoningData,
  RemoveDelta,
  ServerFrame,
  SessionReadyData,
  TreeLimitsData,
  TreeUpdateData,
  UndoStateData,
  UpdateDelta,
} from './generated/protocol'

export type Delta = AddDelta | UpdateDelta | RemoveDelta | MoveDelta

/** A node as the server sends it (`children` and `props` may be missing, `props` may be null). */
export type WireNode = Node

/** A prop value; `null` appears only in an update, where it deletes the key. */
export type Scalar = string | number | boolean | null

/**
 * A node as the tree engine keeps it (see normalizeTree): `children` always an
 * array, `props` omitted when empty. Assignable to WireNode, so it can be sent.
 */
export interface TreeNode {
  id: string
  value: string
  children: TreeNode[]
  props?: Record<string, Exclude<Scalar, null>>
}

export type ClientFrameType = ClientFrame['type']

/** The data type for a given client frame type. */
export type ClientData<T extends ClientFrameType> = Extract<ClientFrame, { type: T }>['data']

export type ServerFrameType = ServerFrame['type']

/** A user's role in a session (`session_ready.role`, `presence.users[].role`). */
export type Role = PresenceUser['role']

/** One stored chat message (`chat_history`), the same shape as a `chat_message` frame's data. */
export type HistoryMessage = ChatMessageData

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
  'presence',
  'proposal',
  'proposal_resolved',
  'session_updated',
  'undo_state',
])

/**
 * Parses one incoming text frame. Returns null for anything that is not an
 * envelope (not JSON, no string `type`, no object `data`) or an unknown type:
 * unknown fields and types are ignored, never fatal. The data is not checked
 * field by field: its consumers stay defensive.
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

/** Text of a `chat_message` frame. */
export function chatMessageText(data: ChatMessageData): string {
  return typeof data.content === 'string' ? data.content : ''
}

/** Reasoning text of a `reasoning` frame: its steps, one a line, else its text. */
export function reasoningText(data: ReasoningData): string {
  if (Array.isArray(data.steps) && data.steps.length)
    return data.steps.filter((s) => typeof s === 'string').join('\n')
  return typeof data.text === 'string' ? data.text : ''
}
