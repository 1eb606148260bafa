import { createBrowserRouter, Navigate, type RouteObject } from 'react-router'
import { LoginRoute } from './routes/login'
import { RequireAuth } from './routes/require-auth'
import { FullPageMessage } from './components/full-page-message'

export const routes: RouteObject[] = [
  { path: '/login', element: <LoginRoute /> },
  {
    element: <RequireAuth />,
    children: [
      {
        // One route object for "/" and "/sessions/:id", so switching sessions keeps the
        // dashboard (and its WebSocket) mounted. Loaded lazily: not in the initial bundle.
        id: 'dashboard',
        lazy: async () => ({ Component: (await import('./routes/dashboard')).DashboardRoute }),
        HydrateFallback: () => <FullPageMessage>Loading…</FullPageMessage>,
        children: [
          { index: true, element: null },
          { path: 'sessions/:id', element: null },
        ],
      },
      {
        path: 'settings/account',
        lazy: async () => ({ Component: (await import('./routes/account')).AccountRoute }),
        HydrateFallback: () => <FullPageMessage>Loading…</FullPageMessage>,
      },
      {
        path: 'settings/tokens',
        lazy: async () => ({ Component: (await import('./routes/settings')).SettingsRoute }),
        HydrateFallback: () => <FullPageMessage>Loading…</FullPageMessage>,
      },
    ],
  },
  { path: '*', element: <Navigate to="/" replace /> },
]

export function createRouter() {
  return createBrowserRouter(routes)
}
