import { useId, useState, type FormEvent, type KeyboardEvent } from 'react'
import { SendIcon, SquareIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import { Label } from '@/components/ui/label'
import { Tabs, TabsContent, TabsList, TabsTrigger } from '@/components/ui/tabs'
import { Textarea } from '@/components/ui/textarea'
import { cn } from '@/lib/utils'
import type { ChatState } from '../model/chat-reducer'
import { AssistantCheatSheet } from './cheat-sheet'
import { DebugList } from './debug-list'
import { MessageList } from './message-list'

export const MAX_PROMPT = 4000

export interface ChatPanelProps {
  state: ChatState
  /** False while the connection is offline for good: nothing can be sent. */
  canSend: boolean
  onSend: (prompt: string) => void
  onStop: () => void
  className?: string
}

export function ChatPanel({ state, canSend, onSend, onStop, className }: ChatPanelProps) {
  const [draft, setDraft] = useState('')
  const inputId = useId()
  const prompt = draft.trim()
  const disabled = state.busy || !canSend || !prompt || prompt.length > MAX_PROMPT

  function submit(e?: FormEvent) {
    e?.preventDefault()
    if (disabled) return
    onSend(prompt)
    setDraft('')
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault()
      submit()
    }
  }

  return (
    <Tabs defaultValue="chat" className={cn('min-h-0', className)}>
      <TabsList aria-label="Chat views">
        <TabsTrigger value="chat">Chat</TabsTrigger>
        <TabsTrigger value="debug">Debug</TabsTrigger>
      </TabsList>
      <TabsContent value="chat" className="flex min-h-0 flex-col gap-2">
        <MessageList messages={state.messages} />
        <form onSubmit={submit} className="flex flex-col gap-2">
          <Label htmlFor={inputId} className="sr-only">
            Message
          </Label>
          <Textarea
            id={inputId}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKeyDown}
            placeholder={`${state.assistant?.name === 'offline' ? 'Tell the offline assistant what to change' : 'Ask the assistant'}… (Enter to send, Shift+Enter for a new line)`}
            rows={3}
            maxLength={MAX_PROMPT}
            className="max-h-48 resize-none"
          />
          <div className="flex items-center justify-end gap-2">
            <AssistantCheatSheet assistant={state.assistant} />
            {state.busy && (
              <Button type="button" variant="outline" onClick={onStop}>
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
      </TabsContent>
      <TabsContent value="debug" className="min-h-0 overflow-y-auto">
        <DebugList entries={state.debug} />
      </TabsContent>
    </Tabs>
  )
}
