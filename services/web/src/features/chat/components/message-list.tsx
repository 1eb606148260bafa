import { useEffect, useRef, useState } from 'react'
import { CheckIcon, ChevronRightIcon, CopyIcon } from 'lucide-react'
import { Collapsible, CollapsibleContent, CollapsibleTrigger } from '@/components/ui/collapsible'
import { cn } from '@/lib/utils'
import { authorLabel, type ChatMessage, type ProposalNote, type Truncation } from '../model/chat-reducer'
import { Markdown } from './markdown'

export interface MessageListProps {
  messages: ChatMessage[]
  /** A chat of several people: prompts show who wrote them ("You" for `me`'s). */
  shared?: boolean
  /** The signed-in user's name (their prompts show as "You"). */
  me?: string | null
}

export function MessageList({ messages, shared = false, me = null }: MessageListProps) {
  const ref = useRef<HTMLDivElement>(null)
  const stick = useRef(true)

  useEffect(() => {
    const el = ref.current
    if (el && stick.current) el.scrollTop = el.scrollHeight
  }, [messages])

  return (
    <div
      ref={ref}
      role="log"
      aria-label="Conversation"
      tabIndex={0}
      onScroll={(e) => {
        const el = e.currentTarget
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48
      }}
      className="min-h-0 flex-1 overflow-y-auto rounded-md outline-none focus-visible:ring-[3px] focus-visible:ring-ring/50"
    >
      {messages.length === 0 ? (
        <p className="p-4 text-sm text-muted-foreground">
          Ask the assistant to change the tree, e.g. “Add a new node with value ‘Task 1’ under root”.
        </p>
      ) : (
        <ol className="flex flex-col gap-3 p-1">
          {messages.map((m) => (
            <MessageItem key={m.key} message={m} author={shared ? authorLabel(m, me) : null} shared={shared} />
          ))}
        </ol>
      )}
    </div>
  )
}

const TRUNCATION_NOTES: Record<Truncation, string> = {
  length: 'The answer was cut short: the model reached its output limit.',
  content_filter: "The answer was cut short by the provider's content filter.",
}

function ProposalItem({ note }: { note: ProposalNote }) {
  return (
    <li className="flex flex-col items-start gap-1" data-role="proposal">
      <div
        role="note"
        aria-label="Proposal"
        className="max-w-[92%] rounded-lg border border-amber-500/50 bg-amber-500/5 px-3 py-2 text-sm"
      >
        {note.summary && (
          <p>
            <span className="font-medium">
              Proposal ({note.count} {note.count === 1 ? 'change' : 'changes'}, {note.author}):
            </span>{' '}
            {note.summary}
          </p>
        )}
        <p className={cn('text-xs', note.outcome ? 'text-foreground' : 'text-muted-foreground')}>
          {note.outcome ?? 'Waiting for review'}
        </p>
      </div>
    </li>
  )
}

/** What a screen reader hears before a message whose author is not shown: whose it is, as far as known. */
function speaker(isUser: boolean, shared: boolean): string {
  if (!isUser) return 'Assistant:'
  return shared ? 'Prompt:' : 'You:' // alone in a session every prompt is one's own
}

