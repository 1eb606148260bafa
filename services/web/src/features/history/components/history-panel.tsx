import { useMemo } from 'react'
import { HistoryIcon } from 'lucide-react'
import { Badge } from '@/components/ui/badge'
import { Button } from '@/components/ui/button'
import type { TreeNode } from '@/lib/protocol'
import { cn } from '@/lib/utils'
import { useHistory, type HistoryItem } from '../api/history'
import { readableSummary, valuesOf } from '../model/summary'

export interface HistoryPanelProps {
  sessionId: string
  /** Hovering (or focusing) a change set: the nodes it touched; null when the pointer leaves. */
  onHighlight: (nodes: string[] | null) => void
  /** The tree as it is: a summary that names a node by its id shows the node's value instead. */
  tree?: TreeNode | null
  className?: string
}

const VIA: Record<string, string> = { user: 'edit', assistant: 'assistant', agent: 'agent', import: 'import' }

function timeText(iso: string | null): string {
  if (!iso) return ''
  const t = Date.parse(iso)
  return Number.isNaN(t) ? '' : new Date(t).toLocaleString()
}

/** The session's change sets (actor, time, summary, rev, undone), newest first, paged. */
export function HistoryPanel({ sessionId, onHighlight, tree = null, className }: HistoryPanelProps) {
  const history = useHistory(sessionId)
  const pages = history.data?.pages
  const items = useMemo(() => pages?.flatMap((p) => p.items) ?? [], [pages])
  // Only the ids the summaries name are looked up: one walk of the tree, none when every summary has values.
  const values = useMemo(() => {
    const named = new Set(items.flatMap((item) => item.nodes.filter((id) => item.summary.includes(id))))
    return valuesOf(tree, named)
  }, [items, tree])
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
          <HistoryEntry
            key={item.number}
            item={item}
            summary={readableSummary(item.summary, item.nodes, values)}
            onHighlight={onHighlight}
          />
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

function HistoryEntry({
  item,
  summary,
  onHighlight,
}: {
  item: HistoryItem
  summary: string
  onHighlight: (nodes: string[] | null) => void
}) {
  const show = () => onHighlight(item.nodes)
  const hide = () => onHighlight(null)
  return (
    <li
      tabIndex={0}
      aria-label={`${summary}, by ${item.actor.username}${item.undone ? ', undone' : ''}`}
      onMouseEnter={show}
      onFocus={show}
      onBlur={hide}
      className={cn(
        'rounded-md border px-2 py-1.5 text-sm outline-none hover:bg-accent focus-visible:ring-[3px] focus-visible:ring-ring/50',
        item.undone && 'opacity-60',
      )}
    >
      <div className={cn('break-words', item.undone && 'line-through')}>{summary}</div>
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
