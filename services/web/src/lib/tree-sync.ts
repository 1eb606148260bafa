/**
 * The session socket's tree sync: the session's document and nothing about
 * sockets (after tldraw's split between its socket adapter and its sync client).
 *
 * - takes the tree, rev, seq, protocol version and the server's tree limits
 *   from `session_ready`, and the tree from `tree_snapshot`;
 * - applies `tree_update`s in rev order, ignores replays (rev <= current), asks
 *   `resync` on a gap (or on a delta that does not apply, or a 409/404 answer
 *   to its own `tree_op`) and ignores updates until the snapshot arrives;
 * - tracks the highest `seq` seen, for resuming;
 * - checks a delta against the current tree with the server's limits (`validate`).
 *
 * It talks to the rest through `TreeSyncHost`: `sendNow` (the transport, never
 * queued), `emit` (events) and `changed` (its part of the session snapshot).
 */
import type { ClientFrame, ServerFrame, TreeNode } from './protocol'
import { DEFAULT_LIMITS, DeltaError, limitsFrom, TreeDocument, type TreeLimits } from './tree-engine'

export interface TreeChange {
  /** Ids the last change touched (for a brief highlight); empty after a snapshot. */
  ids: string[]
  /** Increments on every change, so equal id lists still count as new. */
  version: number
  origin: 'assistant' | 'user' | 'undo' | 'proposal' | 'snapshot'
}

/** The tree sync's part of the session snapshot. */
export interface TreeSyncState {
  /** The session attached to, or asked for (null: "the most recent one"). */
  sessionId: string | null
  /** True once `session_ready` arrived for `sessionId` on the current connection. */
  ready: boolean
  tree: TreeNode | null
  rev: number
  lastChange: TreeChange | null
  /** The server's tree limits (from `session_ready`; the defaults before). */
  limits: Readonly<TreeLimits>
  /** `session_ready.data.protocol_version`, or null before (or from a server without it). */
  protocolVersion: number | null
}

export type SyncEvent =
  | { type: 'session_error'; code: number; message: string; sessionId: string | null }
  | { type: 'resynced'; reason: 'gap' | 'conflict' | 'invalid' }

export interface TreeSyncHost {
  sendNow(frame: ClientFrame): void
  emit(event: SyncEvent): void
  changed(patch: Partial<TreeSyncState>): void
}

export function initialSyncState(sessionId: string | null): TreeSyncState {
  return {
    sessionId,
    ready: false,
    tree: null,
    rev: 0,
    lastChange: null,
    limits: DEFAULT_LIMITS,
    protocolVersion: null,
  }
}

/** An idle callback runs by then even on a page that is never idle. */
const INDEX_IDLE_TIMEOUT_MS = 500
/** Longest step of making a snapshot's parent index: well under a frame. */
const INDEX_SLICE_MS = 8

/** Run `fn` when the page is idle (after the snapshot's first paint); returns a cancel. */
function whenIdle(fn: () => void): () => void {
  if (typeof requestIdleCallback === 'function') {
    const h = requestIdleCallback(fn, { timeout: INDEX_IDLE_TIMEOUT_MS })
    return () => cancelIdleCallback(h)
  }
  const t = setTimeout(fn, 0)
  return () => clearTimeout(t)
}

export class TreeSync {
  private doc: TreeDocument | null = null
  /** Cancels the pending idle-time indexing of the current snapshot. */
  private cancelIndexing: (() => void) | null = null
  private lastSeq: number | null = null
  private resyncPending = false
  /** ids of our own tree_op frames awaiting their echo: a 409/404 answer asks for a resync. */
  private readonly pendingOps = new Set<string>()
  private changeVersion = 0
  private sessionId: string | null
  private ready = false

  constructor(
    sessionId: string | null,
    private readonly host: TreeSyncHost,
  ) {
    this.sessionId = sessionId
  }

  get lastSeenSeq(): number | null {
    return this.lastSeq
  }

  get currentSessionId(): string | null {
    return this.sessionId
  }

  /** What `init_session` asks for: this session, resumed after the highest seq seen. */
  initData(): { session_id?: string; last_seq?: number } {
    if (!this.sessionId) return {}
    return this.lastSeq === null ? { session_id: this.sessionId } : { session_id: this.sessionId, last_seq: this.lastSeq }
  }

  /** Forget everything about the current session and aim at another (null: the most recent). */
  switchTo(sessionId: string | null): void {
    this.sessionId = sessionId
    this.lastSeq = null
    this.setDoc(null)
    this.pendingOps.clear()
    this.resyncPending = false
    this.ready = false
    this.host.changed({ sessionId, ready: false, tree: null, rev: 0, lastChange: null })
  }

