import { useReducer } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { act, fireEvent, render, screen, within } from '@testing-library/react'
import type { ServerFrame } from '@/lib/protocol'
import { chatReducer, initialChatState, type ChatAction } from '../model/chat-reducer'
import { ChatPanel, TYPING_IDLE_MS, type ChatPanelProps } from './chat-panel'

function Harness({
  bind,
  ...props
}: Partial<ChatPanelProps> & { bind: (d: (a: ChatAction) => void) => void }) {
  const [state, dispatch] = useReducer(chatReducer, initialChatState)
  bind(dispatch)
  return <ChatPanel state={state} canSend onSend={vi.fn()} onStop={vi.fn()} {...props} />
}

function setup(props: Partial<ChatPanelProps> = {}) {
  let dispatch!: (a: ChatAction) => void
  const view = render(<Harness {...props} bind={(d) => (dispatch = d)} />)
  const push = (frame: Record<string, unknown>) =>
    act(() => dispatch({ type: 'frame', frame: frame as unknown as ServerFrame }))
  return { push, view }
}

const log = () => screen.getByRole('log', { name: 'Conversation' })

afterEach(() => {
  vi.useRealTimers()
})

describe('ChatPanel in a shared session', () => {
  it('signals typing once, then stops after a pause, on send and on leaving the field', () => {
    vi.useFakeTimers()
    const onTyping = vi.fn()
    const onSend = vi.fn()
    setup({ onTyping, onSend })
    const box = screen.getByRole('textbox', { name: 'Message' })
    fireEvent.change(box, { target: { value: 'a' } })
    fireEvent.change(box, { target: { value: 'ad' } })
    expect(onTyping.mock.calls).toEqual([[true]])
    act(() => vi.advanceTimersByTime(TYPING_IDLE_MS - 100))
    fireEvent.change(box, { target: { value: 'add' } })
    act(() => vi.advanceTimersByTime(TYPING_IDLE_MS - 100))
    expect(onTyping.mock.calls).toEqual([[true]]) // still typing: the pause restarted
    act(() => vi.advanceTimersByTime(200))
    expect(onTyping.mock.calls).toEqual([[true], [false]])

    fireEvent.change(box, { target: { value: 'add X' } })
    fireEvent.submit(box.closest('form')!)
    expect(onSend).toHaveBeenCalledWith('add X')
    expect(onTyping.mock.calls).toEqual([[true], [false], [true], [false]])

    fireEvent.change(box, { target: { value: 'b' } })
    fireEvent.blur(box)
    expect(onTyping.mock.calls.at(-1)).toEqual([false])
  })

  it('shows who else is typing', () => {
    setup({ typingNote: 'eddie is typing…' })
    expect(screen.getByText('eddie is typing…')).toBeInTheDocument()
  })

  it('gives a viewer the conversation without a composer', () => {
    setup({ readOnly: true })
    expect(screen.queryByRole('textbox', { name: 'Message' })).not.toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Send' })).not.toBeInTheDocument()
    expect(screen.getByRole('note')).toHaveTextContent('You are a viewer')
  })

  it('shows a proposal’s summary, then its outcome', () => {
    const { push } = setup()
    push({ type: 'reasoning', data: { text: 'planning' } })
    push({
      type: 'proposal',
      data: {
        proposal: {
          id: 'p1',
          base_rev: 1,
          author: { username: 'eddie', via: 'assistant' },
          summary: "Add 'A', add 'B', remove 'C'",
          deltas: [{}, {}, {}],
          status: 'open',
        },
      },
    })
    push({ type: 'assistant_response', data: { text: 'I proposed three changes.', chunk: false } })
    const note = within(log()).getByRole('note', { name: 'Proposal' })
    expect(note).toHaveTextContent("Proposal (3 changes, eddie): Add 'A', add 'B', remove 'C'")
    expect(note).toHaveTextContent('Waiting for review')
    // The turn's answer ends the turn (it did not become a second, stuck message).
    expect(within(log()).getByText('I proposed three changes.')).toBeInTheDocument()
    expect(within(log()).queryByText('Thinking…')).not.toBeInTheDocument()

    push({
      type: 'proposal_resolved',
      data: {
        proposal_id: 'p1',
        accepted: [0],
        rejected: [1],
        conflicts: [{ index: 2, code: 404, message: 'Node C not found' }],
        decided_by: 'olive',
      },
    })
    expect(note).toHaveTextContent('Accepted 1 of 3 changes by olive; 1 rejected; 1 conflict: Node C not found')
  })
})
