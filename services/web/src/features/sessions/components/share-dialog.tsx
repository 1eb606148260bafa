import { useId, useState, type FormEvent } from 'react'
import { toast } from 'sonner'
import { UserPlusIcon, XIcon } from 'lucide-react'
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
import {
  useAddMember,
  useChangeMemberRole,
  useMembers,
  useRemoveMember,
  type MemberRole,
  type SessionSummary,
} from '../api/sessions'
import { sessionTitle } from './session-title'

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : 'Something went wrong'
}

/**
 * The owner's share dialog: add a member by username with a role, list the
 * members, change a role, remove one (their open tabs close at once).
 */
export function ShareDialog({
  session,
  onClose,
  onCloseAutoFocus,
}: {
  session: SessionSummary
  onClose: () => void
  /** Where the focus goes once the dialog has closed (the menu item that opened it is gone). */
  onCloseAutoFocus?: (e: Event) => void
}) {
  const id = session.session_id
  const members = useMembers(id)
  const add = useAddMember(id)
  const change = useChangeMemberRole(id)
  const remove = useRemoveMember(id)
  const [username, setUsername] = useState('')
  const [role, setRole] = useState<MemberRole>('editor')
  const [error, setError] = useState<string | null>(null)
  const userId = useId()
  const roleId = useId()

  function onSubmit(e: FormEvent) {
    e.preventDefault()
    const name = username.trim()
    if (!name) return
    setError(null)
    add.mutate(
      { username: name, role },
      { onSuccess: () => setUsername(''), onError: (err) => setError(errorText(err)) },
    )
  }

  return (
    <Dialog open onOpenChange={(open) => !open && onClose()}>
      <DialogContent onCloseAutoFocus={onCloseAutoFocus}>
        <DialogHeader>
          <DialogTitle>Share session</DialogTitle>
          <DialogDescription>
            Editors change “{sessionTitle(session)}” with you; viewers follow along.
          </DialogDescription>
        </DialogHeader>
        <form onSubmit={onSubmit} className="flex flex-wrap items-end gap-2">
          <div className="grid min-w-40 flex-1 gap-1.5">
            <Label htmlFor={userId}>Username</Label>
            <Input
              id={userId}
              value={username}
              maxLength={64}
              autoComplete="off"
              onChange={(e) => setUsername(e.target.value)}
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? `${userId}-error` : undefined}
            />
          </div>
          <div className="grid gap-1.5">
            <Label htmlFor={roleId}>Role</Label>
            <NativeSelect id={roleId} value={role} onChange={(e) => setRole(e.target.value as MemberRole)}>
              <option value="editor">Editor</option>
              <option value="viewer">Viewer</option>
            </NativeSelect>
          </div>
          <Button type="submit" disabled={!username.trim() || add.isPending}>
            <UserPlusIcon aria-hidden />
            Share
          </Button>
          {error && (
            <p id={`${userId}-error`} role="alert" className="w-full text-sm text-destructive">
              {error}
            </p>
          )}
        </form>
        <section aria-label="Members" className="grid gap-1">
          <h3 className="text-sm font-semibold">Members</h3>
          {members.isPending && <p className="text-sm text-muted-foreground">Loading…</p>}
          {members.isError && (
            <p role="alert" className="text-sm text-destructive">
              Could not load the members.
            </p>
          )}
          <ul className="flex flex-col gap-1">
            {members.data?.map((m) => (
              <li key={m.username} className="flex items-center gap-2 text-sm">
                <span className="min-w-0 flex-1 truncate">{m.username}</span>
                {m.role === 'owner' ? (
                  <span className="px-2 text-muted-foreground">Owner</span>
                ) : (
                  <>
                    <NativeSelect
                      aria-label={`Role of ${m.username}`}
                      value={m.role}
                      disabled={change.isPending}
                      onChange={(e) =>
                        change.mutate(
                          { username: m.username, role: e.target.value as MemberRole },
                          { onError: (err) => toast.error(`Could not change the role: ${errorText(err)}`) },
                        )
                      }
                     
                    >
                      <option value="editor">Editor</option>
                      <option value="viewer">Viewer</option>
                    </NativeSelect>
                    <Button
                      variant="ghost"
                      size="icon-sm"
                      aria-label={`Remove ${m.username}`}
                      disabled={remove.isPending}
                      onClick={() =>
                        remove.mutate(m.username, {
                          onError: (err) => toast.error(`Could not remove ${m.username}: ${errorText(err)}`),
                        })
                      }
                    >
                      <XIcon aria-hidden />
                    </Button>
                  </>
                )}
              </li>
            ))}
          </ul>
        </section>
        <DialogFooter>
          <Button variant="outline" onClick={onClose}>
            Done
          </Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  )
}
