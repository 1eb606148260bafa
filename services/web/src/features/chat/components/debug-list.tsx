import type { DebugEntry } from '../model/chat-reducer'

function flatten(data: unknown, prefix = '', out: Array<[string, string]> = []): Array<[string, string]> {
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    for (const [k, v] of Object.entries(data)) flatten(v, prefix ? `${prefix}.${k}` : k, out)
  } else {
    out.push([prefix || 'value', typeof data === 'string' ? data : JSON.stringify(data)])
  }
  return out
}

function timeOf(iso: string): string {
  const t = Date.parse(iso)
  return Number.isNaN(t) ? iso : new Date(t).toLocaleTimeString()
}

/** The `debug` frames of this session's turns: timings and figures, newest first. */
export function DebugList({ entries }: { entries: DebugEntry[] }) {
  if (entries.length === 0)
    return <p className="p-4 text-sm text-muted-foreground">Timings of each turn appear here.</p>
  return (
    <ol className="flex flex-col gap-2 p-1" aria-label="Debug frames">
      {[...entries].reverse().map((e) => (
        <li key={e.key} className="rounded-md border p-2 text-xs">
          <div className="mb-1 font-medium">{timeOf(e.at)}</div>
          <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-0.5 font-mono">
            {flatten(e.data).map(([k, v]) => (
              <div key={k} className="contents">
                <dt className="text-muted-foreground">{k}</dt>
                <dd className="break-all">{v}</dd>
              </div>
            ))}
          </dl>
        </li>
      ))}
    </ol>
  )
}
