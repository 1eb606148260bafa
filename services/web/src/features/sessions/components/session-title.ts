import type { SessionSummary } from '../api/sessions'

export function sessionTitle(s: Pick<SessionSummary, 'title'>): string {
  return s.title?.trim() || 'Untitled session'
}
