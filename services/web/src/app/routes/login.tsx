import { Navigate, useLocation, useNavigate } from 'react-router'
import { TreeDeciduousIcon } from 'lucide-react'
import { LoginForm } from '@/features/auth'
import { useAuthState } from '@/lib/use-auth'
import { FullPageMessage } from '../components/full-page-message'

/** Where to go after logging in: the path the user first asked for, if it is one of ours. */
export function redirectTarget(state: unknown): string {
  const from = state && typeof state === 'object' && 'from' in state ? (state as { from: unknown }).from : null
  if (typeof from === 'string' && from.startsWith('/') && !from.startsWith('//') && !from.startsWith('/login'))
    return from
  return '/'
}

export function LoginRoute() {
  const { status } = useAuthState()
  const location = useLocation()
  const navigate = useNavigate()
  const target = redirectTarget(location.state)

  if (status === 'unknown') return <FullPageMessage>Loading…</FullPageMessage>
  if (status === 'authenticated') return <Navigate to={target} replace />

  return (
    <main className="flex min-h-dvh flex-col items-center justify-center gap-6 p-4">
      <p className="flex items-center gap-2 text-2xl font-semibold tracking-tight">
        <TreeDeciduousIcon aria-hidden className="size-7 text-emerald-600 dark:text-emerald-400" />
        Canopy
      </p>
      <LoginForm onSuccess={() => navigate(target, { replace: true })} />
    </main>
  )
}
