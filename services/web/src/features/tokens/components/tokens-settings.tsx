import { useRef, useState, type FormEvent, type MouseEvent, type RefObject } from 'react'
import { toast } from 'sonner'
import { CopyIcon, KeyRoundIcon, TrashIcon } from 'lucide-react'
import { AlertDialog } from '@/components/ui/alert-dialog'
import { ConfirmContent } from '@/components/confirm-content'
import { Button } from '@/components/ui/button'
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from '@/components/ui/dialog'
import { Input } from '@/components/ui/input'
import { Label } from '@/components/ui/label'
import { NativeSelect } from '@/components/ui/native-select'
import { ApiError } from '@/lib/api-client'
import {
  useCreateToken,
  useRevokeToken,
  useTokens,
  type CreatedToken,
  type PersonalToken,
  type TokenScope,
} from '../api/tokens'

export interface SessionChoice {
  id: string
  title: string
}

export interface TokensSettingsProps {
  /** The user's sessions, for limiting a token to one of them. */
  sessions: SessionChoice[]
}

const EXPIRY_CHOICES = [
  { label: '7 days', days: 7 },
  { label: '30 days', days: 30 },
  { label: '90 days', days: 90 },
  { label: '1 year', days: 365 },
  { label: 'Never', days: 0 },
]

function when(iso: string | null, never: string): string {
  return iso ? new Date(iso).toLocaleString() : never
}

/** The settings page for personal access tokens: create (the secret shown once), list, revoke. */
export function TokensSettings({ sessions }: TokensSettingsProps) {
  const tokens = useTokens()
  const [created, setCreated] = useState<CreatedToken | null>(null)
  const titles = new Map(sessions.map((s) => [s.id, s.title]))
  const nameField = useRef<HTMLInputElement>(null)
  const listHeading = useRef<HTMLHeadingElement>(null)

  return (
    <div className="flex flex-col gap-6">
      <section aria-labelledby="new-token-heading" className="flex flex-col gap-3">
        <h2 id="new-token-heading" className="text-base font-semibold">
          New token
        </h2>
        <p className="text-sm text-muted-foreground">
          A personal access token lets an outside agent (an MCP client such as Claude Desktop, or an AG-UI app) read
          or edit your trees at <code>/mcp</code> and <code>/api/agui/…</code>. It works nowhere else.
        </p>
        <CreateTokenForm sessions={sessions} onCreated={setCreated} nameField={nameField} />
      </section>
      <section aria-labelledby="tokens-heading" className="flex flex-col gap-3">
        <h2 id="tokens-heading" ref={listHeading} tabIndex={-1} className="text-base font-semibold outline-none">
          Your tokens
        </h2>
        {tokens.isPending && <p className="text-sm text-muted-foreground">Loading…</p>}
        {tokens.isError && <p className="text-sm text-destructive">Could not load your tokens.</p>}
        {tokens.data && tokens.data.length === 0 && <p className="text-sm text-muted-foreground">No tokens yet.</p>}
        {tokens.data && tokens.data.length > 0 && <TokenTable tokens={tokens.data} titles={titles} listHeading={listHeading} />}
      </section>
      {/* Closed: the focus goes back to the form (its Create button is disabled until a new name is typed). */}
      <CreatedTokenDialog token={created} onClose={() => setCreated(null)} returnFocus={nameField} />
    </div>
  )
}

function CreateTokenForm({
  sessions,
  onCreated,
  nameField,
}: {
  sessions: SessionChoice[]
  onCreated: (token: CreatedToken) => void
  nameField: RefObject<HTMLInputElement | null>
}) {
  const create = useCreateToken()
  const [name, setName] = useState('')
  const [scope, setScope] = useState<TokenScope>('write')
  const [sessionId, setSessionId] = useState('')
  const [days, setDays] = useState(90)

  const submit = (e: FormEvent) => {
    e.preventDefault()
    create.mutate(
      {
        name: name.trim(),
        scope,
        ...(sessionId ? { session_id: sessionId } : {}),
        ...(days ? { expires_days: days } : {}),
      },
      {
        onSuccess: (token) => {
          setName('')
          onCreated(token)
        },
        onError: (err) => toast.error(err instanceof ApiError ? err.message : 'Could not create the token'),
      },
    )
  }

  return (
    <form onSubmit={submit} className="grid gap-3 sm:grid-cols-2">
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="token-name">Name</Label>
        <Input
          id="token-name"
          ref={nameField}
          value={name}
          maxLength={100}
          required
          placeholder="Claude Desktop"
          onChange={(e) => setName(e.target.value)}
        />
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="token-scope">Access</Label>
        <NativeSelect
          id="token-scope"
          className="w-full"
          value={scope}
          onChange={(e) => setScope(e.target.value as TokenScope)}
        >
          <option value="write">Read and write</option>
          <option value="read">Read only</option>
        </NativeSelect>
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="token-session">Sessions</Label>
        <NativeSelect
          id="token-session"
          className="w-full"
          value={sessionId}
          onChange={(e) => setSessionId(e.target.value)}
        >
          <option value="">All my sessions</option>
          {sessions.map((s) => (
            <option key={s.id} value={s.id}>
              Only “{s.title}”
            </option>
          ))}
        </NativeSelect>
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="token-expiry">Expires after</Label>
        <NativeSelect
          id="token-expiry"
          className="w-full"
          value={days}
          onChange={(e) => setDays(Number(e.target.value))}
        >
          {EXPIRY_CHOICES.map((c) => (
            <option key={c.days} value={c.days}>
              {c.label}
            </option>
          ))}
        </NativeSelect>
      </div>
      <div className="sm:col-span-2">
        <Button type="submit" disabled={!name.trim() || create.isPending}>
          <KeyRoundIcon aria-hidden />
          Create token
        </Button>
      </div>
    </form>
  )
}

