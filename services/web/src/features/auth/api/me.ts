import { queryOptions, useQuery } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'

export interface Me {
  id: string | number
  username: string
}

export const meQueryOptions = () =>
  queryOptions({
    queryKey: ['auth', 'me'],
    queryFn: ({ signal }) => apiFetch<Me>('/api/auth/me', { signal }),
    staleTime: 5 * 60_000,
  })

export function useMe() {
  return useQuery(meQueryOptions())
}
