import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { fireEvent, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { auth } from '@/lib/auth'
import { json, mockFetch, renderWithClient } from '@/testing/render'
import { countNodes, formatOf } from '../model/files'
import { ImportDialog } from './import-dialog'

beforeEach(() => auth.setSession({ access_token: 'tok', expires_in: 1800 }))
afterEach(() => {
  vi.unstubAllGlobals()
  auth.clear()
})

describe('file helpers', () => {
  it('guesses the format from the name and counts nodes for the preview', () => {
    expect(formatOf('plan.MD')).toBe('markdown')
    expect(formatOf('feeds.opml')).toBe('opml')
    expect(formatOf('tree.json')).toBe('json')
    expect(formatOf('photo.png')).toBeNull()
    expect(countNodes('markdown', '# Root\n- a\n  - b\n  k:: 1\n* c\r\n')).toBe(3)
    expect(countNodes('json', JSON.stringify({ tree: { value: 'R', children: [{ value: 'a', children: [{}] }] } })))
      .toBe(2)
    expect(countNodes('opml', '<opml><body><outline text="a"><outline text="b"/></outline></body></opml>')).toBe(2)
    expect(countNodes('opml', '<not-xml')).toBeNull()
    expect(countNodes('json', '{')).toBeNull()
  })
})

describe('ImportDialog', () => {
  function setup(sessionId: string | null = 's1') {
    const { fn, calls } = mockFetch({
      'POST /api/sessions/import': (init) =>
        (init!.body as string).includes('# Trip')
          ? json({ detail: "line 3: expected a bullet ('- text') or a property ('key:: value')" }, 422)
          : json({ session_id: 'new-1', title: 'plan' }, 201),
      'POST /api/sessions/s1/import': () => json({ rev: 4, added: 2, ids: ['n-a', 'n-b'] }),
    })
    vi.stubGlobal('fetch', fn)
    const onImported = vi.fn()
    renderWithClient(<ImportDialog sessionId={sessionId} onImported={onImported} />)
    return { calls, onImported, user: userEvent.setup() }
  }

  it('previews a picked file and imports it as a new session', async () => {
    const { calls, onImported, user } = setup()
    await user.click(screen.getByRole('button', { name: 'Import' }))
    const file = new File(['- a\n  - b\n- c\n'], 'plan.md', { type: 'text/markdown' })
    await user.upload(screen.getByLabelText('File'), file)
    expect(await screen.findByText('3 nodes to import.')).toBeInTheDocument()
    expect(screen.getByLabelText('Format')).toHaveValue('markdown')
    await user.click(screen.getAllByRole('button', { name: 'Import' }).at(-1)!)
    await waitFor(() => expect(onImported).toHaveBeenCalledWith('new-1'))
    const post = calls.find((c) => c.url === '/api/sessions/import')!
    expect(JSON.parse(post.init!.body as string)).toEqual({
      format: 'markdown',
      content: '- a\n  - b\n- c\n',
      title: 'plan',
    })
  })

  it('imports a dropped file into the open session', async () => {
    const { calls, onImported, user } = setup()
    await user.click(screen.getByRole('button', { name: 'Import' }))
    const file = new File(['<opml><body><outline text="x"/><outline text="y"/></body></opml>'], 'f.opml')
    fireEvent.drop(screen.getByTestId('import-drop-zone'), { dataTransfer: { files: [file] } })
    expect(await screen.findByText('2 nodes to import.')).toBeInTheDocument()
    expect(screen.getByLabelText('Format')).toHaveValue('opml')
    await user.selectOptions(screen.getByLabelText('Import into'), 'here')
    await user.click(screen.getAllByRole('button', { name: 'Import' }).at(-1)!)
    await waitFor(() => expect(onImported).toHaveBeenCalledWith('s1'))
    const post = calls.find((c) => c.url === '/api/sessions/s1/import')!
    expect(JSON.parse(post.init!.body as string)).toMatchObject({ format: 'opml', parent_id: 'root' })
  })

  it("shows the server's refusal in the dialog, focuses the file to choose another, and clears it then", async () => {
    const { onImported, user } = setup()
    await user.click(screen.getByRole('button', { name: 'Import' }))
    await user.upload(screen.getByLabelText('File'), new File(['# Trip\n\nSome text\n'], 'trip.md'))
    await user.click(screen.getAllByRole('button', { name: 'Import' }).at(-1)!)
    const dialog = screen.getByRole('dialog', { name: 'Import a tree' })
    expect(await within(dialog).findByRole('alert')).toHaveTextContent(
      "line 3: expected a bullet ('- text') or a property ('key:: value')",
    )
    await waitFor(() => expect(screen.getByLabelText('File')).toHaveFocus())
    expect(onImported).not.toHaveBeenCalled()
    await user.upload(screen.getByLabelText('File'), new File(['- Trip\n'], 'trip.md'))
    expect(within(dialog).queryByRole('alert')).not.toBeInTheDocument()
  })
})
