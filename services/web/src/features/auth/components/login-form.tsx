import { useEffect, useId, useRef, useState, type FormEvent } from 'react'
import { Button } from '@/components/ui/button'
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from '@/components/ui/card'
import { Input } from '@/components/ui/input'
import { Label } from '@/components/ui/label'
import { ApiError } from '@/lib/api-client'
import { useLogin } from '../api/login'
import { useRegister } from '../api/register'

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/

function loginError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Invalid username or password.'
    if (err.status === 429) return 'Too many attempts. Please wait a moment and try again.'
    return err.message
  }
  return 'Cannot reach the server. Check your connection and try again.'
}

function registerError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 409) return 'That username is already taken.'
    if (err.status === 422)
      return 'Username: 3–32 letters, digits, “_”, “.” or “-”. Password: 8 to 256 characters.'
    return loginError(err)
  }
  return loginError(err)
}

export interface LoginFormProps {
  onSuccess: () => void
  initialMode?: 'login' | 'register'
}

/** Log in, or create an account (register, then log in). */
export function LoginForm({ onSuccess, initialMode = 'login' }: LoginFormProps) {
  const [mode, setMode] = useState<'login' | 'register'>(initialMode)
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [clientError, setClientError] = useState<string | null>(null)
  const loginMutation = useLogin()
  const registerMutation = useRegister()
  const ids = { user: useId(), pass: useId(), err: useId(), hint: useId() }

  const registering = mode === 'register'
  const pending = loginMutation.isPending || registerMutation.isPending
  const serverError = registering
    ? registerMutation.error && registerError(registerMutation.error)
    : loginMutation.error && loginError(loginMutation.error)
  const error = clientError ?? serverError ?? null
  // A refusal puts the focus in the field to fix (the button, disabled while waiting, would have dropped it).
  const userField = useRef<HTMLInputElement>(null)
  const passField = useRef<HTMLInputElement>(null)
  const submitButton = useRef<HTMLButtonElement>(null)
  const failure = registering ? registerMutation.error : loginMutation.error
  useEffect(() => {
    if (!failure) return
    if (!(failure instanceof ApiError)) return void submitButton.current?.focus()
    const field = registering && failure.status === 409 ? userField.current : passField.current
    field?.focus()
    field?.select() // to type it again
  }, [failure, registering])

  function switchMode() {
    setMode(registering ? 'login' : 'register')
    setClientError(null)
    loginMutation.reset()
    registerMutation.reset()
  }

  function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault()
    setClientError(null)
    const credentials = { username: username.trim(), password }
    if (!credentials.username || !password) {
      setClientError('Enter your username and password.')
      ;(credentials.username ? passField : userField).current?.focus()
      return
    }
    if (registering) {
      if (!USERNAME_RE.test(credentials.username)) {
        setClientError('Username: 3–32 letters, digits, “_”, “.” or “-”.')
        userField.current?.focus()
        return
      }
      if (password.length < 8 || password.length > 256) {
        setClientError('Password: 8 to 256 characters.')
        passField.current?.focus()
        return
      }
      registerMutation.mutate(credentials, { onSuccess })
    } else {
      loginMutation.mutate(credentials, { onSuccess })
    }
  }

  return (
    <Card className="w-full max-w-sm">
      <CardHeader>
        <CardTitle>{registering ? 'Create an account' : 'Log in to Canopy'}</CardTitle>
        <CardDescription>
          {registering ? 'Choose a username and a password.' : 'Your assistant and its object tree.'}
        </CardDescription>
      </CardHeader>
      <form onSubmit={onSubmit} noValidate aria-describedby={error ? ids.err : undefined}>
        <CardContent className="flex flex-col gap-4">
          <div className="flex flex-col gap-2">
            <Label htmlFor={ids.user}>Username</Label>
            <Input
              id={ids.user}
              ref={userField}
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              spellCheck={false}
              required
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              aria-invalid={error ? true : undefined}
              aria-describedby={registering ? ids.hint : undefined}
            />
          </div>
          <div className="flex flex-col gap-2">
            <Label htmlFor={ids.pass}>Password</Label>
            <Input
              id={ids.pass}
              ref={passField}
              name="password"
              type="password"
              autoComplete={registering ? 'new-password' : 'current-password'}
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              aria-invalid={error ? true : undefined}
            />
          </div>
          {registering && (
            <p id={ids.hint} className="text-xs text-muted-foreground">
              Username: 3–32 letters, digits, “_”, “.” or “-”. Password: at least 8 characters.
            </p>
          )}
          {error && (
            <p id={ids.err} role="alert" className="text-sm text-destructive">
              {error}
            </p>
          )}
        </CardContent>
        <CardFooter className="mt-6 flex flex-col gap-2">
          <Button ref={submitButton} type="submit" className="w-full" disabled={pending}>
            {registering ? 'Create account' : 'Log in'}
          </Button>
          <Button type="button" variant="link" className="w-full" onClick={switchMode} disabled={pending}>
            {registering ? 'I already have an account' : 'Create account'}
          </Button>
        </CardFooter>
      </form>
    </Card>
  )
}
