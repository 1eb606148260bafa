import { Navigate, Outlet, useLocation } from 'react-router'
import { useAuthState } from '@/lib/use-auth'
import { FullPageMessage } from '../components/full-page-message'

/** Routes behind login: wait for the silent refresh, else go to /login and remember where we were. */
export function RequireAuth() {
  const { status } = useAuthState()
  const location = useLocation()
  if (status === 'unknown') return <FullPageMessage>Loading…</FullPageMessage>
  if (status === 'anonymous') {
    const from = location.pathname + location.search + location.hash
    return <Navigate to="/login" replace state={{ from }} />
  }
  return <Outlet />
}
