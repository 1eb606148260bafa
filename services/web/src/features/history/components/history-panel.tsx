import { HistoryIcon } from 'lucide-react'
import { Badge } from '@/components/ui/badge'
import { Button } from '@/components/ui/button'
import { cn } from '@/lib/utils'
import { useHistory, type HistoryItem } from '../api/history'

export interface HistoryPanelProps {
  sessionId: string
  /** Hovering (or focusing) a change set: the nodes it touched; null when the pointer leaves. */
  onHighlight: (nodes: string[] | null) => void
  className?: string
}

const VIA: Record<string, string> = { user: 'edit', assistant: 'assistant', agent: 'agent', import: 'import' }

function timeText(iso: string | null): string {
  if (!iso) return ''
  const t = Date.parse(iso)
  return Number.isNaN(t) ? '' : new Date(t).toLocaleString()
}

/** The session's change sets (actor, time, summary, rev, undone), newest first, paged. */
export function HistoryPanel({ sessionId, onHighlight, className }: HistoryPanelProps) {
  const history = useHistory(sessionId)
  const items = history.data?.pages.flatMap((p) => p.items) ?? []
  return (
    <section aria-labelledby="history-heading" className={cn('flex min-h-0 flex-col gap-2', className)}>
      <h2 id="history-heading" className="flex items-center gap-1.5 text-sm font-semibold">
        <HistoryIcon aria-hidden className="size-4" />
        History
      </h2>
      {history.isPending && <p className="text-sm text-muted-foreground">Loading…</p>}
      {history.isError && (
        <p role="alert" className="text-sm text-destructive">
          Could not load the history.{' '}
          <button type="button" className="underline" onClick={() => history.refetch()}>
            Retry
          </button>
        </p>
      )}
      {history.isSuccess && items.length === 0 && <p className="text-sm text-muted-foreground">No changes yet.</p>}
      <ol aria-label="Change sets" className="flex min-h-0 flex-col gap-1 overflow-y-auto" onMouseLeave={() => onHighlight(null)}>
        {items.map((item) => (
          <HistoryEntry key={item.number} item={item} onHighlight={onHighlight} />
        ))}
      </ol>
      {history.hasNextPage && (
        <Button
          variant="outline"
          size="sm"
          disabled={history.isFetchingNextPage}
          onClick={() => void history.fetchNextPage()}
        >
          {history.isFetchingNextPage ? 'Loading…' : 'Load older'}
        </Button>
      )}
    </section>
  )
}

function HistoryEntry({ item, onHighlight }: { item: HistoryItem; onHighlight: (nodes: string[] | null) => void }) {
  const show = () => onHighlight(item.nodes)
  const hide = () => onHighlight(null)
  return (
    <li
      tabIndex={0}
      aria-label={`${item.summary}, by ${item.actor.username}${item.undone ? ', undone' : ''}`}
      onMouseEnter={show}
      onFocus={show}
      onBlur={hide}
      className={cn(
        'rounded-md border px-2 py-1.5 text-sm outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50',
        item.undone && 'opacity-60',
      )}
    >
      <div className={cn('break-words', item.undone && 'line-through')}>{item.summary}</div>
      <div className="flex flex-wrap items-center gap-1.5 text-xs text-muted-foreground">
        <span className="font-medium text-foreground">{item.actor.username}</span>
        <span>{VIA[item.actor.via] ?? item.actor.via}</span>
        {item.created_at && <time dateTime={item.created_at}>{timeText(item.created_at)}</time>}
        <span>rev {item.rev}</span>
        {item.undone && <Badge variant="secondary">undone</Badge>}
      </div>
    </li>
  )
}
