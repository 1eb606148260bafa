import { useSyncExternalStore } from 'react'
import { auth, type AuthState } from './auth'

export function useAuthState(): AuthState {
  return useSyncExternalStore(auth.subscribe, auth.getState, auth.getState)
}
