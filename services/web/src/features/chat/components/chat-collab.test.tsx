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

describe('ChatPanel: who wrote each prompt', () => {
  const history = {
    type: 'chat_history',
    data: {
      messages: [
        { role: 'user', content: 'from before authors', created_at: '2025-01-01T10:00:00Z' },
        { role: 'user', content: "add 'A'", author: { username: 'olive', via: 'user' } },
        { role: 'assistant', content: "Added 'A'.", author: { username: 'olive', via: 'assistant' } },
        { role: 'user', content: "add 'B'", author: { username: 'eddie', via: 'user' } },
        { role: 'user', content: "add 'C'", author: { username: 'eddie', via: 'agent', name: 'Copilot' } },
      ],
    },
  }
  /** Each message as a screen reader starts it (the sr-only prefixes included), and the visible names. */
  const items = () => within(log()).getAllByRole('listitem').map((li) => li.textContent)

  it('names each prompt’s author in a shared session, "You" for one’s own', () => {
    let dispatch!: (a: ChatAction) => void
    render(<Harness bind={(d) => (dispatch = d)} shared me="olive" />)
    act(() => dispatch({ type: 'frame', frame: history as unknown as ServerFrame }))
    act(() => dispatch({ type: 'prompt_sent', id: 'q1', text: "add 'D'" }))
    expect(items()).toEqual([
      expect.stringMatching(/^Prompt:from before authors/), // stored before authors: no name shown
      expect.stringMatching(/^You:add 'A'/),
      expect.stringMatching(/^Assistant:Added 'A'/), // answers stay as they were
      expect.stringMatching(/^eddie:add 'B'/),
      expect.stringMatching(/^eddie via Copilot:add 'C'/),
      expect.stringMatching(/^You:add 'D'/), // sent from this tab, not echoed yet
    ])
    // The names are visible text, not only a colour or a hidden label.
    expect(within(log()).getByText('eddie')).toBeVisible()
    expect(within(log()).getAllByText('You')).toHaveLength(2)
  })

  it('shows no names in a session of one', () => {
    const { push } = setup({ me: 'olive' })
    push(history)
    expect(within(log()).queryByText('You')).not.toBeInTheDocument()
    expect(within(log()).queryByText('eddie')).not.toBeInTheDocument()
    expect(items()[1]).toMatch(/^You:add 'A'/) // the hidden prefix a solo chat always had
  })

  it('names the author of a prompt another member sends live', () => {
    const { push } = setup({ shared: true, me: 'olive' })
    push({
      type: 'chat_message',
      id: 'x1',
      seq: 1,
      data: { role: 'user', content: "add 'E'", author: { username: 'eddie', via: 'user' } },
    })
    expect(items()).toEqual([expect.stringMatching(/^eddie:add 'E'/)])
  })
})
