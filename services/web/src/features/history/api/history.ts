import { infiniteQueryOptions, useInfiniteQuery } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'
import type { components } from '@/lib/generated/api'

export type HistoryItem = components['schemas']['HistoryItem']
export type HistoryPage = components['schemas']['HistoryPage']

/** Change sets per page (the server allows 1–200). */
export const HISTORY_PAGE = 30

export const historyKeys = {
  all: ['history'] as const,
  session: (id: string) => [...historyKeys.all, id] as const,
}

export const historyQueryOptions = (sessionId: string) =>
  infiniteQueryOptions({
    queryKey: historyKeys.session(sessionId),
    queryFn: ({ pageParam, signal }) => {
      const params = new URLSearchParams({ limit: String(HISTORY_PAGE) })
      if (pageParam !== null) params.set('before', String(pageParam))
      return apiFetch<HistoryPage>(`/api/sessions/${encodeURIComponent(sessionId)}/history?${params}`, { signal })
    },
    initialPageParam: null as number | null,
    getNextPageParam: (last) => last.next_before,
  })

/** The session's change sets, newest first, one page at a time (`fetchNextPage` for older ones). */
export function useHistory(sessionId: string) {
  return useInfiniteQuery(historyQueryOptions(sessionId))
}
