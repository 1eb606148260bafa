import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react'
import { CircleHelpIcon } from 'lucide-react'
import { Button } from '@/components/ui/button'
import type { AssistantInfo } from '@/lib/protocol'

/**
 * Says which assistant answers and, for the offline one, offers its cheat sheet in a popover next to
 * the input, so nobody has to type "help" to learn what it understands. The popover is non-modal:
 * Escape, the button or a click outside closes it, and focus goes back to the button.
 */
/** A cheat-sheet line's commands ("undo · redo"), each without its note in parentheses. */
function lineCommands(line: string): { command: string; note: string }[] {
  return line
    .split(' · ')
    .map((part) => {
      const m = /^(.*?)\s*(\(.*\))?$/.exec(part.trim())
      return { command: (m?.[1] ?? part).trim(), note: m?.[2] ?? '' }
    })
    .filter((c) => c.command)
}

export function AssistantCheatSheet({
  assistant,
  onPick,
}: {
  assistant: AssistantInfo | null
  /** An example was chosen: it goes into the input (the popover closes). */
  onPick?: (command: string) => void
}) {
  const [open, setOpen] = useState(false)
  const buttonRef = useRef<HTMLButtonElement>(null)
  const panelRef = useRef<HTMLDivElement>(null)
  const panelId = useId()
  const headingId = useId()

  useEffect(() => {
    if (!open) return
    panelRef.current?.focus()
    function onPointerDown(e: PointerEvent) {
      const target = e.target as Node
      if (!panelRef.current?.contains(target) && !buttonRef.current?.contains(target)) setOpen(false)
    }
    document.addEventListener('pointerdown', onPointerDown)
    return () => document.removeEventListener('pointerdown', onPointerDown)
  }, [open])

  if (!assistant || assistant.name !== 'offline') return null

  function close() {
    setOpen(false)
    buttonRef.current?.focus()
  }

  function onKeyDown(e: KeyboardEvent<HTMLDivElement>) {
    if (e.key === 'Escape') {
      e.stopPropagation()
      close()
    }
  }

  return (
    <div className="relative mr-auto flex items-center gap-2 text-xs text-muted-foreground">
      <span>Offline assistant</span>
      <Button
        ref={buttonRef}
        variant="ghost"
        size="sm"
        aria-haspopup="dialog"
        aria-expanded={open}
        aria-controls={open ? panelId : undefined}
        onClick={() => setOpen((was) => !was)}
      >
        <CircleHelpIcon aria-hidden />
        What can I say?
      </Button>
      {open && (
        <div
          id={panelId}
          ref={panelRef}
          role="dialog"
          aria-labelledby={headingId}
          tabIndex={-1}
          onKeyDown={onKeyDown}
          className="absolute bottom-full left-0 z-20 mb-2 w-[min(30rem,85vw)] rounded-md border bg-popover p-3 text-sm text-popover-foreground shadow-md outline-none"
        >
          <h2 id={headingId} className="font-medium">
            The offline assistant understands
          </h2>
          <ul className="mt-2 list-disc space-y-1 pl-4">
            {assistant.examples.map((line) => (
              <li key={line}>
                {lineCommands(line).map(({ command, note }, i) => (
                  <span key={i}>
                    {i > 0 && ' · '}
                    {onPick ? (
                      <button
                        type="button"
                        className="rounded-sm text-left underline decoration-dotted underline-offset-2 outline-none hover:text-primary focus-visible:ring-[3px] focus-visible:ring-ring/50"
                        title="Put this in the input"
                        onClick={() => {
                          setOpen(false)
                          onPick(command)
                        }}
                      >
                        {command}
                      </button>
                    ) : (
                      command
                    )}
                    {note && <span className="text-muted-foreground"> {note}</span>}
                  </span>
                ))}
              </li>
            ))}
          </ul>
          <p className="mt-2 text-muted-foreground">
            {onPick && 'Click an example to put it in the input. '}No AI model is connected: when a command is not
            understood, it says which part and changes nothing.
          </p>
        </div>
      )}
    </div>
  )
}