function MessageItem({ message: m, author, shared }: { message: ChatMessage; author: string | null; shared: boolean }) {
  if (m.proposal) return <ProposalItem note={m.proposal} />
  const isUser = m.role === 'user'
  return (
    <li
      className={cn('group/msg flex flex-col gap-1', isUser ? 'items-end' : 'items-start')}
      aria-busy={m.streaming || undefined}
      data-role={m.role}
    >
      {author !== null ? (
        // The name as text (not a colour), read first like the hidden "You:" of a solo chat.
        <span className="px-1 text-xs font-medium text-muted-foreground">
          <span>{author}</span>
          <span className="sr-only">:</span>
        </span>
      ) : (
        <span className="sr-only">{speaker(isUser, shared)}</span>
      )}
      {m.reasoning.length > 0 && <Reasoning steps={m.reasoning} running={m.streaming} />}
      {(m.text || m.streaming || !m.error) && (
        <div
          className={cn(
            'max-w-[92%] rounded-lg px-3 py-2 text-sm break-words',
            isUser ? 'bg-primary whitespace-pre-wrap text-primary-foreground' : 'bg-muted text-foreground',
          )}
        >
          {isUser ? (
            m.text
          ) : m.text ? (
            <Markdown>{m.text}</Markdown>
          ) : m.streaming ? (
            <span className="text-muted-foreground">Thinking…</span>
          ) : null}
          {m.streaming && m.text && (
            <span aria-hidden className="ml-0.5 inline-block animate-pulse">
              ▍
            </span>
          )}
        </div>
      )}
      {!m.streaming && (m.text || m.at) && <MessageTools text={m.text} at={m.at} />}
      {m.pending && <span className="text-xs text-muted-foreground">Pending: sent when the connection is back</span>}
      {m.cancelled && <span className="text-xs text-muted-foreground">Stopped</span>}
      {m.truncated && (
        <span className="text-xs text-muted-foreground" role="note">
          {TRUNCATION_NOTES[m.truncated]}
        </span>
      )}
      {m.error && (
        <span className="text-xs text-destructive" role="note">
          {m.error}
        </span>
      )}
    </li>
  )
}

const timeFormat =
  typeof Intl !== 'undefined' ? new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : null

/** When a message was written and a copy button: shown on hover or keyboard focus, out of the way otherwise. */
function MessageTools({ text, at }: { text: string; at?: string }) {
  const [copied, setCopied] = useState(false)
  const when = at ? new Date(at) : null
  const valid = when !== null && !Number.isNaN(when.getTime())
  useEffect(() => {
    if (!copied) return
    const t = setTimeout(() => setCopied(false), 1500)
    return () => clearTimeout(t)
  }, [copied])
  return (
    <div className="flex items-center gap-1 text-xs text-muted-foreground opacity-0 transition-opacity group-focus-within/msg:opacity-100 group-hover/msg:opacity-100">
      {valid && (
        <time dateTime={when.toISOString()} title={when.toLocaleString()}>
          {timeFormat ? timeFormat.format(when) : when.toLocaleString()}
        </time>
      )}
      {text && (
        <button
          type="button"
          aria-label={copied ? 'Copied' : 'Copy text'}
          title="Copy text"
          className="inline-flex size-6 items-center justify-center rounded-sm outline-none hover:bg-accent hover:text-foreground focus-visible:ring-[3px] focus-visible:ring-ring/50"
          onClick={() => {
            void navigator.clipboard?.writeText(text).then(
              () => setCopied(true),
              () => undefined,
            )
          }}
        >
          {copied ? <CheckIcon aria-hidden className="size-3.5" /> : <CopyIcon aria-hidden className="size-3.5" />}
        </button>
      )}
    </div>
  )
}

function Reasoning({ steps, running }: { steps: string[]; running: boolean }) {
  return (
    <Collapsible className="max-w-[92%] text-xs text-muted-foreground">
      <CollapsibleTrigger className="group inline-flex items-center gap-1 rounded-sm outline-none hover:text-foreground focus-visible:ring-[3px] focus-visible:ring-ring/50">
        <ChevronRightIcon aria-hidden className="size-3.5 transition-transform group-data-[state=open]:rotate-90" />
        Reasoning ({steps.length} {steps.length === 1 ? 'step' : 'steps'}){running ? '…' : ''}
      </CollapsibleTrigger>
      <CollapsibleContent>
        <ol className="mt-1 list-decimal space-y-0.5 border-l pl-6 whitespace-pre-wrap">
          {steps.map((s, i) => (
            <li key={i}>{s}</li>
          ))}
        </ol>
      </CollapsibleContent>
    </Collapsible>
  )
}
