import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react'
import { SendIcon, SquareIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import { Label } from '@/components/ui/label'
import { Tabs, TabsContent, TabsList, TabsTrigger } from '@/components/ui/tabs'
import { Textarea } from '@/components/ui/textarea'
import { cn } from '@/lib/utils'
import { lastPrompt, promptLength, type ChatState } from '../model/chat-reducer'
import { AssistantCheatSheet } from './cheat-sheet'
import { DebugList } from './debug-list'
import { MessageList } from './message-list'

/** The server's limit on a prompt, in characters (code points, as the server counts them). */
export const MAX_PROMPT = 4000
/** Typing stops counting after this long without a keystroke. */
export const TYPING_IDLE_MS = 2000
/** The counter shows from this many characters on. */
const COUNTER_FROM = MAX_PROMPT - 400

export interface ChatPanelProps {
  state: ChatState
  /** False while the connection is offline for good: nothing can be sent. */
  canSend: boolean
  onSend: (prompt: string) => void
  onStop: () => void
  /**
   * The user started (true) or stopped (false) typing: called on changes only, so
   * one keystroke after another sends nothing new; false after TYPING_IDLE_MS
   * without a keystroke, on send, on leaving the field and on unmount.
   */
  onTyping?: (typing: boolean) => void
  /** "alice is typing…" (shown above the composer), or null. */
  typingNote?: string | null
  /** A viewer's chat: the conversation without a composer. */
  readOnly?: boolean
  /** A session of more than one member: prompts show their author's name ("You" for one's own). */
  shared?: boolean
  /** The signed-in user's name, to tell their prompts from others'. */
  me?: string | null
  className?: string
}

/** Turns keystrokes into typing true/false transitions (debounced by TYPING_IDLE_MS). */
function useTypingSignal(onTyping: ((typing: boolean) => void) | undefined) {
  const typing = useRef(false)
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const callback = useRef(onTyping)
  useEffect(() => {
    callback.current = onTyping
  }, [onTyping])

  const stop = () => {
    if (timer.current) clearTimeout(timer.current)
    timer.current = null
    if (!typing.current) return
    typing.current = false
    callback.current?.(false)
  }
  const keystroke = () => {
    if (!typing.current) {
      typing.current = true
      callback.current?.(true)
    }
    if (timer.current) clearTimeout(timer.current)
    timer.current = setTimeout(stop, TYPING_IDLE_MS)
  }
  const stopRef = useRef(stop)
  useEffect(() => {
    stopRef.current = stop
  })
  useEffect(() => () => stopRef.current(), [])
  return { keystroke, stop }
}

export function ChatPanel({
  state,
  canSend,
  onSend,
  onStop,
  onTyping,
  typingNote = null,
  readOnly = false,
  shared = false,
  me = null,
  className,
}: ChatPanelProps) {
  const [draft, setDraft] = useState('')
  const typing = useTypingSignal(onTyping)
  const inputId = useId()
  const counterId = useId()
  const inputRef = useRef<HTMLTextAreaElement>(null)
  const prompt = draft.trim()
  const length = promptLength(prompt)
  // Over the limit the prompt is refused, never cut: the counter says by how much.
  const tooLong = length > MAX_PROMPT
  const disabled = state.busy || !canSend || !prompt || tooLong

  function submit(e?: FormEvent) {
    e?.preventDefault()
    if (disabled) return
    typing.stop()
    onSend(prompt)
    setDraft('')
    // Sent with the button: the focus comes back to the box (the button, disabled until the next prompt, drops it).
    inputRef.current?.focus()
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault()
      submit()
    } else if (e.key === 'ArrowUp' && draft === '' && !e.nativeEvent.isComposing) {
      // As in a shell: ↑ in an empty input brings the last prompt back to edit.
      const last = lastPrompt(state.messages)
      if (last !== null) {
        e.preventDefault()
        setDraft(last)
      }
    }
  }

  const pick = useCallback((example: string) => {
    setDraft(example)
    const el = inputRef.current
    if (el) {
      el.focus()
      el.setSelectionRange(example.length, example.length)
    }
  }, [])

  return (
    <Tabs defaultValue="chat" className={cn('min-h-0', className)}>
      <TabsList aria-label="Chat views">
        <TabsTrigger value="chat">Chat</TabsTrigger>
        <TabsTrigger value="debug">Debug</TabsTrigger>
      </TabsList>
      <TabsContent value="chat" className="flex min-h-0 flex-col gap-2">
        <MessageList messages={state.messages} shared={shared} me={me} />
        <p aria-live="polite" className="min-h-4 px-1 text-xs text-muted-foreground italic">
          {typingNote}
        </p>
        {readOnly ? (
          <p role="note" className="rounded-md border px-3 py-2 text-sm text-muted-foreground">
            You are a viewer of this session: you can follow along, not prompt or edit.
          </p>
        ) : (
        <form onSubmit={submit} className="flex flex-col gap-2">
          <Label htmlFor={inputId} className="sr-only">
            Message
          </Label>
          <Textarea
            ref={inputRef}
            id={inputId}
            value={draft}
            onChange={(e) => {
              setDraft(e.target.value)
              if (e.target.value) typing.keystroke()
              else typing.stop()
            }}
            onBlur={typing.stop}
            onKeyDown={onKeyDown}
            aria-invalid={tooLong || undefined}
            aria-describedby={length >= COUNTER_FROM ? counterId : undefined}
            placeholder={`${state.assistant?.name === 'offline' ? 'Tell the offline assistant what to change' : 'Ask the assistant'}… (Enter to send, Shift+Enter for a new line)`}
            rows={3}
            className="max-h-48 resize-none"
          />
          <div className="flex items-center justify-end gap-2">
            <AssistantCheatSheet assistant={state.assistant} onPick={pick} />
            {length >= COUNTER_FROM && (
              <span
                id={counterId}
                aria-live="polite"
                className={cn('text-xs tabular-nums', tooLong ? 'font-medium text-destructive' : 'text-muted-foreground')}
              >
                {length} / {MAX_PROMPT}
                {tooLong && ` — too long by ${length - MAX_PROMPT}; shorten it to send`}
              </span>
            )}
            {state.busy && (
              <Button
                type="button"
                variant="outline"
                onClick={() => {
                  onStop()
                  inputRef.current?.focus() // the button goes when the turn ends
                }}
              >
                <SquareIcon aria-hidden />
                Stop
              </Button>
            )}
            <Button type="submit" disabled={disabled}>
              <SendIcon aria-hidden />
              Send
            </Button>
          </div>
        </form>
        )}
      </TabsContent>
      <TabsContent value="debug" className="min-h-0 overflow-y-auto">
        <DebugList entries={state.debug} />
      </TabsContent>
    </Tabs>
  )
}
