import { useMutation } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'
import { auth, type TokenResponse } from '@/lib/auth'

export interface Credentials {
  username: string
  password: string
}

/** OAuth2 password form: `application/x-www-form-urlencoded` `username=..&password=..`. */
export async function login({ username, password }: Credentials): Promise<TokenResponse> {
  const token = await apiFetch<TokenResponse>('/api/auth/login', {
    method: 'POST',
    form: { username, password },
    auth: false,
  })
  auth.setSession(token)
  return token
}

export function useLogin() {
  return useMutation({ mutationFn: login })
}