function TokenTable({
  tokens,
  titles,
  listHeading,
}: {
  tokens: PersonalToken[]
  titles: Map<string, string>
  listHeading: RefObject<HTMLHeadingElement | null>
}) {
  const revoke = useRevokeToken()
  const [asking, setAsking] = useState<PersonalToken | null>(null)
  const table = useRef<HTMLTableElement>(null)
  const revokedAt = useRef<number | null>(null)
  const opener = useRef<HTMLElement | null>(null)

  const confirm = (e: MouseEvent) => {
    e.preventDefault() // stays open (both buttons disabled) until the server answers
    const t = asking
    if (!t) return
    revoke.mutate(t.id, {
      onSuccess: () => {
        revokedAt.current = tokens.findIndex((x) => x.id === t.id)
        toast.success(`Revoked “${t.name}”`)
      },
      onError: () => toast.error('Could not revoke the token'),
      onSettled: () => setAsking(null),
    })
  }
  // Cancelled: back to the row's Revoke button (Radix would focus a Trigger, and there is none). Revoked: that
  // row is gone, so the focus goes to the Revoke button now in its place (or the one above), or to the list's
  // heading when none is left.
  const afterClose = (e: Event) => {
    e.preventDefault()
    const at = revokedAt.current
    revokedAt.current = null
    if (at === null) return void opener.current?.focus()
    const buttons = table.current?.querySelectorAll<HTMLElement>('button[data-revoke]') ?? []
    ;(buttons[Math.min(at, buttons.length - 1)] ?? listHeading.current)?.focus()
  }

  return (
    <div className="overflow-x-auto">
      <table ref={table} className="w-full text-left text-sm">
        <thead className="text-muted-foreground">
          <tr>
            <th className="py-1 pr-3 font-medium">Name</th>
            <th className="py-1 pr-3 font-medium">Access</th>
            <th className="py-1 pr-3 font-medium">Sessions</th>
            <th className="py-1 pr-3 font-medium">Created</th>
            <th className="py-1 pr-3 font-medium">Expires</th>
            <th className="py-1 pr-3 font-medium">Last used</th>
            <th className="py-1 font-medium">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => (
            <tr key={t.id} className="border-t">
              <td className="py-1.5 pr-3">
                {t.name} <code className="text-xs text-muted-foreground">{t.hint}…</code>
              </td>
              <td className="py-1.5 pr-3">{t.scope === 'write' ? 'Read and write' : 'Read only'}</td>
              <td className="py-1.5 pr-3">
                {t.session_id ? `Only “${titles.get(t.session_id) ?? t.session_id}”` : 'All'}
              </td>
              <td className="py-1.5 pr-3">{when(t.created_at, '')}</td>
              <td className="py-1.5 pr-3">{when(t.expires_at, 'Never')}</td>
              <td className="py-1.5 pr-3">{when(t.last_used_at, 'Never')}</td>
              <td className="py-1.5">
                <Button
                  variant="ghost"
                  size="sm"
                  aria-label={`Revoke ${t.name}`}
                  data-revoke
                  disabled={revoke.isPending}
                  onClick={(e) => {
                    opener.current = e.currentTarget
                    setAsking(t)
                  }}
                >
                  <TrashIcon aria-hidden />
                  Revoke
                </Button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <AlertDialog open={asking !== null} onOpenChange={(open) => !open && !revoke.isPending && setAsking(null)}>
        <ConfirmContent
          title={`Revoke “${asking?.name ?? ''}”?`}
          description="Whatever uses this token (an MCP client, an AG-UI app) loses its access at once. This cannot be undone; you can create a new token."
          action="Revoke"
          pendingAction="Revoking…"
          pending={revoke.isPending}
          onConfirm={confirm}
          onCloseAutoFocus={afterClose}
        />
      </AlertDialog>
    </div>
  )
}

function CreatedTokenDialog({
  token,
  onClose,
  returnFocus,
}: {
  token: CreatedToken | null
  onClose: () => void
  returnFocus: RefObject<HTMLElement | null>
}) {
  const copy = async () => {
    if (!token) return
    try {
      await navigator.clipboard.writeText(token.token)
      toast.success('Token copied')
    } catch {
      toast.error('Could not copy; select the token and copy it by hand')
    }
  }
  return (
    <Dialog open={token !== null} onOpenChange={(open) => !open && onClose()}>
      <DialogContent
        onCloseAutoFocus={(e) => {
          e.preventDefault()
          returnFocus.current?.focus()
        }}
      >
        <DialogHeader>
          <DialogTitle>Token “{token?.name}” created</DialogTitle>
          <DialogDescription>
            Copy it now: it is shown only once. Anyone holding it can act for you where its access allows.
          </DialogDescription>
        </DialogHeader>
        <Label htmlFor="new-token-secret" className="sr-only">
          Token
        </Label>
        <Input id="new-token-secret" readOnly value={token?.token ?? ''} onFocus={(e) => e.target.select()} />
        <DialogFooter>
          <Button variant="outline" onClick={() => void copy()}>
            <CopyIcon aria-hidden />
            Copy
          </Button>
          <Button onClick={onClose}>Done</Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  )
}
