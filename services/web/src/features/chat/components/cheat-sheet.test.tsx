import { useReducer } from 'react'
import { describe, expect, it } from 'vitest'
import { act, render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import type { ServerFrame } from '@/lib/protocol'
import { chatReducer, initialChatState, type ChatAction } from '../model/chat-reducer'
import { ChatPanel } from './chat-panel'

const EXAMPLES = ["add 'A', 'B' and 'C' under Tasks (a missing parent is created)", 'undo · redo · undo the last 2 changes']

function Harness({ bind }: { bind: (d: (a: ChatAction) => void) => void }) {
  const [state, dispatch] = useReducer(chatReducer, initialChatState)
  bind(dispatch)
  return <ChatPanel state={state} canSend onSend={() => {}} onStop={() => {}} />
}

function setup(assistant?: unknown) {
  let dispatch!: (a: ChatAction) => void
  render(<Harness bind={(d) => (dispatch = d)} />)
  const ready = {
    type: 'session_ready',
    data: { session_id: 's1', title: 't', initial_tree: { id: 'root', value: 'Root', children: [] }, rev: 0, seq: 0, replay: false, assistant },
  }
  act(() => dispatch({ type: 'frame', frame: ready as unknown as ServerFrame }))
  return userEvent.setup()
}

describe('the offline assistant cheat sheet', () => {
  it('says it is the offline assistant and lists what it understands in a popover', async () => {
    const user = setup({ name: 'offline', examples: EXAMPLES })
    expect(screen.getByText('Offline assistant')).toBeInTheDocument()
    expect(screen.getByRole('textbox', { name: 'Message' })).toHaveAttribute(
      'placeholder',
      expect.stringContaining('offline assistant'),
    )
    const button = screen.getByRole('button', { name: 'What can I say?' })
    expect(button).toHaveAttribute('aria-expanded', 'false')
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument()

    await user.click(button)
    const sheet = screen.getByRole('dialog', { name: 'The offline assistant understands' })
    expect(button).toHaveAttribute('aria-expanded', 'true')
    expect(within(sheet).getAllByRole('listitem').map((li) => li.textContent)).toEqual(EXAMPLES)
    expect(sheet).toHaveFocus()

    await user.keyboard('{Escape}')
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument()
    expect(button).toHaveFocus()
  })

  it('closes on a click outside and on the button again', async () => {
    const user = setup({ name: 'offline', examples: EXAMPLES })
    const button = screen.getByRole('button', { name: 'What can I say?' })
    await user.click(button)
    await user.click(screen.getByRole('textbox', { name: 'Message' }))
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument()
    await user.click(button)
    await user.click(button)
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument()
  })

  it.each([
    ['a model', { name: 'openai', examples: [] }],
    ['an older server', undefined],
  ])('is not offered for %s', (_, assistant) => {
    setup(assistant)
    expect(screen.queryByText('Offline assistant')).not.toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'What can I say?' })).not.toBeInTheDocument()
  })

  it('puts a clicked example in the input, without its note, and closes', async () => {
    const user = setup({ name: 'offline', examples: EXAMPLES })
    await user.click(screen.getByRole('button', { name: 'What can I say?' }))
    const sheet = screen.getByRole('dialog', { name: 'The offline assistant understands' })
    await user.click(within(sheet).getByRole('button', { name: "add 'A', 'B' and 'C' under Tasks" }))
    const box = screen.getByRole('textbox', { name: 'Message' })
    expect(box).toHaveValue("add 'A', 'B' and 'C' under Tasks")
    expect(box).toHaveFocus()
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument()
    await user.click(screen.getByRole('button', { name: 'What can I say?' }))
    await user.click(screen.getByRole('button', { name: 'undo the last 2 changes' }))
    expect(box).toHaveValue('undo the last 2 changes')
  })
})
