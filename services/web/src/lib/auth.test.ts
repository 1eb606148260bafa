import { afterEach, describe, expect, it, vi } from 'vitest'
import { AuthStore } from './auth'

afterEach(() => {
  vi.unstubAllGlobals()
  localStorage.clear()
})

function stubFetch(status: number, body: unknown = {}) {
  const fetch = vi.fn(async () => new Response(JSON.stringify(body), { status }))
  vi.stubGlobal('fetch', fetch)
  return fetch
}

describe('AuthStore page-load check', () => {
  it('asks nothing of the server in a browser that never logged in (no 401 in the console)', async () => {
    const fetch = stubFetch(401)
    const store = new AuthStore()
    await store.init()
    expect(fetch).not.toHaveBeenCalled()
    expect(store.getState().status).toBe('anonymous')
  })

  it('refreshes from the cookie after a login in this browser, and forgets the hint on logout', async () => {
    new AuthStore().setSession({ access_token: 'a', expires_in: 1800 })
    const fetch = stubFetch(200, { access_token: 'b', expires_in: 1800 })
    const store = new AuthStore()
    await store.init()
    expect(fetch).toHaveBeenCalledTimes(1)
    expect(store.getAccessToken()).toBe('b')
    store.clear()
    const again = stubFetch(401)
    await new AuthStore().init()
    expect(again).not.toHaveBeenCalled()
  })

  it('a hint that outlived its cookie costs one 401, then none', async () => {
    new AuthStore().setSession({ access_token: 'a', expires_in: 1800 })
    const fetch = stubFetch(401)
    const first = new AuthStore()
    await first.init()
    expect(first.getState().status).toBe('anonymous')
    await new AuthStore().init()
    expect(fetch).toHaveBeenCalledTimes(1)
  })
})
