import { useReducer } from 'react'
import { describe, expect, it, vi } from 'vitest'
import { act, render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import type { ServerFrame } from '@/lib/protocol'
import { chatReducer, initialChatState, type ChatAction } from '../model/chat-reducer'
import { ChatPanel } from './chat-panel'

/** The panel with its reducer; frames are pushed from the test like the socket would. */
function Harness({ onSend, onStop, bind }: { onSend: (p: string) => void; onStop: () => void; bind: (d: (a: ChatAction) => void) => void }) {
  const [state, dispatch] = useReducer(chatReducer, initialChatState)
  bind(dispatch)
  return (
    <ChatPanel
      state={state}
      canSend
      onSend={(p) => {
        onSend(p)
        dispatch({ type: 'prompt_sent', id: 'p1', text: p })
      }}
      onStop={onStop}
    />
  )
}

function setup() {
  let dispatch!: (a: ChatAction) => void
  const onSend = vi.fn()
  const onStop = vi.fn()
  render(<Harness onSend={onSend} onStop={onStop} bind={(d) => (dispatch = d)} />)
  const push = (frame: Record<string, unknown>) => act(() => dispatch({ type: 'frame', frame: frame as unknown as ServerFrame }))
  return { onSend, onStop, push, user: userEvent.setup() }
}

const log = () => screen.getByRole('log', { name: 'Conversation' })

describe('ChatPanel', () => {
  it('sends on Enter, keeps Shift+Enter as a new line, and streams the answer', async () => {
    const { onSend, onStop, push, user } = setup()
    const box = screen.getByRole('textbox', { name: 'Message' })
    await user.type(box, 'first line{Shift>}{Enter}{/Shift}second')
    expect(box).toHaveValue('first line\nsecond')
    await user.keyboard('{Enter}')
    expect(onSend).toHaveBeenCalledWith('first line\nsecond')
    expect(box).toHaveValue('')
    expect(within(log()).getByText(/first line/)).toBeInTheDocument()

    // busy: Send disabled, Stop shown
    await user.type(box, 'again')
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled()
    await user.click(screen.getByRole('button', { name: 'Stop' }))
    expect(onStop).toHaveBeenCalled()

    push({ type: 'chat_message', data: { content: 'first line\nsecond' }, id: 'p1' }) // our own echo
    push({ type: 'reasoning', data: { text: 'Parsing the prompt', steps: ['Parsing the prompt'] }, id: 'p1' })
    push({ type: 'assistant_response', data: { text: 'Added **Task', chunk: true }, id: 'p1' })
    expect(within(log()).getByText('Added **Task')).toBeInTheDocument()
    push({ type: 'assistant_response', data: { text: ' 1**', chunk: true }, id: 'p1' })
    expect(within(log()).getByText('Task 1').tagName).toBe('STRONG') // pieces appended, then markdown
    const streaming = within(log()).getByText('Task 1').closest('li')!
    expect(streaming).toHaveAttribute('aria-busy', 'true')
    expect(within(log()).getAllByText(/first line/)).toHaveLength(1) // echo not shown twice

    push({ type: 'debug', data: { provider: 'offline', total_ms: 12.5 }, id: 'p1' })
    push({ type: 'assistant_response', data: { text: 'Added **Task 1** under Root.', chunk: false }, id: 'p1' })
    // the final piece replaces the streamed text with the full text
    const done = within(log()).getByText('Task 1').closest('li')!
    expect(done).toHaveTextContent(/^Assistant:Reasoning \(1 step\)Added Task 1 under Root\.$/)
    expect(done).not.toHaveAttribute('aria-busy')
    expect(screen.queryByRole('button', { name: 'Stop' })).not.toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled()

    // reasoning is collapsed until asked for
    const toggle = within(log()).getByRole('button', { name: /Reasoning \(1 step\)/ })
    expect(within(log()).queryByText('Parsing the prompt')).not.toBeInTheDocument()
    await user.click(toggle)
    expect(within(log()).getByText('Parsing the prompt')).toBeInTheDocument()

    // the Debug tab shows the timings
    await user.click(screen.getByRole('tab', { name: 'Debug' }))
    expect(screen.getByText('total_ms')).toBeInTheDocument()
    expect(screen.getByText('12.5')).toBeInTheDocument()
  })

  it('keeps the focus in the box when Send or Stop is clicked (both buttons go or turn off)', async () => {
    const { onSend, onStop, user } = setup()
    const box = screen.getByRole('textbox', { name: 'Message' })
    await user.type(box, 'add X')
    await user.click(screen.getByRole('button', { name: 'Send' }))
    expect(onSend).toHaveBeenCalledWith('add X')
    expect(box).toHaveFocus()
    await user.click(screen.getByRole('button', { name: 'Stop' }))
    expect(onStop).toHaveBeenCalled()
    expect(box).toHaveFocus()
  })

  it('shows prompts from another tab, history on connect, and never renders raw HTML', async () => {
    const { push } = setup()
    push({
      type: 'chat_history',
      data: {
        messages: [
          { role: 'user', content: 'old question', created_at: 'x' },
          { role: 'assistant', content: 'old <img src=x onerror="alert(1)"> answer', cancelled: true },
        ],
      },
    })
    expect(within(log()).getByText('old question')).toBeInTheDocument()
    expect(document.querySelector('img')).toBeNull()
    expect(within(log()).getByText('Stopped')).toBeInTheDocument()

    push({ type: 'chat_message', data: { content: 'from the other tab' }, id: 'other' })
    expect(within(log()).getByText('from the other tab')).toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Stop' })).toBeInTheDocument() // that tab's turn runs

    push({ type: 'error', data: {}, id: 'other', error: { code: 502, message: 'The model is unavailable' } })
    expect(within(log()).getByText('The model is unavailable')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Stop' })).not.toBeInTheDocument()

    push({ type: 'chat_history', data: { messages: [] } })
    expect(within(log()).queryByText('old question')).not.toBeInTheDocument()
  })

  it('says when an answer was cut short, live and from history', async () => {
    const { push, user } = setup()
    await user.type(screen.getByRole('textbox', { name: 'Message' }), 'write a lot{Enter}')
    push({ type: 'assistant_response', data: { text: 'Here is the first half', chunk: true }, id: 'p1' })
    expect(within(log()).queryByRole('note')).not.toBeInTheDocument()
    push({ type: 'assistant_response', data: { text: 'Here is the first half', chunk: false, truncated: 'length' }, id: 'p1' })
    const answer = within(log()).getByText('Here is the first half').closest('li')!
    expect(within(answer).getByRole('note')).toHaveTextContent('The answer was cut short: the model reached its output limit.')
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled() // composer empty, but the turn is over
    expect(screen.queryByRole('button', { name: 'Stop' })).not.toBeInTheDocument()

    push({
      type: 'chat_history',
      data: {
        messages: [
          { role: 'assistant', content: 'filtered', truncated: 'content_filter' },
          { role: 'assistant', content: 'unknown reason', truncated: 'bogus' },
          { role: 'assistant', content: 'complete' },
        ],
      },
    })
    const filtered = within(log()).getByText('filtered').closest('li')!
    expect(within(filtered).getByRole('note')).toHaveTextContent("cut short by the provider's content filter")
    expect(within(log()).getAllByRole('note')).toHaveLength(1) // an unknown reason or a whole answer: no note
  })

  it('marks a refused prompt and frees the composer', async () => {
    const { push, user } = setup()
    await user.type(screen.getByRole('textbox', { name: 'Message' }), 'hello{Enter}')
    push({ type: 'error', data: {}, id: 'p1', error: { code: 409, message: 'A turn is already running' } })
    expect(within(log()).getByText('A turn is already running')).toBeInTheDocument()
    await user.type(screen.getByRole('textbox', { name: 'Message' }), 'again')
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled()
  })
})

describe('ChatPanel additions (issue #14)', () => {
  it('recalls the last prompt with ↑ in an empty input only', async () => {
    const { onSend, user } = setup()
    const box = screen.getByRole('textbox', { name: 'Message' })
    await user.keyboard('{ArrowUp}')
    expect(box).toHaveValue('') // nothing sent yet
    await user.type(box, 'add Apples to root{Enter}')
    expect(onSend).toHaveBeenCalledWith('add Apples to root')
    await user.click(box)
    await user.keyboard('{ArrowUp}')
    expect(box).toHaveValue('add Apples to root')
    await user.type(box, ' and Pears')
    await user.keyboard('{ArrowUp}') // not empty: the caret moves, the text stays
    expect(box).toHaveValue('add Apples to root and Pears')
  })

  it('shows a counter near the limit and refuses a prompt over it, never cutting it', async () => {
    const { onSend, user } = setup()
    const box = screen.getByRole('textbox', { name: 'Message' })
    await user.click(box)
    await user.paste('x'.repeat(3700))
    expect(screen.getByText('3700 / 4000')).toBeInTheDocument()
    expect(box).toHaveAttribute('aria-describedby')
    await user.paste('y'.repeat(305))
    expect(box).toHaveValue('x'.repeat(3700) + 'y'.repeat(305)) // nothing cut
    expect(screen.getByText(/4005 \/ 4000 — too long by 5/)).toBeInTheDocument()
    expect(box).toHaveAttribute('aria-invalid', 'true')
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled()
    await user.keyboard('{Enter}')
    expect(onSend).not.toHaveBeenCalled()
    await user.keyboard('{Backspace}'.repeat(5))
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled()
  })

  it('counts characters as the server does (an emoji is one)', async () => {
    const { user } = setup()
    const box = screen.getByRole('textbox', { name: 'Message' })
    await user.click(box)
    await user.paste('😀'.repeat(3999))
    expect(screen.getByText('3999 / 4000')).toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled()
  })

  it('copies a message and shows when it was written', async () => {
    const { push, user } = setup()
    const writeText = vi.fn(() => Promise.resolve())
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true })
    push({
      type: 'chat_history',
      data: {
        messages: [
          { role: 'user', content: 'add Apples', created_at: '2025-03-01T10:00:00Z' },
          {
            role: 'assistant',
            content: 'Added Apples.',
            created_at: '2025-03-01T10:00:01Z',
            reasoning: ['Parsing the prompt', 'Resolved root'],
          },
        ],
      },
    })
    const answer = within(log()).getByText('Added Apples.').closest('li')!
    expect(within(answer).getByText(/Reasoning \(2 steps\)/)).toBeInTheDocument() // stored reasoning, after a reload
    const time = answer.querySelector('time')!
    expect(time).toHaveAttribute('dateTime', '2025-03-01T10:00:01.000Z')
    await user.click(within(answer).getByRole('button', { name: 'Copy text' }))
    expect(writeText).toHaveBeenCalledWith('Added Apples.')
    expect(await within(answer).findByRole('button', { name: 'Copied' })).toBeInTheDocument()
  })
})
