import { toast } from 'sonner'
import { cn } from '@/lib/utils'
import { useSetReviewMode } from '../api/sessions'

export interface ReviewModeSwitchProps {
  sessionId: string
  on: boolean
  /** The server took the change (this tab's state follows; other tabs learn it on their next session_ready). */
  onChanged: (on: boolean) => void
  className?: string
}

/** The owner's review mode switch: the assistant proposes changes instead of making them. */
export function ReviewModeSwitch({ sessionId, on, onChanged, className }: ReviewModeSwitchProps) {
  const set = useSetReviewMode()
  return (
    <button
      type="button"
      role="switch"
      aria-checked={on}
      disabled={set.isPending}
      title="When on, the assistant's changes wait for an editor's review"
      onClick={() =>
        set.mutate(
          { id: sessionId, on: !on },
          {
            onSuccess: (summary) => onChanged(summary.review_mode),
            onError: (err) => toast.error(`Could not change review mode: ${err.message}`),
          },
        )
      }
      className={cn(
        'inline-flex items-center gap-2 rounded-md px-2 py-1 text-sm outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50 disabled:opacity-50',
        className,
      )}
    >
      <span
        aria-hidden
        className={cn(
          'relative inline-flex h-4 w-7 items-center rounded-full transition-colors',
          on ? 'bg-amber-500' : 'bg-muted-foreground/30',
        )}
      >
        <span
          className={cn(
            'absolute size-3 rounded-full bg-white shadow transition-transform',
            on ? 'translate-x-3.5' : 'translate-x-0.5',
          )}
        />
      </span>
      Review mode
    </button>
  )
}
