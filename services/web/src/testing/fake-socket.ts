import type { SocketLike } from '@/lib/ws-client'

/** A scripted WebSocket: the test opens it, feeds it frames and closes it. */
export class FakeSocket implements SocketLike {
  static instances: FakeSocket[] = []
  static reset(): void {
    FakeSocket.instances = []
  }
  static get last(): FakeSocket {
    const s = FakeSocket.instances[FakeSocket.instances.length - 1]
    if (!s) throw new Error('no socket was created')
    return s
  }

  readyState = 0
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code: number; reason?: string; wasClean?: boolean }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  /** Frames the client sent, parsed. */
  sent: Array<{ type: string; data: Record<string, unknown>; id?: string }> = []
  closedWith: number | null = null
  readonly url: string

  constructor(url: string) {
    this.url = url
    FakeSocket.instances.push(this)
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.sent.push(JSON.parse(data))
  }

  close(code = 1000): void {
    this.readyState = 3
    this.closedWith = code
  }

  // ---- test side
  open(): void {
    this.readyState = 1
    this.onopen?.({})
  }

  receive(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) })
  }

  serverClose(code: number, reason?: string): void {
    this.readyState = 3
    this.onclose?.({ code, reason })
  }

  sentOfType(type: string) {
    return this.sent.filter((f) => f.type === type)
  }
}

export const emptyTree = () => ({ id: 'root', value: 'Root', children: [] as unknown[] })

export function ready(sessionId: string, rev = 0, seq = 0, tree: unknown = emptyTree()) {
  return { type: 'session_ready', data: { session_id: sessionId, initial_tree: tree, rev, seq } }
}

export function addUpdate(id: string, value: string, rev: number, seq?: number, frameId?: string) {
  const frame: Record<string, unknown> = {
    type: 'tree_update',
    data: {
      delta: { action: 'add', path: '/root/children', node: { id, value, children: [] } },
      rev,
      origin: 'assistant',
    },
  }
  if (seq !== undefined) frame.seq = seq
  if (frameId !== undefined) frame.id = frameId
  return frame
}
