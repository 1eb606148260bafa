import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react'
import { Link, useMatch, useNavigate } from 'react-router'
import { useQueryClient } from '@tanstack/react-query'
import { toast } from 'sonner'
import { HistoryIcon, KeyRoundIcon, LogOutIcon, PanelLeftIcon, TreeDeciduousIcon, UserCogIcon } from 'lucide-react'
import { Badge } from '@/components/ui/badge'
import { Button } from '@/components/ui/button'
import { useLogout, useMe } from '@/features/auth'
import { ChatPanel, chatReducer, hasOtherAuthors, initialChatState } from '@/features/chat'
import {
  canEdit,
  collabReducer,
  initialCollabState,
  PresenceAvatars,
  proposalOverlay,
  selectionsOf,
  targetId,
  typingText,
} from '@/features/collab'
import { HistoryPanel } from '@/features/history'
import { ExportMenu, ImportDialog } from '@/features/interchange'
import {
  ReviewModeSwitch,
  SessionsSidebar,
  sessionsKeys,
  sessionTitle,
  useMembers,
  useSessions,
} from '@/features/sessions'
import { TreePanel, useTreeFeed, type TreeOp } from '@/features/tree'
import { auth } from '@/lib/auth'
import type { Delta } from '@/lib/protocol'
import { useSessionStatus, useSessionSocket } from '@/lib/use-session-socket'
import { cn } from '@/lib/utils'
import { ConnectionBadge } from '../components/connection-badge'
import { ProposalArea } from '../components/proposal-area'
import { SkipLinks } from '../components/skip-links'
import { useProposalSelection } from '../components/use-proposal-selection'
import { useCollabFrames } from './use-collab-frames'
import { useSelectionPresence } from './use-selection-presence'
import { useUndoState } from './use-undo-state'

/** How long Stop waits for the turn's end before freeing the composer anyway. */
const STOP_GRACE_MS = 3000
/** Tree changes refresh the sessions list (its node counts) at most this often. */
const LIST_REFRESH_MS = 1000
/** The sidebar's open/closed state: a UI preference, the only thing kept in localStorage. */
const SIDEBAR_KEY = 'canopy.sidebar-open'

function initialSidebarOpen(): boolean {
  try {
    const stored = window.localStorage.getItem(SIDEBAR_KEY)
    if (stored === 'true' || stored === 'false') return stored === 'true'
  } catch {
    // storage unavailable (private mode, disabled): fall back to the screen size
  }
  // The sessions list starts open beside the columns, folded away on narrow screens.
  return typeof window.matchMedia !== 'function' || window.matchMedia('(min-width: 768px)').matches
}

function rememberSidebar(open: boolean) {
  try {
    window.localStorage.setItem(SIDEBAR_KEY, String(open))
  } catch {
    // not remembered: nothing else depends on it
  }
}

/**
 * The dashboard for "/" (the most recent session) and "/sessions/:id": wires
 * the WebSocket session to the chat, tree and sessions features.
 */
