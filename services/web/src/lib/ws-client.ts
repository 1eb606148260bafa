/**
 * The resilient session WebSocket client: plain TypeScript, no React.
 *
 * - connects to `ws(s)://<host>/ws/session`; the first frame is `init_session`
 *   with a fresh token from `getToken`, the session id and the highest `seq`
 *   seen (resume);
 * - reconnects with exponential backoff and full jitter, between `minDelayMs`
 *   (0.5 s) and `maxDelayMs` (30 s), reset after a successful `session_ready`;
 * - close code 1008 (bad token): one retry with a forced token refresh, then
 *   'offline';
 * - owns the session's tree: applies `tree_update`s in rev order, ignores
 *   replays (rev <= current), asks `resync` on a gap (or on a delta that does
 *   not apply, or a 409 answer to its own `tree_op`) and replaces the tree from
 *   `tree_snapshot`;
 * - pings every 30 s; a connection that stays silent for a whole ping interval
 *   after a ping is considered dead and replaced;
 * - frames sent while not connected are queued and flushed after `session_ready`.
 *
 * WebSocket constructor, timers and random are injectable for tests.
 */
import {
  parseServerFrame,
  type ClientData,
  type ClientFrame,
  type ClientFrameType,
  type ServerFrame,
  type TreeNode,
} from './protocol'
import { DeltaError, TreeDocument } from './tree-engine'

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline'

export interface TreeChange {
  /** Ids the last change touched (for a brief highlight); empty after a snapshot. */
  ids: string[]
  /** Increments on every change, so equal id lists still count as new. */
  version: number
  origin: 'assistant' | 'user' | 'undo' | 'snapshot'
}

export interface SessionSnapshot {
  state: ConnectionState
  /** The session this client is attached to, or asked for (null: "the most recent one"). */
  sessionId: string | null
  /** True once `session_ready` arrived for `sessionId` on the current connection. */
  ready: boolean
  tree: TreeNode | null
  rev: number
  lastChange: TreeChange | null
  /** Why the client went offline, when it did. */
  offlineReason: 'auth' | 'stopped' | null
}

/** The subset of the DOM WebSocket the client uses. */
export interface SocketLike {
  readonly readyState: number
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason?: string; wasClean?: boolean }) => void) | null
  onerror: ((ev: unknown) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export type SocketFactory = new (url: string) => SocketLike

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  setInterval(fn: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
}

export interface SessionSocketOptions {
  /** Full URL; defaults to `${ws|wss}://${location.host}/ws/session`. */
  url?: string
  /**
   * Returns a valid access token, or null when the user is logged out.
   * `force` asks for a new one (after a 1008 close). Throwing counts as a
   * transient failure (backoff and retry).
   */
  getToken: (opts: { force: boolean }) => Promise<string | null>
  sessionId?: string | null
  WebSocketImpl?: SocketFactory
  timers?: Timers
  random?: () => number
  pingIntervalMs?: number
  minDelayMs?: number
  maxDelayMs?: number
  /** Upper bound on frames kept while disconnected (oldest dropped first). */
  maxQueue?: number
}

export type FrameListener = (frame: ServerFrame) => void
export type SessionEvent =
  | { type: 'session_error'; code: number; message: string; sessionId: string | null }
  | { type: 'auth_failed' }
  | { type: 'resynced'; reason: 'gap' | 'conflict' | 'invalid' }

const OPEN = 1
const CLOSE_POLICY = 1008
const CLOSE_NORMAL = 1000

export function defaultSocketUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws'
  return `${proto}://${location.host}/ws/session`
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
}

/**
 * The delay before reconnect attempt `attempt` (0-based): full jitter over an
 * exponentially growing ceiling, never below `min` nor above `max`.
 */
export function backoffDelay(attempt: number, random: () => number, min = 500, max = 30_000): number {
  const ceiling = Math.min(max, min * 2 ** (attempt + 1))
  const r = Math.min(Math.max(random(), 0), 1)
  return Math.round(min + r * (ceiling - min))
}

let idCounter = 0

