import { describe, expect, it } from 'vitest'
import { render, screen, within } from '@testing-library/react'
import { PresenceAvatars } from './presence-avatars'

describe('PresenceAvatars', () => {
  it('shows everyone here with their role, tabs and typing', () => {
    render(
      <PresenceAvatars
        me="olive"
        users={[
          { username: 'olive', role: 'owner', tabs: 2, selected: null, typing: false },
          { username: 'eddie', role: 'editor', tabs: 1, selected: 'n1', typing: true },
        ]}
      />,
    )
    const list = screen.getByRole('list', { name: 'People here' })
    const items = within(list).getAllByRole('listitem')
    expect(items.map((i) => i.getAttribute('aria-label'))).toEqual([
      'olive (you), owner, 2 tabs',
      'eddie, editor, typing',
    ])
    expect(items[1]).toHaveTextContent('e')
  })

  it('renders nothing before the first presence frame', () => {
    render(<PresenceAvatars me="olive" users={[]} />)
    expect(screen.queryByRole('list', { name: 'People here' })).not.toBeInTheDocument()
  })
})
