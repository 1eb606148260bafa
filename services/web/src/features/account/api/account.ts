/**
 * The account routes of the REST API (issue #12): both end every login of the caller, this tab's included —
 * the server bumps the token generation (access tokens and open sockets stop working) and answers with the
 * refresh cookie cleared — so afterwards the tab forgets its token and shows the login page.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { apiFetch } from '@/lib/api-client'
import { auth } from '@/lib/auth'

export interface PasswordChange {
  current_password: string
  new_password: string
}

/** `POST /api/auth/password`: 204; 403 when the current password is wrong, 422 when the new one is refused. */
export function changePassword(body: PasswordChange): Promise<void> {
  return apiFetch<void>('/api/auth/password', { method: 'POST', json: body })
}

/** `POST /api/auth/logout-all`: 204; every access token, refresh token and socket of the user ends. */
export function logoutAll(): Promise<void> {
  return apiFetch<void>('/api/auth/logout-all', { method: 'POST' })
}

/**
 * Done on this tab after either succeeded (the server already ended its login): forget the token and every
 * cached answer; the routes behind login then send the tab to the login page. In the mutation's own
 * `onSuccess`, so it happens even if the page is gone by the time the answer comes.
 */
function useSignedOut(then?: () => void) {
  const queryClient = useQueryClient()
  return () => {
    then?.()
    auth.clear()
    queryClient.clear()
  }
}

/** `then`: called once the password is changed, just before this tab is logged out. */
export function useChangePassword(then?: () => void) {
  const signedOut = useSignedOut(then)
  return useMutation({ mutationFn: changePassword, onSuccess: signedOut })
}

/** `then`: called once every login has ended, just before this tab is logged out. */
export function useLogoutAll(then?: () => void) {
  const signedOut = useSignedOut(then)
  return useMutation({ mutationFn: logoutAll, onSuccess: signedOut })
}
