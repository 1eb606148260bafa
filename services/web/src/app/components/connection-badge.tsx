import type { ConnectionState } from '@/lib/ws-client'
import { Badge } from '@/components/ui/badge'
import { Button } from '@/components/ui/button'
import { cn } from '@/lib/utils'

const LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
}

const VARIANTS = {
  connecting: 'warning',
  connected: 'success',
  reconnecting: 'warning',
  offline: 'destructive',
} as const

export interface ConnectionBadgeProps {
  state: ConnectionState
  /** Why the socket is offline ('auth': no token was accepted; 'stopped': on purpose; 'revoked': removed from a shared session). */
  offlineReason?: 'auth' | 'stopped' | 'revoked' | null
  /** Shown as "Reconnect now" while waiting to reconnect, or offline for want of a token. */
  onReconnect?: () => void
  className?: string
}

export function ConnectionBadge({ state, offlineReason = null, onReconnect, className }: ConnectionBadgeProps) {
  const canReconnect = state === 'reconnecting' || (state === 'offline' && offlineReason === 'auth')
  return (
    <div className={cn('flex items-center gap-1.5', className)}>
      <Badge role="status" aria-label="Connection status" variant={VARIANTS[state]} className="gap-1.5">
        <span
          aria-hidden
          className={cn(
            'size-1.5 rounded-full bg-current',
            (state === 'connecting' || state === 'reconnecting') && 'animate-pulse',
          )}
        />
        {LABELS[state]}
      </Badge>
      {onReconnect && canReconnect && (
        <Button variant="ghost" size="sm" className="h-6 px-2 text-xs" onClick={onReconnect}>
          Reconnect now
        </Button>
      )}
    </div>
  )
}
