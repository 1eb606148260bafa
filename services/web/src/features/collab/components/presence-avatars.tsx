import type { PresenceUser } from '@/lib/protocol'
import { cn } from '@/lib/utils'
import { colorFor } from '../model/collab-reducer'

export interface PresenceAvatarsProps {
  users: PresenceUser[]
  /** The caller's username: shown as "you". */
  me: string | null | undefined
  className?: string
}

function describe(u: PresenceUser, me: string | null | undefined): string {
  const who = u.username === me ? `${u.username} (you)` : u.username
  const tabs = u.tabs > 1 ? `, ${u.tabs} tabs` : ''
  return `${who}, ${u.role}${tabs}${u.typing ? ', typing' : ''}`
}

/** Who is here: one round initial per user, coloured as their selection rings. */
export function PresenceAvatars({ users, me, className }: PresenceAvatarsProps) {
  if (users.length === 0) return null
  return (
    <ul aria-label="People here" className={cn('flex items-center -space-x-1.5', className)}>
      {users.map((u) => {
        const label = describe(u, me)
        return (
          <li
            key={u.username}
            aria-label={label}
            title={label}
            className="flex size-7 items-center justify-center rounded-full border-2 border-background text-xs font-semibold text-white uppercase select-none"
            style={{ backgroundColor: colorFor(u.username) }}
          >
            <span aria-hidden>{u.username.slice(0, 1)}</span>
          </li>
        )
      })}
    </ul>
  )
}
