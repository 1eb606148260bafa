/**
 * The session's WebSocket client, plain TypeScript, no React: a thin façade
 * over two halves, after tldraw's split between its socket adapter and its
 * sync client.
 *
 * - `SocketTransport` (./transport.ts): the socket, reconnect with backoff,
 *   token refresh on 1008, ping, the queue of frames sent while not ready;
 * - `TreeSync` (./tree-sync.ts): the session's tree (rev order, replays, gaps,
 *   resync, our own pending ops), the highest seq and the server's limits.
 *
 * `SessionSocket` wires them and offers one snapshot for React
 * (`useSyncExternalStore`), frame listeners and events.
 */
import type { ClientData, ClientFrame, ClientFrameType, ServerFrame } from './protocol'
import {
  nextId,
  SocketTransport,
  type ConnectionState,
  type OfflineReason,
  type TransportOptions,
} from './transport'
import { initialSyncState, TreeSync, type SyncEvent, type TreeSyncState } from './tree-sync'

export {
  backoffDelay,
  defaultSocketUrl,
  RECONNECT_MAX_DELAY_MS,
  RECONNECT_MIN_DELAY_MS,
  sessionSocketUrl,
  type ConnectionState,
  type SocketFactory,
  type SocketLike,
  type Timers,
} from './transport'
export type { TreeChange } from './tree-sync'

export interface SessionSnapshot extends TreeSyncState {
  state: ConnectionState
  /** Why the client went offline, when it did. */
  offlineReason: OfflineReason | null
}

export interface SessionSocketOptions extends TransportOptions {
  sessionId?: string | null
}

export type FrameListener = (frame: ServerFrame) => void

const MISDIRECTED = 421
export type SessionEvent =
  | SyncEvent
  | { type: 'auth_failed' }
  /** The owner removed us from this shared session (close 1008 `access revoked`): offline, no retry. */
  | { type: 'access_revoked'; sessionId: string | null }

export class SessionSocket {
  private readonly transport: SocketTransport
  private readonly sync: TreeSync
  private snapshot: SessionSnapshot
  /** While > 0, snapshot changes are collected and listeners told once at the end. */
  private batchDepth = 0
  private dirty = false
  private readonly listeners = new Set<() => void>()
  private readonly frameListeners = new Set<FrameListener>()
  private readonly eventListeners = new Set<(e: SessionEvent) => void>()

  constructor(options: SessionSocketOptions) {
    const sessionId = options.sessionId ?? null
    this.snapshot = { ...initialSyncState(sessionId), state: 'connecting', offlineReason: null }
    this.sync = new TreeSync(sessionId, {
      sendNow: (frame) => this.transport.sendNow(frame),
      emit: (e) => this.emit(e),
      changed: (patch) => this.update(patch),
    })
    this.transport = new SocketTransport(options, {
      initData: () => this.sync.initData(),
      onFrame: (frame) => this.handleFrame(frame),
      onState: (state, offlineReason) => {
        this.update({ state, offlineReason })
        if (offlineReason === 'revoked') this.emit({ type: 'access_revoked', sessionId: this.snapshot.sessionId })
      },
      onLinkLost: () => this.sync.linkLost(),
      onAuthFailed: () => this.emit({ type: 'auth_failed' }),
    })
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
    return this.sync.lastSeenSeq
  }

  get queuedCount(): number {
    return this.transport.queuedCount
  }

  /** Connect (idempotent). */
  start(): void {
    this.transport.start()
  }

  /** Disconnect for good (until `start` again). Queued frames are dropped. */
  stop(): void {
    this.batch(() => {
      this.transport.stop()
      this.sync.forgetOps()
    })
  }

  /**
   * Attach to another session (null: the user's most recent one). Resets the
   * tree, seq and queue and reconnects at once (also after access to the last
   * one was revoked). No-op for the current session.
   */
  switchSession(sessionId: string | null): void {
    if (sessionId === this.snapshot.sessionId) return
    // Removed from the last session: offline there, but free to open another one.
    const revoked = this.snapshot.state === 'offline' && this.snapshot.offlineReason === 'revoked'
    this.batch(() => {
      this.sync.switchTo(sessionId)
      if (revoked) this.transport.start()
      else this.transport.restart()
    })
  }

  /**
   * Send a frame; returns its correlation id. While not connected (or before
   * `session_ready`) the frame is queued and flushed after the next
   * `session_ready`.
   */
  send<T extends ClientFrameType>(type: T, data: ClientData<T>, id: string = nextId()): string {
    if (type === 'tree_op') this.sync.trackOp(id)
    this.transport.send(JSON.stringify({ type, data, id } as ClientFrame))
    return id
  }

  /**
   * Connect at once: skips the rest of a backoff wait; after going offline
   * because no token was accepted, starts again (asking for a fresh token).
   * No-op while connected, connecting, or after `stop`.
   */
  reconnectNow(): void {
    const { state, offlineReason } = this.snapshot
    if (state === 'offline' && offlineReason === 'auth') this.transport.start()
    else this.transport.reconnectNow()
  }

  /** Ask for a fresh snapshot (also done automatically on a rev gap). */
  resync(): void {
    this.sync.resync()
  }

  /** Why `delta` would fail on the current tree with the server's limits, or null. */
  validate(delta: unknown): string | null {
    return this.sync.validate(delta)
  }

  // ------------------------------------------------------------------ plumbing

  private handleFrame(frame: ServerFrame): void {
    if (frame.type === 'error' && frame.error?.code === MISDIRECTED && !this.snapshot.ready) {
      // init_session answered 421: the link's `?session=` names another session; a new link names this one.
      this.transport.redirect()
      return
    }
    this.batch(() => {
      this.sync.handleFrame(frame)
      if (frame.type === 'session_ready') this.transport.markReady()
    })
    for (const l of this.frameListeners) l(frame)
  }

  private batch(fn: () => void): void {
    this.batchDepth++
    try {
      fn()
    } finally {
      this.batchDepth--
      if (this.batchDepth === 0 && this.dirty) {
        this.dirty = false
        for (const l of this.listeners) l()
      }
    }
  }

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
    if (this.batchDepth > 0) this.dirty = true
    else for (const l of this.listeners) l()
  }

  private emit(e: SessionEvent): void {
    for (const l of this.eventListeners) l(e)
  }
}
