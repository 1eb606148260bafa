import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import { HistoryPanel } from './history-panel'

const item = (number: number, extra: Record<string, unknown> = {}) => ({
  number,
  actor: { username: number % 2 ? 'eddie' : 'olive', via: number % 2 ? 'assistant' : 'user' },
  created_at: '2025-11-25T21:47:39Z',
  summary: `Change ${number}`,
  rev: number + 10,
  undone: false,
  nodes: [`n-${number}`],
  ...extra,
})

beforeEach(() => auth.setSession({ access_token: 'tok', expires_in: 1800 }))
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

describe('HistoryPanel', () => {
  it('lists change sets newest first, pages older ones, and highlights on hover', async () => {
    const { fn, calls } = mockFetch({
      'GET /api/sessions/s1/history': (_init, url) => {
        const before = new URL(url, 'http://x').searchParams.get('before')
        return before === null
          ? json({ items: [item(3), item(2, { undone: true })], next_before: 2 })
          : json({ items: [item(1)], next_before: null })
      },
    })
    vi.stubGlobal('fetch', fn)
    const onHighlight = vi.fn()
    renderWithClient(<HistoryPanel sessionId="s1" onHighlight={onHighlight} />)
    const list = await screen.findByRole('list', { name: 'Change sets' })
    await within(list).findByText('Change 3')
    const entries = within(list).getAllByRole('listitem')
    expect(entries).toHaveLength(2)
    expect(entries[0]).toHaveTextContent('eddie')
    expect(entries[0]).toHaveTextContent('assistant')
    expect(entries[0]).toHaveTextContent('rev 13')
    expect(entries[1]).toHaveAccessibleName('Change 2, by olive, undone')
    expect(within(entries[1]!).getByText('undone')).toBeInTheDocument()

    const user = userEvent.setup()
    await user.hover(entries[0]!)
    expect(onHighlight).toHaveBeenLastCalledWith(['n-3'])
    await user.unhover(list)
    expect(onHighlight).toHaveBeenLastCalledWith(null)

    await user.click(screen.getByRole('button', { name: 'Load older' }))
    expect(await within(list).findByText('Change 1')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Load older' })).not.toBeInTheDocument()
    expect(calls.map((c) => c.url)).toEqual([
      '/api/sessions/s1/history?limit=30',
      '/api/sessions/s1/history?limit=30&before=2',
    ])
  })

  it("names a node by its value where the summary has only its id (a move, a props change)", async () => {
    const items = [
      item(3, { summary: 'Move n-l, update n-d', nodes: ['n-l', 'n-d'] }),
      item(2, { summary: "Update n-gone", nodes: ['n-gone'] }),
      item(1, { summary: "Add 'n-l'", nodes: ['n-l'] }),
    ]
    vi.stubGlobal('fetch', mockFetch({ 'GET /api/sessions/s1/history': () => json({ items, next_before: null }) }).fn)
    const tree = {
      id: 'root',
      value: 'Root',
      children: [
        { id: 'n-l', value: 'Launch', children: [] },
        { id: 'n-d', value: "Bob's design", children: [] },
      ],
    }
    renderWithClient(<HistoryPanel sessionId="s1" onHighlight={vi.fn()} tree={tree} />)
    const list = await screen.findByRole('list', { name: 'Change sets' })
    const entries = await within(list).findAllByRole('listitem')
    expect(entries[0]).toHaveTextContent(`Move 'Launch', update "Bob's design"`)
    expect(entries[0]).toHaveAccessibleName(`Move 'Launch', update "Bob's design", by eddie`)
    expect(entries[1]).toHaveTextContent('Update n-gone') // gone from the tree: its id stays
    expect(entries[2]).toHaveTextContent("Add 'n-l'") // a quoted value is never replaced
  })
})
