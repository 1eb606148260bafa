export { SessionsSidebar, type SessionsSidebarProps } from './components/sessions-sidebar'
export { ShareDialog } from './components/share-dialog'
export { ReviewModeSwitch, type ReviewModeSwitchProps } from './components/review-mode-switch'
export { sessionTitle } from './components/session-title'
export {
  sessionsKeys,
  sessionsQueryOptions,
  sessionQueryOptions,
  useSessions,
  useCreateSession,
  useRenameSession,
  useDeleteSession,
  useMembers,
  useSetReviewMode,
  type Member,
  type SessionSummary,
  type SessionState,
} from './api/sessions'
