/**
 * fetch wrapper for the REST API: JSON in and out, the bearer token from the
 * in-memory auth store, and on a 401 one refresh through the HttpOnly cookie
 * then one retry; a second 401 logs out.
 */
import { auth } from './auth'

export class ApiError extends Error {
  readonly status: number
  readonly detail: unknown
  constructor(status: number, message: string, detail?: unknown) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.detail = detail
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'
  /** JSON body */
  json?: unknown
  /** application/x-www-form-urlencoded body */
  form?: Record<string, string>
  /** Send the bearer token (and refresh on 401). Default true. */
  auth?: boolean
  signal?: AbortSignal
}

/** A readable message from FastAPI's `{"detail": ...}` (a string or a list of validation errors). */
export function detailMessage(detail: unknown, fallback: string): string {
  if (typeof detail === 'string' && detail) return detail
  if (Array.isArray(detail)) {
    const msgs = detail
      .map((d) => (d && typeof d === 'object' && 'msg' in d ? String((d as { msg: unknown }).msg) : null))
      .filter((m): m is string => !!m)
    if (msgs.length) return msgs.join('; ')
  }
  return fallback
}

async function send(path: string, opts: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  let body: BodyInit | undefined
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.json)
  } else if (opts.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(opts.form).toString()
  }
  if (token) headers.Authorization = `Bearer ${token}`
  return fetch(path, {
    method: opts.method ?? (body ? 'POST' : 'GET'),
    headers,
    body,
    credentials: 'same-origin',
    signal: opts.signal,
  })
}

export async function apiFetch<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const useAuth = opts.auth !== false
  let token = useAuth ? await auth.getFreshToken().catch(() => auth.getAccessToken()) : null
  let res = await send(path, opts, token)
  if (res.status === 401 && useAuth) {
    token = await auth.refresh().catch(() => null)
    if (token) res = await send(path, opts, token)
    if (!token || res.status === 401) {
      auth.clear()
      throw new ApiError(401, 'Your session has expired. Please log in again.')
    }
  }
  if (res.status === 204) return undefined as T
  let payload: unknown = null
  const text = await res.text()
  if (text) {
    try {
      payload = JSON.parse(text)
    } catch {
      payload = text
    }
  }
  if (!res.ok) {
    const detail = payload && typeof payload === 'object' && 'detail' in payload ? payload.detail : payload
    throw new ApiError(res.status, detailMessage(detail, `Request failed (${res.status})`), detail)
  }
  return payload as T
}
