import { useMutation } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'
import type { OutlineFormat } from '../model/files'

export interface ImportResult {
  rev: number
  added: number
  ids: string[]
  /** `proposed`: the session is in review mode; nothing was applied until an editor accepts. */
  status?: 'applied' | 'proposed'
}

export interface ImportedSession {
  session_id: string
  title: string
}

/** The session's tree as a file's text (the server names the format's layout). */
export async function exportSession(sessionId: string, format: OutlineFormat): Promise<string> {
  const body = await apiFetch<unknown>(
    `/api/sessions/${encodeURIComponent(sessionId)}/export?format=${format}`,
  )
  return typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`
}

export interface ImportInput {
  format: OutlineFormat
  content: string
  /** Into this session (under its root) when set; else a new session. */
  sessionId?: string | null
  title?: string
}

export function useImport() {
  return useMutation({
    mutationFn: async ({ format, content, sessionId, title }: ImportInput) => {
      if (sessionId) {
        const result = await apiFetch<ImportResult>(`/api/sessions/${encodeURIComponent(sessionId)}/import`, {
          method: 'POST',
          json: { format, content, parent_id: 'root' },
        })
        return { sessionId, added: result.added, proposed: result.status === 'proposed' }
      }
      const created = await apiFetch<ImportedSession>('/api/sessions/import', {
        method: 'POST',
        json: { format, content, ...(title ? { title } : {}) },
      })
      return { sessionId: created.session_id, added: null, proposed: false }
    },
  })
}
