import { useEffect, useId, useRef, useState, type FormEvent, type MouseEvent } from 'react'
import { KeyRoundIcon, LogOutIcon } from 'lucide-react'
import { AlertDialog, AlertDialogTrigger } from '@/components/ui/alert-dialog'
import { ConfirmContent } from '@/components/confirm-content'
import { Button } from '@/components/ui/button'
import { Input } from '@/components/ui/input'
import { Label } from '@/components/ui/label'
import { ApiError } from '@/lib/api-client'
import { useChangePassword, useLogoutAll } from '../api/account'

/** The server's minimum (and maximum) password length; everything else (common passwords, the username) it checks. */
const MIN_PASSWORD = 8
const MAX_PASSWORD = 256

function problem(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 403) return 'The current password is wrong.'
    return err.message // 422: why the new password was refused, in the server's words
  }
  return 'Cannot reach the server. Check your connection and try again.'
}

export interface AccountSettingsProps {
  /** A password change or a sign-out everywhere succeeded; this tab is logged out right after (the login page
   * follows, and after logging in again the user comes back here). */
  onSignedOut?: (what: 'password' | 'everywhere') => void
}

/** Account settings: change the password, sign out of all devices. */
export function AccountSettings({ onSignedOut }: AccountSettingsProps) {
  return (
    <div className="flex flex-col gap-8">
      <ChangePasswordForm onChanged={() => onSignedOut?.('password')} />
      <SignOutEverywhere onDone={() => onSignedOut?.('everywhere')} />
    </div>
  )
}

function ChangePasswordForm({ onChanged }: { onChanged: () => void }) {
  const change = useChangePassword(onChanged)
  const [current, setCurrent] = useState('')
  const [next, setNext] = useState('')
  const [clientError, setClientError] = useState<string | null>(null)
  const ids = { current: useId(), next: useId(), hint: useId(), error: useId() }
  const error = clientError ?? (change.error ? problem(change.error) : null)
  // A refusal puts the focus in the field to fix (the button, disabled while waiting, would have dropped it).
  const currentField = useRef<HTMLInputElement>(null)
  const nextField = useRef<HTMLInputElement>(null)
  const submitButton = useRef<HTMLButtonElement>(null)

  const submit = (e: FormEvent) => {
    e.preventDefault()
    setClientError(null)
    change.reset()
    if (!current) {
      setClientError('Enter your current password.')
      currentField.current?.focus()
      return
    }
    if (next.length < MIN_PASSWORD || next.length > MAX_PASSWORD) {
      setClientError(`The new password needs ${MIN_PASSWORD} to ${MAX_PASSWORD} characters.`)
      nextField.current?.focus()
      return
    }
    change.mutate({ current_password: current, new_password: next })
  }
  const failure = change.error
  useEffect(() => {
    if (!failure) return
    const field = !(failure instanceof ApiError) ? submitButton : failure.status === 403 ? currentField : nextField
    field.current?.focus()
  }, [failure])

  return (
    <section aria-labelledby="password-heading" className="flex flex-col gap-3">
      <h2 id="password-heading" className="text-base font-semibold">
        Change password
      </h2>
      <p className="text-sm text-muted-foreground">
        Changing your password signs you out everywhere, this tab included: log in again with the new one.
      </p>
      <form onSubmit={submit} className="grid max-w-md gap-3" noValidate>
        <div className="flex flex-col gap-1.5">
          <Label htmlFor={ids.current}>Current password</Label>
          <Input
            id={ids.current}
            ref={currentField}
            type="password"
            autoComplete="current-password"
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            aria-invalid={change.error instanceof ApiError && change.error.status === 403}
            aria-describedby={error ? ids.error : undefined}
          />
        </div>
        <div className="flex flex-col gap-1.5">
          <Label htmlFor={ids.next}>New password</Label>
          <Input
            id={ids.next}
            ref={nextField}
            type="password"
            autoComplete="new-password"
            value={next}
            onChange={(e) => setNext(e.target.value)}
            aria-describedby={error ? `${ids.hint} ${ids.error}` : ids.hint}
          />
          <p id={ids.hint} className="text-xs text-muted-foreground">
            {MIN_PASSWORD} to {MAX_PASSWORD} characters; not a common password, not your username.
          </p>
        </div>
        {error && (
          <p id={ids.error} role="alert" className="text-sm text-destructive">
            {error}
          </p>
        )}
        <div>
          <Button ref={submitButton} type="submit" disabled={change.isPending}>
            <KeyRoundIcon aria-hidden />
            {change.isPending ? 'Changing…' : 'Change password'}
          </Button>
        </div>
      </form>
    </section>
  )
}

function SignOutEverywhere({ onDone }: { onDone: () => void }) {
  const logoutAll = useLogoutAll(onDone)
  const [confirming, setConfirming] = useState(false)

  const confirm = (e: MouseEvent) => {
    e.preventDefault() // stays open (both buttons disabled) until the server answers
    logoutAll.mutate(undefined, { onSettled: () => setConfirming(false) }) // an error shows beside the button
  }
  const openChange = (open: boolean) => {
    if (!logoutAll.isPending) setConfirming(open)
  }

  return (
    <section aria-labelledby="everywhere-heading" className="flex flex-col gap-3">
      <h2 id="everywhere-heading" className="text-base font-semibold">
        Sign out of all devices
      </h2>
      <p className="text-sm text-muted-foreground">
        Ends every login of yours — other browsers, other devices and this tab — and closes their live
        connections. Personal access tokens end too.
      </p>
      {logoutAll.error && (
        <p role="alert" className="text-sm text-destructive">
          {problem(logoutAll.error)}
        </p>
      )}
      <AlertDialog open={confirming} onOpenChange={openChange}>
        <div>
          <AlertDialogTrigger asChild>
            <Button variant="destructive">
              <LogOutIcon aria-hidden />
              Sign out of all devices
            </Button>
          </AlertDialogTrigger>
        </div>
        <ConfirmContent
          title="Sign out of all devices?"
          description="Every login of yours ends, this tab included, and so do your personal access tokens. You will need to log in again on each device."
          action="Sign out everywhere"
          pendingAction="Signing out…"
          pending={logoutAll.isPending}
          onConfirm={confirm}
        />
      </AlertDialog>
    </section>
  )
}
