/**
 * The session socket's transport: one WebSocket at a time and nothing about trees
 * (after tldraw's split between its socket adapter and its sync client).
 *
 * - connects to `ws(s)://<host>/ws/session`; the first frame is `init_session`
 *   with a fresh token from `getToken` and whatever the owner's `initData` adds
 *   (session id, last seq);
 * - reconnects with exponential backoff and full jitter between `minDelayMs`
 *   (0.5 s) and `maxDelayMs` (10 s), reset once the owner says the session is
 *   ready (`markReady`); `reconnectNow` skips the rest of a wait;
 * - close code 1008 (bad token): one retry with a forced token refresh, then
 *   'offline'; 1008 with reason `access revoked` (the owner removed us from a
 *   shared session): 'offline' at once, no retry ('revoked');
 * - pings every 30 s once ready; a link silent for a whole interval after a
 *   ping is considered dead and replaced;
 * - frames sent before the session is ready are queued (oldest dropped past
 *   `maxQueue`) and flushed by `markReady`.
 *
 * WebSocket constructor, timers and random are injectable for tests.
 */
import { parseServerFrame, type ClientFrame, type ServerFrame } from './protocol'
import type { InitSessionData } from './generated/protocol'

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline'
export type OfflineReason = 'auth' | 'stopped' | 'revoked'

/** The subset of the DOM WebSocket the transport uses. */
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

export interface TransportOptions {
  /** Full URL; defaults to `${ws|wss}://${location.host}/ws/session`. */
  url?: string
  /**
   * Returns a valid access token, or null when the user is logged out.
   * `force` asks for a new one (after a 1008 close). Throwing counts as a
   * transient failure (backoff and retry).
   */
  getToken: (opts: { force: boolean }) => Promise<string | null>
  WebSocketImpl?: SocketFactory
  timers?: Timers
  random?: () => number
  pingIntervalMs?: number
  minDelayMs?: number
  maxDelayMs?: number
  /** Upper bound on frames kept while disconnected (oldest dropped first). */
  maxQueue?: number
}

/** What the transport tells its owner (the session socket). */
export interface TransportHandlers {
  /** `init_session` data for a new connection, without the token (the transport adds it). */
  initData(): Omit<InitSessionData, 'token'>
  /** Every parsed server frame. */
  onFrame(frame: ServerFrame): void
  onState(state: ConnectionState, offlineReason: OfflineReason | null): void
  /** The link is gone (closed, dead or replaced): nothing sent on it counts any more. */
  onLinkLost(): void
  onAuthFailed(): void
}

export const RECONNECT_MIN_DELAY_MS = 500
export const RECONNECT_MAX_DELAY_MS = 10_000
const OPEN = 1
const CLOSE_POLICY = 1008
/** The close reason of a socket whose user was removed from the shared session (docs/protocol.md §15.1). */
export const REVOKED_REASON = 'access revoked'
const CLOSE_NORMAL = 1000
const CLOSE_DEAD_LINK = 4000

export function defaultSocketUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws'
  return `${proto}://${location.host}/ws/session`
}

/**
 * The socket URL for a session: `?session=<id>` once the id is known, so nginx
 * routes every tab of a session to the same API replica (docs/scaling.md).
 */