  /** The link is gone: a new `session_ready` must come before anything applies. */
  linkLost(): void {
    this.resyncPending = false
    this.ready = false
    this.host.changed({ ready: false })
  }

  /** Stopped for good: no own op will be answered. */
  forgetOps(): void {
    this.pendingOps.clear()
  }

  /** Remember one of our own `tree_op` ids, to resync if the server refuses it as stale. */
  trackOp(id: string): void {
    this.pendingOps.add(id)
  }

  /** Ask for a fresh snapshot (also done automatically on a rev gap). */
  resync(): void {
    if (this.resyncPending) return
    this.resyncPending = true
    this.host.sendNow({ type: 'resync', data: {} })
  }

  /** Why `delta` would fail on the current tree with the server's limits, or null (also before any tree). */
  validate(delta: unknown): string | null {
    if (!this.doc) return null
    try {
      this.doc.validate(delta)
      return null
    } catch (err) {
      if (err instanceof DeltaError) return err.message
      throw err
    }
  }

  handleFrame(frame: ServerFrame): void {
    if (typeof frame.seq === 'number' && (this.lastSeq === null || frame.seq > this.lastSeq)) this.lastSeq = frame.seq
    switch (frame.type) {
      case 'session_ready':
        this.onReady(frame.data)
        break
      case 'tree_update':
        if (frame.id) this.pendingOps.delete(frame.id)
        this.applyUpdate(frame.data.delta, frame.data.rev, frame.data.origin)
        break
      case 'tree_snapshot':
        // The frame was just parsed and is ours alone: its tree is adopted, not copied.
        this.replaceTree(new TreeDocument(frame.data.tree, frame.data.rev, this.doc?.limits ?? DEFAULT_LIMITS, true))
        break
      case 'error':
        this.onError(frame.id ?? null, frame.error?.code ?? 500, frame.error?.message ?? 'error')
        break
      default:
        break
    }
  }

  private onReady(d: Extract<ServerFrame, { type: 'session_ready' }>['data']): void {
    // A different session than the one we resumed: nothing of ours applies.
    if (this.sessionId && d.session_id !== this.sessionId) this.pendingOps.clear()
    if (typeof d.seq === 'number' && (this.lastSeq === null || d.seq > this.lastSeq)) this.lastSeq = d.seq
    const limits = limitsFrom(d)
    this.sessionId = d.session_id
    this.ready = true
    this.host.changed({
      sessionId: d.session_id,
      ready: true,
      limits,
      protocolVersion: typeof d.protocol_version === 'number' ? d.protocol_version : null,
    })
    this.replaceTree(new TreeDocument(d.initial_tree, d.rev, limits, true))
  }

  private onError(id: string | null, code: number, message: string): void {
    if (!this.ready) {
      // The answer to init_session (unknown or foreign session).
      this.host.emit({ type: 'session_error', code, message, sessionId: this.sessionId })
    } else if (id && this.pendingOps.has(id)) {
      this.pendingOps.delete(id)
      if (code === 409 || code === 404) {
        // Our view of the tree was stale: fetch the server's.
        this.resync()
        this.host.emit({ type: 'resynced', reason: 'conflict' })
      }
    }
  }

  private setDoc(doc: TreeDocument | null): void {
    this.cancelIndexing?.()
    this.cancelIndexing = null
    this.doc = doc
    // A snapshot is adopted without its parent index (the tree shows sooner); it is made in idle-time steps,
    // so the first delta or check does not wait for it (either finishes it if it comes first).
    if (!doc) return
    const step = () => {
      this.cancelIndexing = doc.indexSome(performance.now() + INDEX_SLICE_MS) ? null : whenIdle(step)
    }
    this.cancelIndexing = whenIdle(step)
  }

  private replaceTree(doc: TreeDocument): void {
    this.setDoc(doc)
    this.resyncPending = false
    this.host.changed({
      tree: doc.root,
      rev: doc.rev,
      lastChange: { ids: [], version: ++this.changeVersion, origin: 'snapshot' },
    })
  }

  private applyUpdate(delta: unknown, rev: number, origin: TreeChange['origin']): void {
    const doc = this.doc
    if (!doc || typeof rev !== 'number') return
    if (rev <= doc.rev) return // a replay we already have
    if (this.resyncPending) return // the snapshot on its way covers it
    if (rev !== doc.rev + 1) {
      this.resync()
      this.host.emit({ type: 'resynced', reason: 'gap' })
      return
    }
    let touched: string[]
    try {
      touched = doc.apply(delta).touched
    } catch (err) {
      if (!(err instanceof DeltaError)) throw err
      this.resync()
      this.host.emit({ type: 'resynced', reason: 'invalid' })
      return
    }
    this.host.changed({
      tree: doc.root,
      rev: doc.rev,
      lastChange: { ids: touched, version: ++this.changeVersion, origin },
    })
  }
}
