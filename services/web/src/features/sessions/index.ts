export { SessionsSidebar, sessionTitle, type SessionsSidebarProps } from './components/sessions-sidebar'
export {
  sessionsKeys,
  sessionsQueryOptions,
  sessionQueryOptions,
  useSessions,
  useCreateSession,
  useRenameSession,
  useDeleteSession,
  type SessionSummary,
  type SessionState,
} from './api/sessions'