export function sessionSocketUrl(base: string, sessionId: string | null | undefined): string {
  if (!sessionId) return base
  const url = new URL(base)
  url.searchParams.set('session', sessionId)
  return url.toString()
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
export function backoffDelay(
  attempt: number,
  random: () => number,
  min = RECONNECT_MIN_DELAY_MS,
  max = RECONNECT_MAX_DELAY_MS,
): number {
  const ceiling = Math.min(max, min * 2 ** (attempt + 1))
  const r = Math.min(Math.max(random(), 0), 1)
  return Math.round(min + r * (ceiling - min))
}

export class SocketTransport {
  private readonly opts: Required<Omit<TransportOptions, 'url' | 'WebSocketImpl'>> &
    Pick<TransportOptions, 'url' | 'WebSocketImpl'>
  private socket: SocketLike | null = null
  /** Increments on every new connection, so late callbacks of old sockets are ignored. */
  private generation = 0
  private started = false
  /** The owner said the session is ready on the current link. */
  private ready = false
  private attempt = 0
  private authRetried = false
  private reconnectTimer: unknown = null
  private pingTimer: unknown = null
  private heardSincePing = true
  private queue: string[] = []
  private state: ConnectionState = 'connecting'

  constructor(
    options: TransportOptions,
    private readonly handlers: TransportHandlers,
  ) {
    this.opts = {
      url: options.url,
      getToken: options.getToken,
      WebSocketImpl: options.WebSocketImpl,
      timers: options.timers ?? realTimers,
      random: options.random ?? Math.random,
      pingIntervalMs: options.pingIntervalMs ?? 30_000,
      minDelayMs: options.minDelayMs ?? RECONNECT_MIN_DELAY_MS,
      maxDelayMs: options.maxDelayMs ?? RECONNECT_MAX_DELAY_MS,
      maxQueue: options.maxQueue ?? 200,
    }
  }

  get queuedCount(): number {
    return this.queue.length
  }

  get isReady(): boolean {
    return this.ready && this.socket !== null && this.socket.readyState === OPEN
  }

  /** Connect (idempotent). */
  start(): void {
    if (this.started) return
    this.started = true
    this.connectAfresh()
  }

  /** Disconnect for good (until `start` again). Queued frames are dropped. */
  stop(): void {
    this.started = false
    this.teardown(CLOSE_NORMAL)
    this.queue = []
    this.setState('offline', 'stopped')
  }

  /** Drop the link (if any) and connect again at once, with a fresh backoff (another session). */
  restart(): void {
    this.queue = []
    if (!this.started) return
    this.teardown(CLOSE_NORMAL)
    this.connectAfresh()
  }

  /** Replace the link at once, keeping queued frames: it was opened for another session (`?session=`). */
  redirect(): void {
    if (!this.started) return
    this.teardown(CLOSE_NORMAL)
    this.connectAfresh()
  }

  /**
   * Skip the rest of a backoff wait and connect at once (the browser is back
   * online, the tab is visible again, or the user asked). No-op unless waiting.
   */
  reconnectNow(): void {
    if (!this.started || this.state !== 'reconnecting' || this.reconnectTimer === null) return
    this.opts.timers.clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    void this.connect(false)
  }

  /** The owner got its session on this link: reset the backoff, start pinging, flush the queue. */
  markReady(): void {
    this.ready = true
    this.attempt = 0
    this.authRetried = false
    this.setState('connected', null)
    this.startPing()
    const s = this.socket
    if (!s) return
    const queued = this.queue
    this.queue = []
    for (const text of queued) s.send(text)
  }

  /** Send now when the session is ready, else queue until it is. */
  send(text: string): void {
    if (this.isReady) {
      this.socket!.send(text)
      return
    }
    this.queue.push(text)
    if (this.queue.length > this.opts.maxQueue) this.queue.shift()
  }

  /** Send only if the link is open (ping, resync): never queued. */
  sendNow(frame: ClientFrame): void {
    const s = this.socket
    if (s && s.readyState === OPEN) s.send(JSON.stringify(frame))
  }

  // ------------------------------------------------------------------ connection

  private connectAfresh(): void {
    this.attempt = 0
    this.authRetried = false
    this.setState('connecting', null)
    void this.connect(false)
  }

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
      socket = new Impl(sessionSocketUrl(this.opts.url ?? defaultSocketUrl(), this.handlers.initData().session_id))
    } catch {
      this.scheduleReconnect()
      return
    }
    this.socket = socket
    socket.onopen = () => {
      if (gen !== this.generation) return
      const data: InitSessionData = { token, ...this.handlers.initData() }
      socket.send(JSON.stringify({ type: 'init_session', data, id: nextId() }))
    }
    socket.onmessage = (ev) => {
      if (gen !== this.generation) return
      this.heardSincePing = true
      const frame = parseServerFrame(ev.data)
      if (frame) this.handlers.onFrame(frame)
    }
    socket.onerror = () => {
      // a close event always follows; nothing to do here
    }
    socket.onclose = (ev) => {
      if (gen !== this.generation) return
      this.handleClose(ev.code, ev.reason)
    }
  }

  private handleClose(code: number, reason?: string): void {
    const wasReady = this.ready
    this.clearPing()
    this.socket = null
    this.ready = false
    this.handlers.onLinkLost()
    if (!this.started) return
    if (code === CLOSE_POLICY && reason === REVOKED_REASON) {
      // Not a token problem: a new token would only be refused with 404.
      this.goOffline('revoked')
      return
    }
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
      this.setState('reconnecting', null)
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
    this.setState('reconnecting', null)
    if (this.reconnectTimer !== null) timers.clearTimeout(this.reconnectTimer)
    this.reconnectTimer = timers.setTimeout(() => {
      this.reconnectTimer = null
      if (this.started) void this.connect(forceToken)
    }, delay)
  }

  private goOffline(reason: OfflineReason): void {
    this.started = false
    this.teardown(CLOSE_NORMAL)
    this.setState('offline', reason)
    if (reason === 'auth') this.handlers.onAuthFailed()
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
    const wasLinked = s !== null || this.ready
    this.ready = false
    if (s) {
      s.onopen = s.onmessage = s.onerror = s.onclose = null
      try {
        s.close(code)
      } catch {
        // already closed
      }
    }
    if (wasLinked) this.handlers.onLinkLost()
  }

  private startPing(): void {
    this.clearPing()
    this.heardSincePing = true
    this.pingTimer = this.opts.timers.setInterval(() => {
      if (!this.socket) return
      if (!this.heardSincePing) {
        // Nothing at all (not even the last pong) for a whole interval: the link is dead.
        this.teardown(CLOSE_DEAD_LINK)
        this.handleClose(CLOSE_DEAD_LINK)
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

  private setState(state: ConnectionState, offlineReason: OfflineReason | null): void {
    this.state = state
    this.handlers.onState(state, offlineReason)
  }
}

let idCounter = 0

/** A fresh frame correlation id. */
export function nextId(): string {
  idCounter = (idCounter + 1) % 1_000_000_000
  return `c${idCounter.toString(36)}${Math.floor(Math.random() * 0xffffff).toString(36)}`
}