export class SessionSocket {
  private readonly opts: Required<Omit<SessionSocketOptions, 'url' | 'sessionId' | 'WebSocketImpl'>> & {
    url: string | undefined
    WebSocketImpl: SocketFactory | undefined
  }
  private socket: SocketLike | null = null
  /** Increments on every new connection, so late callbacks of old sockets are ignored. */
  private generation = 0
  private started = false
  private attempt = 0
  private authRetried = false
  private reconnectTimer: unknown = null
  private pingTimer: unknown = null
  private heardSincePing = true
  private queue: string[] = []
  private lastSeq: number | null = null
  private doc: TreeDocument | null = null
  private resyncPending = false
  /** ids of our own tree_op frames awaiting their echo: a 409 answer asks for a resync. */
  private pendingOps = new Set<string>()
  private changeVersion = 0
  private snapshot: SessionSnapshot
  private readonly listeners = new Set<() => void>()
  private readonly frameListeners = new Set<FrameListener>()
  private readonly eventListeners = new Set<(e: SessionEvent) => void>()

  constructor(options: SessionSocketOptions) {
    this.opts = {
      url: options.url,
      getToken: options.getToken,
      WebSocketImpl: options.WebSocketImpl,
      timers: options.timers ?? realTimers,
      random: options.random ?? Math.random,
      pingIntervalMs: options.pingIntervalMs ?? 30_000,
      minDelayMs: options.minDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      maxQueue: options.maxQueue ?? 200,
    }
    this.snapshot = {
      state: 'connecting',
      sessionId: options.sessionId ?? null,
      ready: false,
      tree: null,
      rev: 0,
      lastChange: null,
      offlineReason: null,
    }
  }

  // ------------------------------------------------------------------ public API

