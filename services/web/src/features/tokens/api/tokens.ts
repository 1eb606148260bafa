import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'

export type TokenScope = 'read' | 'write'

/** A personal access token as `GET /api/tokens` lists it: never the secret. */
export interface PersonalToken {
  id: string
  name: string
  scope: TokenScope
  session_id: string | null
  hint: string
  created_at: string
  expires_at: string | null
  last_used_at: string | null
}

/** `POST /api/tokens` answers with the secret, once. */
export interface CreatedToken extends PersonalToken {
  token: string
}

export interface TokenInput {
  name: string
  scope: TokenScope
  session_id?: string
  expires_days?: number
}

export const tokensKeys = { all: ['tokens'] as const }

export function useTokens() {
  return useQuery({
    queryKey: tokensKeys.all,
    queryFn: ({ signal }) => apiFetch<PersonalToken[]>('/api/tokens', { signal }),
  })
}

export function useCreateToken() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (input: TokenInput) => apiFetch<CreatedToken>('/api/tokens', { method: 'POST', json: input }),
    onSuccess: () => qc.invalidateQueries({ queryKey: tokensKeys.all }),
  })
}

export function useRevokeToken() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (id: string) => apiFetch<void>(`/api/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' }),
    onSuccess: () => qc.invalidateQueries({ queryKey: tokensKeys.all }),
  })
}
