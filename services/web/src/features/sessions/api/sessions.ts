import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'
import type { HistoryMessage, TreeNode } from '@/lib/protocol'

export interface SessionSummary {
  session_id: string
  title: string | null
  updated_at: string | null
  node_count: number
}

export interface SessionState {
  session_id: string
  title: string | null
  tree: TreeNode
  rev: number
  history: HistoryMessage[]
}

export const sessionsKeys = {
  all: ['sessions'] as const,
  list: () => [...sessionsKeys.all, 'list'] as const,
  detail: (id: string) => [...sessionsKeys.all, 'detail', id] as const,
}

function asList(body: unknown): SessionSummary[] {
  if (Array.isArray(body)) return body as SessionSummary[]
  if (body && typeof body === 'object') {
    for (const key of ['sessions', 'items', 'results']) {
      const v = (body as Record<string, unknown>)[key]
      if (Array.isArray(v)) return v as SessionSummary[]
    }
  }
  return []
}

export const sessionsQueryOptions = () =>
  queryOptions({
    queryKey: sessionsKeys.list(),
    queryFn: async ({ signal }) => {
      const list = asList(await apiFetch<unknown>('/api/sessions', { signal }))
      // most recent first
      return [...list].sort((a, b) => String(b.updated_at ?? '').localeCompare(String(a.updated_at ?? '')))
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
    mutationFn: (input: { title?: string } = {}) =>
      apiFetch<SessionState>('/api/sessions', { method: 'POST', json: input.title ? { title: input.title } : {} }),
    onSuccess: () => qc.invalidateQueries({ queryKey: sessionsKeys.list() }),
  })
}

export function useRenameSession() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ id, title }: { id: string; title: string }) =>
      apiFetch<unknown>(`/api/sessions/${encodeURIComponent(id)}`, { method: 'PATCH', json: { title } }),
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
