import { useId, useRef, useState, type FormEvent } from 'react'
import { Link } from 'react-router'
import { toast } from 'sonner'
import { MoreHorizontalIcon, PencilIcon, PlusIcon, Share2Icon, Trash2Icon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from '@/components/ui/dialog'
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuTrigger,
} from '@/components/ui/dropdown-menu'
import { Input } from '@/components/ui/input'
import { Label } from '@/components/ui/label'
import { cn } from '@/lib/utils'
import {
  useCreateSession,
  useDeleteSession,
  useRenameSession,
  useSessions,
  type SessionSummary,
} from '../api/sessions'
import { sessionTitle } from './session-title'
import { ShareDialog } from './share-dialog'

export interface SessionsSidebarProps {
  activeId: string | null
  /** A session was created: open it. */
  onCreated: (id: string) => void
  /** A session was deleted (the app leaves it when it was the open one). */
  onDeleted: (id: string) => void
  className?: string
  id?: string
}


const rtf = typeof Intl !== 'undefined' ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null

function relativeTime(iso: string | null): string {
  if (!iso) return ''
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return ''
  const secs = Math.round((t - Date.now()) / 1000)
  const abs = Math.abs(secs)
  if (!rtf) return new Date(t).toLocaleString()
  if (abs < 60) return rtf.format(secs, 'second')
  if (abs < 3600) return rtf.format(Math.round(secs / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(secs / 3600), 'hour')
  return rtf.format(Math.round(secs / 86400), 'day')
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : 'Something went wrong'
}

export function SessionsSidebar({ activeId, onCreated, onDeleted, className, id }: SessionsSidebarProps) {
  const sessions = useSessions()
  const create = useCreateSession()
  const [action, setAction] = useState<SessionAction | null>(null)
  const [query, setQuery] = useState('')
  const headingId = useId()
  const searchId = useId()
  const needle = query.trim().toLocaleLowerCase()
  const matching = needle
    ? sessions.data?.filter((s) => sessionTitle(s).toLocaleLowerCase().includes(needle))
    : sessions.data
  const own = matching?.filter((s) => s.role === 'owner') ?? []
  const shared = matching?.filter((s) => s.role !== 'owner') ?? []
  const close = () => setAction(null)
  const navRef = useRef<HTMLElement>(null)
  const actedOn = useRef<string | null>(null)
  const onAction = (a: SessionAction) => {
    actedOn.current = a.session.session_id
    setAction(a)
  }
  // A session's dialog closed: the menu item that opened it is gone, so the focus goes back to that session's
  // actions button, or (the session deleted) to the first session in the list, else to "New session".
  const returnFocus = (e: Event) => {
    e.preventDefault()
    const nav = navRef.current
    if (!nav) return
    const buttons = Array.from(nav.querySelectorAll<HTMLElement>('[data-session-actions]'))
    const back = buttons.find((b) => b.dataset.sessionActions === actedOn.current)
    ;(back ?? nav.querySelector<HTMLElement>('li a') ?? nav.querySelector<HTMLElement>('button'))?.focus()
  }

  return (
    <nav ref={navRef} id={id} aria-labelledby={headingId} className={cn('flex min-h-0 flex-col gap-2', className)}>
      <div className="flex items-center justify-between gap-2 px-3 pt-3">
        <h2 id={headingId} className="text-sm font-semibold">
          Sessions
        </h2>
        <Button
          size="sm"
          variant="outline"
          disabled={create.isPending}
          onClick={() =>
            create.mutate(
              {},
              {
                onSuccess: (s) => onCreated(s.session_id),
                onError: (err) => toast.error(`Could not create a session: ${errorText(err)}`),
              },
            )
          }
        >
          <PlusIcon aria-hidden />
          New session
        </Button>
      </div>
      {sessions.data && sessions.data.length > 0 && (
        <div className="px-3">
          <Label htmlFor={searchId} className="sr-only">
            Search sessions
          </Label>
          <Input
            id={searchId}
            type="search"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            placeholder="Search sessions"
            className="h-8"
          />
        </div>
      )}
      <div className="min-h-0 flex-1 overflow-y-auto px-2 pb-3">
        {sessions.isPending && <p className="px-2 py-1 text-sm text-muted-foreground">Loading…</p>}
        {sessions.isError && (
          <p role="alert" className="px-2 py-1 text-sm text-destructive">
            Could not load sessions.{' '}
            <button type="button" className="underline" onClick={() => sessions.refetch()}>
              Retry
            </button>
          </p>
        )}
        {sessions.data && sessions.data.length === 0 && (
          <p className="px-2 py-1 text-sm text-muted-foreground">No sessions yet.</p>
        )}
        {needle && matching?.length === 0 && (
          <p role="status" className="px-2 py-1 text-sm text-muted-foreground">
            No session matches “{query.trim()}”.
          </p>
        )}
        <SessionList sessions={own} activeId={activeId} onAction={onAction} />
        {shared.length > 0 && (
          <>
            <h3 className="px-2 pt-3 pb-1 text-xs font-semibold text-muted-foreground uppercase">Shared with me</h3>
            <SessionList sessions={shared} activeId={activeId} onAction={onAction} label="Shared with me" />
          </>
        )}
      </div>
      {action?.kind === 'rename' && (
        <RenameDialog session={action.session} onClose={close} onCloseAutoFocus={returnFocus} />
      )}
      {action?.kind === 'share' && (
        <ShareDialog session={action.session} onClose={close} onCloseAutoFocus={returnFocus} />
      )}
      {action?.kind === 'delete' && (
        <DeleteDialog
          session={action.session}
          onClose={close}
          onCloseAutoFocus={returnFocus}
          onDeleted={(id) => {
            close()
            onDeleted(id)
          }}
        />
      )}
    </nav>
  )
}

interface SessionAction {
  kind: 'rename' | 'share' | 'delete'
  session: SessionSummary
}

function SessionList({
  sessions,
  activeId,
  onAction,
  label,
}: {
  sessions: SessionSummary[]
  activeId: string | null
  onAction: (action: SessionAction) => void
  label?: string
}) {
  return (
    <ul aria-label={label} className="flex flex-col gap-0.5">
      {sessions.map((s) => {
        const active = s.session_id === activeId
        const title = sessionTitle(s)
        const isOwner = s.role === 'owner'
        return (
          <li key={s.session_id} className="group relative">
            <Link
              to={`/sessions/${encodeURIComponent(s.session_id)}`}
              aria-current={active ? 'page' : undefined}
              className={cn(
                'flex flex-col rounded-md px-2 py-1.5 pr-9 text-sm outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50',
                active && 'bg-accent font-medium text-accent-foreground',
              )}
            >
              <span className="truncate">{title}</span>
              <span className="text-xs font-normal text-muted-foreground">
                {isOwner ? '' : `${s.owner} · ${s.role} · `}
                {s.node_count} {s.node_count === 1 ? 'node' : 'nodes'}
                {s.updated_at ? ` · ${relativeTime(s.updated_at)}` : ''}
              </span>
            </Link>
            {/* Not modal: a modal menu hides the rest of the page with aria-hidden while it keeps focusable
                elements (axe: aria-hidden-focus); Escape and a click outside still close it. */}
            {s.role !== 'viewer' && (
              <DropdownMenu modal={false}>
                <DropdownMenuTrigger asChild>
                  <Button
                    variant="ghost"
                    size="icon-sm"
                    className="absolute top-1.5 right-1"
                    aria-label={`Actions for ${title}`}
                    data-session-actions={s.session_id}
                  >
                    <MoreHorizontalIcon aria-hidden />
                  </Button>
                </DropdownMenuTrigger>
                <DropdownMenuContent align="end">
                  {isOwner && (
                    <DropdownMenuItem onSelect={() => onAction({ kind: 'share', session: s })}>
                      <Share2Icon aria-hidden /> Share
                    </DropdownMenuItem>
                  )}
                  <DropdownMenuItem onSelect={() => onAction({ kind: 'rename', session: s })}>
                    <PencilIcon aria-hidden /> Rename
                  </DropdownMenuItem>
                  {isOwner && (
                    <DropdownMenuItem variant="destructive" onSelect={() => onAction({ kind: 'delete', session: s })}>
                      <Trash2Icon aria-hidden /> Delete
                    </DropdownMenuItem>
                  )}
                </DropdownMenuContent>
              </DropdownMenu>
            )}
          </li>
        )
      })}
    </ul>
  )
}

interface SessionDialogProps {
  session: SessionSummary
  onClose: () => void
  /** Where the focus goes once the dialog has closed (see SessionsSidebar's returnFocus). */
  onCloseAutoFocus: (e: Event) => void
}

function RenameDialog({ session, onClose, onCloseAutoFocus }: SessionDialogProps) {
  const rename = useRenameSession()
  const [title, setTitle] = useState(session.title ?? '')
  const inputId = useId()

  function onSubmit(e: FormEvent) {
    e.preventDefault()
    const t = title.trim()
    if (!t) return
    rename.mutate(
      { id: session.session_id, title: t },
      { onSuccess: onClose, onError: (err) => toast.error(`Could not rename: ${errorText(err)}`) },
    )
  }

  return (
    <Dialog open onOpenChange={(open) => !open && onClose()}>
      <DialogContent onCloseAutoFocus={onCloseAutoFocus}>
        <form onSubmit={onSubmit} className="grid gap-4">
          <DialogHeader>
            <DialogTitle>Rename session</DialogTitle>
            <DialogDescription>Give “{sessionTitle(session)}” a new title.</DialogDescription>
          </DialogHeader>
          <div className="grid gap-2">
            <Label htmlFor={inputId}>Title</Label>
            <Input id={inputId} value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)} autoFocus />
          </div>
          <DialogFooter>
            <Button variant="outline" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" disabled={!title.trim() || rename.isPending}>
              Save
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  )
}

function DeleteDialog({
  session,
  onClose,
  onCloseAutoFocus,
  onDeleted,
}: SessionDialogProps & { onDeleted: (id: string) => void }) {
  const del = useDeleteSession()
  return (
    <Dialog open onOpenChange={(open) => !open && onClose()}>
      <DialogContent onCloseAutoFocus={onCloseAutoFocus}>
        <DialogHeader>
          <DialogTitle>Delete session?</DialogTitle>
          <DialogDescription>
            “{sessionTitle(session)}”, its tree and its chat will be deleted for good.
          </DialogDescription>
        </DialogHeader>
        <DialogFooter>
          <Button variant="outline" onClick={onClose}>
            Cancel
          </Button>
          <Button
            variant="destructive"
            disabled={del.isPending}
            onClick={() =>
              del.mutate(session.session_id, {
                onSuccess: () => onDeleted(session.session_id),
                onError: (err) => toast.error(`Could not delete: ${errorText(err)}`),
              })
            }
          >
            Delete
          </Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  )
}
