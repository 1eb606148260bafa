import { useMutation } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'
import { login, type Credentials } from './login'

export interface RegisteredUser {
  id: string | number
  username: string
}

export function register(credentials: Credentials): Promise<RegisteredUser> {
  return apiFetch<RegisteredUser>('/api/auth/register', { method: 'POST', json: credentials, auth: false })
}

/** Create the account, then log in with it. */
export function useRegister() {
  return useMutation({
    mutationFn: async (credentials: Credentials) => {
      const user = await register(credentials)
      await login(credentials)
      return user
    },
  })
}