  getSnapshot = (): SessionSnapshot => this.snapshot

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Every parsed server frame, after the client's own bookkeeping. */
  onFrame(listener: FrameListener): () => void {
    this.frameListeners.add(listener)
    return () => this.frameListeners.delete(listener)
  }

  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.eventListeners.add(listener)
    return () => this.eventListeners.delete(listener)
  }

  get lastSeenSeq(): number | null {
    return this.lastSeq
  }

  get queuedCount(): number {
    return this.queue.length
  }

  /** Connect (idempotent). */
  start(): void {
    if (this.started) return
    this.started = true
    this.attempt = 0
    this.authRetried = false
    this.update({ state: 'connecting', offlineReason: null })
    void this.connect(false)
  }

  /** Disconnect for good (until `start` again). Queued frames are dropped. */
  stop(): void {
    this.started = false
    this.teardown(CLOSE_NORMAL)
    this.queue = []
    this.pendingOps.clear()
    this.update({ state: 'offline', ready: false, offlineReason: 'stopped' })
  }

  /**
   * Attach to another session (null: the user's most recent one). Resets the
   * tree, seq and queue and reconnects at once. No-op for the current session.
   */
  switchSession(sessionId: string | null): void {
    if (sessionId !== null && sessionId === this.snapshot.sessionId) return
    if (sessionId === null && this.snapshot.sessionId === null) return
    this.lastSeq = null
    this.doc = null
    this.queue = []
    this.pendingOps.clear()
    this.resyncPending = false
    this.update({ sessionId, ready: false, tree: null, rev: 0, lastChange: null })
    if (!this.started) return
    this.teardown(CLOSE_NORMAL)
    this.attempt = 0
    this.authRetried = false
    this.update({ state: 'connecting', offlineReason: null })
    void this.connect(false)
  }

  /**
   * Send a frame; returns its correlation id. While not connected (or before
   * `session_ready`) the frame is queued and flushed after the next
   * `session_ready`.
   */
  send<T extends ClientFrameType>(type: T, data: ClientData<T>, id: string = nextId()): string {
    const frame = { type, data, id } as ClientFrame
    if (type === 'tree_op') this.pendingOps.add(id)
    const text = JSON.stringify(frame)
    if (this.snapshot.ready && this.socket && this.socket.readyState === OPEN) {
      this.socket.send(text)
    } else {
      this.queue.push(text)
      if (this.queue.length > this.opts.maxQueue) this.queue.shift()
    }
    return id
  }

  /**
   * Skip the rest of a backoff wait and reconnect at once (the browser says it
   * is back online, or the tab became visible). No-op unless reconnecting.
   */
  reconnectNow(): void {
    if (!this.started || this.snapshot.state !== 'reconnecting' || this.reconnectTimer === null) return
    this.opts.timers.clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    void this.connect(false)
  }

  /** Ask for a fresh snapshot (also done automatically on a rev gap). */
  resync(): void {
    if (this.resyncPending) return
    this.resyncPending = true
    this.sendNow({ type: 'resync', data: {} })
  }

  // ------------------------------------------------------------------ connection

  private async connect(forceToken: boolean): Promise<void> {
    const gen = ++this.generation
    let token: string | null
    try {
      token = await this.opts.getToken({ force: forceToken })
    } catch {
      if (gen !== this.generation || !this.started) return
      this.scheduleReconnect()
      return
    }
    if (gen !== this.generation || !this.started) return
    if (!token) {
      this.goOffline('auth')
      return
    }
    const Impl = this.opts.WebSocketImpl ?? (globalThis.WebSocket as unknown as SocketFactory)
    let socket: SocketLike
    try {
      socket = new Impl(this.opts.url ?? defaultSocketUrl())
    } catch {
      this.scheduleReconnect()
      return
    }
    this.socket = socket
    socket.onopen = () => {
      if (gen !== this.generation) return
      const data: ClientData<'init_session'> = { token: token ?? undefined }
      const sid = this.snapshot.sessionId
      if (sid) {
        data.session_id = sid
        if (this.lastSeq !== null) data.last_seq = this.lastSeq
      }
      socket.send(JSON.stringify({ type: 'init_session', data, id: nextId() }))
    }
    socket.onmessage = (ev) => {
      if (gen !== this.generation) return
      this.heardSincePing = true
      const frame = parseServerFrame(ev.data)
      if (frame) this.handleFrame(frame)
    }
    socket.onerror = () => {
      // a close event always follows; nothing to do here
    }
    socket.onclose = (ev) => {
      if (gen !== this.generation) return
      this.handleClose(ev.code)
    }
  }

  private handleClose(code: number): void {
    const wasReady = this.snapshot.ready
    this.clearPing()
    this.socket = null
    this.resyncPending = false
    this.update({ ready: false })
    if (!this.started) return
    if (code === CLOSE_POLICY) {
      if (this.authRetried && !wasReady) {
        this.goOffline('auth')
        return
      }
      this.authRetried = true
      if (wasReady) {
        // Closed for policy in the middle of a session (abuse): back off, then a new token.
        this.scheduleReconnect(true)
        return
      }
      this.update({ state: 'reconnecting' })
      void this.connect(true)
      return
    }
    this.scheduleReconnect()
  }

  private scheduleReconnect(forceToken = false): void {
    if (!this.started) return
    const { timers, random, minDelayMs, maxDelayMs } = this.opts
    const delay = backoffDelay(this.attempt, random, minDelayMs, maxDelayMs)
    this.attempt += 1
    this.update({ state: 'reconnecting' })
    if (this.reconnectTimer !== null) timers.clearTimeout(this.reconnectTimer)
    this.reconnectTimer = timers.setTimeout(() => {
      this.reconnectTimer = null
      if (this.started) void this.connect(forceToken)
    }, delay)
  }

  private goOffline(reason: 'auth' | 'stopped'): void {
    this.started = false
    this.teardown(CLOSE_NORMAL)
    this.update({ state: 'offline', ready: false, offlineReason: reason })
    if (reason === 'auth') this.emit({ type: 'auth_failed' })
  }

  private teardown(code: number): void {
    this.generation++
    this.clearPing()
    if (this.reconnectTimer !== null) {
      this.opts.timers.clearTimeout(this.reconnectTimer)
      this.reconnectTimer = null
    }
    const s = this.socket
    this.socket = null
    if (s) {
      s.onopen = s.onmessage = s.onerror = s.onclose = null
      try {
        s.close(code)
      } catch {
        // already closed
      }
    }
  }

  private startPing(): void {
    this.clearPing()
    this.heardSincePing = true
    this.pingTimer = this.opts.timers.setInterval(() => {
      const s = this.socket
      if (!s) return
      if (!this.heardSincePing) {
        // Nothing at all (not even the last pong) for a whole interval: the link is dead.
        this.teardown(4000)
        this.handleClose(4000)
        return
      }
      this.heardSincePing = false
      this.sendNow({ type: 'ping', data: {} })
    }, this.opts.pingIntervalMs)
  }

  private clearPing(): void {
    if (this.pingTimer !== null) {
      this.opts.timers.clearInterval(this.pingTimer)
      this.pingTimer = null
    }
  }

  private sendNow(frame: ClientFrame): void {
    const s = this.socket
    if (s && s.readyState === OPEN) s.send(JSON.stringify(frame))
  }

  private flushQueue(): void {
    const s = this.socket
    if (!s) return
    const queued = this.queue
    this.queue = []
    for (const text of queued) s.send(text)
  }

  // ------------------------------------------------------------------ frames

  private handleFrame(frame: ServerFrame): void {
    if (typeof frame.seq === 'number' && (this.lastSeq === null || frame.seq > this.lastSeq)) {
      this.lastSeq = frame.seq
    }
    switch (frame.type) {
      case 'session_ready': {
        const d = frame.data
        if (this.snapshot.sessionId && d.session_id !== this.snapshot.sessionId) {
          // A different session than the one we resumed: nothing of ours applies.
          this.pendingOps.clear()
        }
        if (typeof d.seq === 'number' && (this.lastSeq === null || d.seq > this.lastSeq)) this.lastSeq = d.seq
        this.doc = new TreeDocument(d.initial_tree, d.rev)
        this.resyncPending = false
        this.attempt = 0
        this.authRetried = false
        this.update({
          state: 'connected',
          sessionId: d.session_id,
          ready: true,
          tree: this.doc.root,
          rev: this.doc.rev,
          lastChange: { ids: [], version: ++this.changeVersion, origin: 'snapshot' },
          offlineReason: null,
        })
        this.startPing()
        this.flushQueue()
        break
      }
      case 'tree_update':
        if (frame.id) this.pendingOps.delete(frame.id)
        this.applyUpdate(frame.data.delta, frame.data.rev, frame.data.origin)
        break
      case 'tree_snapshot': {
        this.doc = new TreeDocument(frame.data.tree, frame.data.rev)
        this.resyncPending = false
        this.update({
          tree: this.doc.root,
          rev: this.doc.rev,
          lastChange: { ids: [], version: ++this.changeVersion, origin: 'snapshot' },
        })
        break
      }
      case 'error': {
        const code = frame.error?.code ?? 500
        const message = frame.error?.message ?? 'error'
        if (!this.snapshot.ready) {
          // The answer to init_session (unknown or foreign session).
          this.emit({ type: 'session_error', code, message, sessionId: this.snapshot.sessionId })
        } else if (frame.id && this.pendingOps.has(frame.id)) {
          this.pendingOps.delete(frame.id)
          if (code === 409 || code === 404) {
            // Our view of the tree was stale: fetch the server's.
            this.resync()
            this.emit({ type: 'resynced', reason: 'conflict' })
          }
        }
        break
      }
      default:
        break
    }
    for (const l of this.frameListeners) l(frame)
  }

  private applyUpdate(delta: unknown, rev: number, origin: TreeChange['origin']): void {
    const doc = this.doc
    if (!doc || typeof rev !== 'number') return
    if (rev <= doc.rev) return // a replay we already have
    if (this.resyncPending) return // the snapshot on its way covers it
    if (rev !== doc.rev + 1) {
      this.resync()
      this.emit({ type: 'resynced', reason: 'gap' })
      return
    }
    let touched: string[]
    try {
      touched = doc.apply(delta).touched
    } catch (err) {
      if (!(err instanceof DeltaError)) throw err
      this.resync()
      this.emit({ type: 'resynced', reason: 'invalid' })
      return
    }
    this.update({
      tree: doc.root,
      rev: doc.rev,
      lastChange: { ids: touched, version: ++this.changeVersion, origin },
    })
  }

  // ------------------------------------------------------------------ plumbing

  private update(patch: Partial<SessionSnapshot>): void {
    let changed = false
    for (const key of Object.keys(patch) as Array<keyof SessionSnapshot>) {
      if (this.snapshot[key] !== patch[key]) {
        changed = true
        break
      }
    }
    if (!changed) return
    this.snapshot = { ...this.snapshot, ...patch }
    for (const l of this.listeners) l()
  }

  private emit(e: SessionEvent): void {
    for (const l of this.eventListeners) l(e)
  }
}

function nextId(): string {
  idCounter = (idCounter + 1) % 1_000_000_000
  return `c${idCounter.toString(36)}${Math.floor(Math.random() * 0xffffff).toString(36)}`
}
