import type { ConnectionState } from '@/lib/ws-client'
import { Badge } from '@/components/ui/badge'
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

export function ConnectionBadge({ state, className }: { state: ConnectionState; className?: string }) {
  return (
    <Badge role="status" aria-label="Connection status" variant={VARIANTS[state]} className={cn('gap-1.5', className)}>
      <span
        aria-hidden
        className={cn(
          'size-1.5 rounded-full bg-current',
          (state === 'connecting' || state === 'reconnecting') && 'animate-pulse',
        )}
      />
      {LABELS[state]}
    </Badge>
  )
}
