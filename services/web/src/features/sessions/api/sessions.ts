import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'
import type { components } from '@/lib/generated/api'
import type { HistoryMessage, WireNode } from '@/lib/protocol'

type Schemas = components['schemas']

/** `GET /api/sessions` items (generated from the API's OpenAPI document). */
export type SessionSummary = Schemas['SessionSummary']

/**
 * `GET /api/sessions/{id}` and `POST /api/sessions`. The API declares `tree`
 * and `history` as plain objects; they are a protocol node and chat messages.
 */
export type SessionState = Omit<Schemas['SessionState'], 'tree' | 'history'> & {
  tree: WireNode
  history: HistoryMessage[]
}

/** A member of a shared session (`GET …/members`; the owner is listed first with role `owner`). */
export type Member = Schemas['Member']
export type MemberRole = Schemas['MemberAdd']['role']

export const sessionsKeys = {
  all: ['sessions'] as const,
  list: () => [...sessionsKeys.all, 'list'] as const,
  detail: (id: string) => [...sessionsKeys.all, 'detail', id] as const,
  members: (id: string) => [...sessionsKeys.all, 'members', id] as const,
}

export const sessionsQueryOptions = () =>
  queryOptions({
    queryKey: sessionsKeys.list(),
    queryFn: async ({ signal }) => {
      const list = await apiFetch<SessionSummary[]>('/api/sessions', { signal })
      // most recent first
      return [...list].sort((a, b) => b.updated_at.localeCompare(a.updated_at))
    },
    staleTime: 10_000,
  })

export const sessionQueryOptions = (id: string) =>
  queryOptions({
    queryKey: sessionsKeys.detail(id),
    queryFn: ({ signal }) => apiFetch<SessionState>(`/api/sessions/${encodeURIComponent(id)}`, { signal }),
  })

export function useSessions() {
  return useQuery(sessionsQueryOptions())
}

export function useCreateSession() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (input: Schemas['SessionCreate'] = {}) =>
      apiFetch<SessionState>('/api/sessions', { method: 'POST', json: input.title ? { title: input.title } : {} }),
    onSuccess: () => qc.invalidateQueries({ queryKey: sessionsKeys.list() }),
  })
}

export function useRenameSession() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ id, title }: { id: string; title: string }) =>
      apiFetch<Schemas['SessionPatched']>(`/api/sessions/${encodeURIComponent(id)}`, {
        method: 'PATCH',
        json: { title } satisfies Schemas['SessionPatch'],
      }),
    onSuccess: () => qc.invalidateQueries({ queryKey: sessionsKeys.all }),
  })
}

export function useDeleteSession() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (id: string) => apiFetch<void>(`/api/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' }),
    onSuccess: (_data, id) => {
      qc.removeQueries({ queryKey: sessionsKeys.detail(id) })
      return qc.invalidateQueries({ queryKey: sessionsKeys.list() })
    },
  })
}

/** The owner turns review mode on or off (`PATCH /api/sessions/{id}` `{review_mode}`). */
export function useSetReviewMode() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ id, on }: { id: string; on: boolean }) =>
      apiFetch<Schemas['SessionPatched']>(`/api/sessions/${encodeURIComponent(id)}`, {
        method: 'PATCH',
        json: { review_mode: on } satisfies Schemas['SessionPatch'],
      }),
    onSuccess: (_data, { id }) => qc.invalidateQueries({ queryKey: sessionsKeys.detail(id) }),
  })
}

const membersPath = (id: string, username?: string) =>
  `/api/sessions/${encodeURIComponent(id)}/members${username === undefined ? '' : `/${encodeURIComponent(username)}`}`

/** `enabled` false: not fetched (e.g. no session yet). */
export function useMembers(id: string, enabled = true) {
  return useQuery({
    queryKey: sessionsKeys.members(id),
    queryFn: ({ signal }) => apiFetch<Member[]>(membersPath(id), { signal }),
    enabled,
  })
}

export function useAddMember(id: string) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (body: Schemas['MemberAdd']) => apiFetch<Member>(membersPath(id), { method: 'POST', json: body }),
    onSuccess: () => qc.invalidateQueries({ queryKey: sessionsKeys.members(id) }),
  })
}

export function useChangeMemberRole(id: string) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ username, role }: { username: string; role: MemberRole }) =>
      apiFetch<Member>(membersPath(id, username), {
        method: 'PATCH',
        json: { role } satisfies Schemas['MemberRolePatch'],
      }),
    onSuccess: () => qc.invalidateQueries({ queryKey: sessionsKeys.members(id) }),
  })
}

export function useRemoveMember(id: string) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (username: string) => apiFetch<void>(membersPath(id, username), { method: 'DELETE' }),
    onSuccess: () => qc.invalidateQueries({ queryKey: sessionsKeys.members(id) }),
  })
}