export function DashboardRoute() {
  const match = useMatch('/sessions/:id')
  const routeId = match?.params.id ?? null
  const navigate = useNavigate()
  const queryClient = useQueryClient()
  const logout = useLogout()
  const me = useMe()
  const [sidebarOpen, setSidebarOpen] = useState(initialSidebarOpen)
  const [chat, dispatch] = useReducer(chatReducer, initialChatState)
  const [collab, dispatchCollab] = useReducer(collabReducer, initialCollabState)
  const [historyOpen, setHistoryOpen] = useState(false)
  /** Nodes a hovered history entry touched (the tree highlights them). */
  const [historyHighlight, setHistoryHighlight] = useState<string[] | null>(null)
  const stopTimer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const listTimer = useRef<ReturnType<typeof setTimeout> | null>(null)

  const client = useSessionSocket({
    sessionId: routeId,
    getToken: ({ force }) => auth.getFreshToken({ force }),
  })
  // The connection's status only: tree frames do not re-render the dashboard (nor the chat).
  const session = useSessionStatus(client)
  // The tree, at most once per animation frame.
  const feed = useTreeFeed(client)
  useCollabFrames(client, dispatchCollab, feed.catchUp)
  const undoState = useUndoState(client, session.sessionId)
  const proposals = useProposalSelection(collab.proposals)

  // Frames → chat state, toasts, and fresher session list.
  useEffect(() => {
    const offFrame = client.onFrame((frame) => {
      dispatch({ type: 'frame', frame })
      if (frame.type === 'error' && client.getSnapshot().ready) {
        // (an error before session_ready answers init_session: the session_error event reports it)
        const code = frame.error?.code
        const message = frame.error?.message ?? 'Something went wrong'
        toast.error(code ? `${message} (${code})` : message)
      } else if (frame.type === 'session_ready' || frame.type === 'session_updated') {
        // (session_updated: renamed or review mode changed, maybe in another tab: the list shows the title)
        void queryClient.invalidateQueries({ queryKey: sessionsKeys.list() })
      } else if (frame.type === 'assistant_response' && frame.data.chunk === false) {
        void queryClient.invalidateQueries({ queryKey: sessionsKeys.list() })
      } else if (frame.type === 'tree_update' && !listTimer.current) {
        // Node counts stay live: the list is fetched again shortly after the tree changes.
        listTimer.current = setTimeout(() => {
          listTimer.current = null
          void queryClient.invalidateQueries({ queryKey: sessionsKeys.list() })
        }, LIST_REFRESH_MS)
      }
      if (
        stopTimer.current &&
        (frame.type === 'error' || (frame.type === 'assistant_response' && frame.data.chunk === false))
      ) {
        clearTimeout(stopTimer.current)
        stopTimer.current = null
      }
    })
    const offEvent = client.onEvent((e) => {
      if (e.type === 'session_error') {
        toast.error(e.code === 404 ? 'That session does not exist (any more).' : e.message)
        navigate('/', { replace: true })
      } else if (e.type === 'access_revoked') {
        toast.error('Your access to this session was removed by its owner.', { duration: 10_000 })
        void queryClient.invalidateQueries({ queryKey: sessionsKeys.list() })
        navigate('/', { replace: true })
      } else if (e.type === 'auth_failed' && auth.getState().status === 'authenticated') {
        toast.error('The live connection was refused. Reload the page or log in again.')
      }
    })
    return () => {
      offFrame()
      offEvent()
    }
  }, [client, navigate, queryClient])

  // The route decides the session: a new id switches, "/" means the most recent one.
  useEffect(() => {
    if (client.getSnapshot().sessionId === routeId) return
    client.switchSession(routeId)
    dispatch({ type: 'reset' })
    dispatchCollab({ type: 'reset' })
  }, [client, routeId])

  // "/" attached to the most recent session (or a new one): show its address.
  useEffect(() => {
    if (!routeId && session.ready && session.sessionId) {
      navigate(`/sessions/${encodeURIComponent(session.sessionId)}`, { replace: true })
    }
  }, [routeId, session.ready, session.sessionId, navigate])

  useEffect(
    () => () => {
      if (stopTimer.current) clearTimeout(stopTimer.current)
      if (listTimer.current) clearTimeout(listTimer.current)
    },
    [],
  )

  const onSend = useCallback(
    (prompt: string) => {
      // Not ready: the socket queues it, and the chat shows it as pending until it is echoed.
      const queued = !client.getSnapshot().ready
      const id = client.send('user_prompt', { prompt })
      dispatch({ type: 'prompt_sent', id, text: prompt, queued })
    },
    [client],
  )

  const onStop = useCallback(() => {
    client.send('cancel', {})
    if (stopTimer.current) clearTimeout(stopTimer.current)
    stopTimer.current = setTimeout(() => {
      stopTimer.current = null
      dispatch({ type: 'turn_abandoned' })
    }, STOP_GRACE_MS)
  }, [client])

  const onOp = useCallback((op: TreeOp) => void client.send('tree_op', op), [client])
  const onUndo = useCallback(() => void client.send('undo', {}), [client])
  const onRedo = useCallback(() => void client.send('redo', {}), [client])
  const validateOp = useCallback((delta: Delta) => client.validate(delta), [client])
  const onReconnect = useCallback(() => client.reconnectNow(), [client])
  const onSelect = useSelectionPresence(client)
  const onTyping = useCallback((typing: boolean) => void client.send('presence_update', { typing }), [client])
  const onReviewModeChanged = useCallback((on: boolean) => dispatchCollab({ type: 'review_mode', on }), [])

  const activeId = session.sessionId ?? routeId
  const myName = me.data?.username ?? null
  // The owner may change our role while we are here: the next presence frame carries it.
  const role = collab.users.find((u) => u.username === myName)?.role ?? collab.role
  const editable = canEdit(role)
  // Per-row decorations of the tree, rebuilt only when what they show changes.
  const rings = useMemo(() => selectionsOf(collab.users, myName), [collab.users, myName])
  const overlay = useMemo(
    // No proposal (the usual case): nothing built, the tree keeps its empty default.
    () => (collab.proposals.length ? proposalOverlay(collab.proposals, proposals.selectedOf, feed.tree) : undefined),
    [collab.proposals, proposals.selectedOf, feed.tree],
  )
  const hoveredChange = proposals.hovered
  const emphasis = useMemo(() => {
    if (historyHighlight) return historyHighlight
    const delta = hoveredChange?.proposal.deltas[hoveredChange.index]
    return delta ? [targetId(delta)] : null
  }, [historyHighlight, hoveredChange])
  const sessions = useSessions()
  const active = sessions.data?.find((s) => s.session_id === activeId)
  // Only an owner needs the member list to know the session is shared (a member is one of two at least).
  const members = useMembers(activeId ?? '', role === 'owner' && activeId !== null)
  // More than one member (or someone else here, or someone else's prompt in the chat, a former member's
  // included): prompts show who wrote them. Alone in a session the chat looks as it always did.
  const sharedChat =
    role !== 'owner' ||
    (members.data?.length ?? 0) > 1 ||
    (myName !== null && (collab.users.some((u) => u.username !== myName) || hasOtherAuthors(chat.messages, myName)))

  return (
    <div className="flex h-dvh flex-col">
      <SkipLinks />
      {/* Wraps on a phone: every control stays on screen (a row of them would overflow 390 px). */}
      <header className="flex min-h-12 shrink-0 flex-wrap items-center gap-x-2 gap-y-1 border-b px-3 py-1.5">
        <Button
          variant="ghost"
          size="icon-sm"
          aria-label={sidebarOpen ? 'Hide sessions' : 'Show sessions'}
          aria-expanded={sidebarOpen}
          aria-controls="sessions-sidebar"
          onClick={() =>
            setSidebarOpen((o) => {
              rememberSidebar(!o)
              return !o
            })
          }
        >
          <PanelLeftIcon aria-hidden />
        </Button>
        <h1 className="flex items-center gap-1.5 font-semibold tracking-tight">
          <TreeDeciduousIcon aria-hidden className="size-5 text-emerald-600 dark:text-emerald-400" />
          Canopy
        </h1>
        <ConnectionBadge
          state={session.state}
          offlineReason={session.offlineReason}
          onReconnect={onReconnect}
          className="ml-2"
        />
        <div className="ml-auto flex flex-wrap items-center justify-end gap-2">
          <PresenceAvatars users={collab.users} me={myName} />
          {role === 'owner' && activeId ? (
            <ReviewModeSwitch sessionId={activeId} on={collab.reviewMode} onChanged={onReviewModeChanged} />
          ) : (
            collab.reviewMode && <Badge variant="warning">Review mode</Badge>
          )}
          {role !== 'owner' && <Badge variant="outline">{role === 'viewer' ? 'Viewer' : 'Editor'}</Badge>}
          <Button
            variant="ghost"
            size="sm"
            aria-pressed={historyOpen}
            onClick={() => {
              setHistoryOpen((o) => !o)
              setHistoryHighlight(null)
            }}
          >
            <HistoryIcon aria-hidden />
            <span className="sr-only sm:not-sr-only">History</span>
          </Button>
          {myName && <span className="hidden text-sm text-muted-foreground sm:inline">{myName}</span>}
          <ImportDialog
            sessionId={activeId}
            onImported={(id) => {
              void queryClient.invalidateQueries({ queryKey: sessionsKeys.list() })
              if (id !== activeId) navigate(`/sessions/${encodeURIComponent(id)}`)
            }}
          />
          <ExportMenu sessionId={activeId} title={active ? sessionTitle(active) : 'canopy-tree'} />
          <Button asChild variant="ghost" size="sm">
            <Link to="/settings/account">
              <UserCogIcon aria-hidden />
              <span className="sr-only sm:not-sr-only">Account</span>
            </Link>
          </Button>
          <Button asChild variant="ghost" size="sm">
            <Link to="/settings/tokens">
              <KeyRoundIcon aria-hidden />
              <span className="sr-only sm:not-sr-only">Access tokens</span>
            </Link>
          </Button>
          <Button
            variant="ghost"
            size="sm"
            onClick={() => logout.mutate(undefined, { onSettled: () => navigate('/login', { replace: true }) })}
            disabled={logout.isPending}
          >
            <LogOutIcon aria-hidden />
            <span className="sr-only sm:not-sr-only">Log out</span>
          </Button>
        </div>
      </header>
      <div className="flex min-h-0 flex-1 flex-col overflow-y-auto md:flex-row md:overflow-hidden">
        {sidebarOpen && (
          <SessionsSidebar
            id="sessions-sidebar"
            activeId={activeId}
            onCreated={(id) => navigate(`/sessions/${encodeURIComponent(id)}`)}
            onDeleted={(id) => {
              if (id === activeId) navigate('/', { replace: true })
            }}
            className="max-h-64 shrink-0 border-b md:max-h-none md:w-60 md:border-r md:border-b-0"
          />
        )}
        {/* On a phone the page scrolls and each part takes the height it needs (squeezed into the screen's height
            the tree's column collapsed, and the history panel after it was drawn over it). */}
        <main id="main" tabIndex={-1} className="flex min-w-0 flex-col outline-none md:min-h-0 md:flex-1 md:flex-row">
          <ChatPanel
            state={chat}
            canSend={session.state !== 'offline'}
            onSend={onSend}
            onStop={onStop}
            onTyping={editable ? onTyping : undefined}
            typingNote={typingText(collab.users, myName)}
            readOnly={!editable}
            shared={sharedChat}
            me={myName}
            className={cn('flex h-[75dvh] flex-col p-3 md:h-auto md:min-h-0 md:w-2/5 md:border-r')}
          />
          <div className="flex min-h-[70vh] min-w-0 flex-1 flex-col md:min-h-0 md:w-3/5">
          <ProposalArea
            client={client}
            tree={feed.tree}
            canDecide={editable}
            selection={proposals}
            className="px-3 pt-3"
          />
          <TreePanel
            tree={feed.tree}
            rev={feed.rev}
            lastChange={feed.lastChange}
            onOp={onOp}
            validate={validateOp}
            onUndo={onUndo}
            onRedo={onRedo}
            canUndo={undoState.canUndo && !chat.busy}
            canRedo={undoState.canRedo && !chat.busy}
            readOnly={!editable}
            onSelect={onSelect}
            emphasis={emphasis}
            rings={rings}
            changes={overlay?.changes}
            proposed={overlay?.proposed}
            onToggleChange={proposals.toggle}
            className="min-h-0 flex-1 p-3"
          />
          </div>
          {historyOpen && activeId && (
            <HistoryPanel
              sessionId={activeId}
              onHighlight={setHistoryHighlight}
              tree={feed.tree}
              className="max-h-80 shrink-0 border-t p-3 md:max-h-none md:w-72 md:border-t-0 md:border-l"
            />
          )}
        </main>
      </div>
    </div>
  )
}
