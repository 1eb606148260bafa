/**
 * The access token, in memory only (never localStorage/sessionStorage).
 *
 * The refresh token lives in an HttpOnly cookie the browser sends to
 * `POST /api/auth/refresh`; `init()` uses it on page load, and a timer renews
 * the access token a minute before it expires. Refreshes are serialized across
 * tabs with the Web Locks API where available, because the refresh cookie is
 * single use (rotated).
 */

export interface TokenResponse {
  access_token: string
  token_type?: string
  expires_in: number
}

export type AuthStatus = 'unknown' | 'authenticated' | 'anonymous'

export interface AuthState {
  status: AuthStatus
}

type Listener = () => void

const REFRESH_URL = '/api/auth/refresh'
/** Renew this long before expiry (or at 80 % of a shorter lifetime). */
const RENEW_MARGIN_MS = 60_000
/** A token closer than this to its expiry is not handed out for a new connection. */
const MIN_VALIDITY_MS = 15_000
/**
 * "This browser has logged in and not out": a hint (no secret) kept beside the HttpOnly refresh cookie, which
 * scripts cannot see. Without it, the page-load check skips the refresh call that could only answer 401
 * (Chromium logs every 401 as a console error). A hint that outlived its cookie costs one 401 and is dropped.
 */
const SIGNED_IN_HINT = 'canopy.signed-in'

function hint(value?: boolean): boolean {
  try {
    if (value === true) localStorage.setItem(SIGNED_IN_HINT, '1')
    else if (value === false) localStorage.removeItem(SIGNED_IN_HINT)
    return localStorage.getItem(SIGNED_IN_HINT) === '1'
  } catch {
    return true // no storage: ask the server, as before
  }
}

export class AuthStore {
  private token: string | null = null
  private expiresAt = 0
  private state: AuthState = { status: 'unknown' }
  private refreshing: Promise<string | null> | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private listeners = new Set<Listener>()
  private initialized: Promise<void> | null = null

  getState = (): AuthState => this.state

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  getAccessToken(): string | null {
    return this.token
  }

  /** Store a token answer from login or refresh and schedule its renewal. */
  setSession(resp: TokenResponse): void {
    this.token = resp.access_token
    const lifetime = Math.max(1, Number(resp.expires_in) || 0) * 1000
    this.expiresAt = Date.now() + lifetime
    this.schedule(lifetime - Math.min(RENEW_MARGIN_MS, lifetime * 0.2))
    hint(true)
    this.setStatus('authenticated')
  }

  /** Forget the token (logout, or a refresh that failed for good). */
  clear(): void {
    this.token = null
    this.expiresAt = 0
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    hint(false)
    this.setStatus('anonymous')
  }

  /** On page load: try the refresh cookie once (when this browser has logged in and not out). */
  init(): Promise<void> {
    if (!this.initialized && !hint()) {
      this.setStatus('anonymous')
      this.initialized = Promise.resolve()
    }
    if (!this.initialized) {
      this.initialized = this.refresh().then(
        () => undefined,
        () => {
          if (this.state.status === 'unknown') this.setStatus('anonymous')
        },
      )
    }
    return this.initialized
  }

  /**
   * A new access token from the refresh cookie. Resolves null (and logs out)
   * when the server says no; rejects on network or server errors.
   */
  refresh(): Promise<string | null> {
    if (!this.refreshing) {
      this.refreshing = withLock('canopy-auth-refresh', () => this.doRefresh()).finally(() => {
        this.refreshing = null
      })
    }
    return this.refreshing
  }

  /** A token valid for a while yet, refreshing first when needed (or when `force`). */
  async getFreshToken({ force = false }: { force?: boolean } = {}): Promise<string | null> {
    if (!force && this.token && this.expiresAt - Date.now() > MIN_VALIDITY_MS) return this.token
    if (!force && this.state.status === 'anonymous') return null
    return this.refresh()
  }

  private async doRefresh(): Promise<string | null> {
    const res = await fetch(REFRESH_URL, {
      method: 'POST',
      credentials: 'include',
      headers: { Accept: 'application/json' },
    })
    if (res.status === 401 || res.status === 403) {
      this.clear()
      return null
    }
    if (!res.ok) throw new Error(`refresh failed with ${res.status}`)
    const body = (await res.json()) as TokenResponse
    this.setSession(body)
    return body.access_token
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(
      () => {
        this.timer = null
        this.refresh().catch(() => {
          // Network trouble: try again shortly while the current token still lives.
          if (this.token && this.expiresAt > Date.now()) this.schedule(10_000)
        })
      },
      Math.max(1_000, ms),
    )
  }

  private setStatus(status: AuthStatus): void {
    if (this.state.status === status) return
    this.state = { status }
    for (const l of this.listeners) l()
  }
}

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined
  if (locks && typeof locks.request === 'function') {
    return locks.request(name, fn) as Promise<T>
  }
  return fn()
}

/** The application's one auth store. */
export const auth = new AuthStore()
