import { describe, expect, it } from 'vitest'
import { render, screen } from '@testing-library/react'
import { Markdown } from './markdown'

describe('Markdown', () => {
  it('never renders an <img>: a remote image becomes a link that loads nothing by itself', () => {
    const { container } = render(
      <Markdown>{'Look: ![tracking pixel](https://evil.example/p.png?u=1) and ![local](/x.png)'}</Markdown>,
    )
    expect(container.querySelector('img')).toBeNull()
    const link = screen.getByRole('link', { name: 'tracking pixel' })
    expect(link).toHaveAttribute('href', 'https://evil.example/p.png?u=1')
    expect(link).toHaveAttribute('rel', 'noopener noreferrer nofollow')
    expect(screen.getByText('local').tagName).toBe('SPAN')
  })

  it('keeps ordinary links and drops raw HTML images', () => {
    const { container } = render(
      <Markdown>{'[docs](https://example.com) <img src="https://evil.example/raw.png">'}</Markdown>,
    )
    expect(container.querySelector('img')).toBeNull()
    expect(screen.getByRole('link', { name: 'docs' })).toHaveAttribute('target', '_blank')
  })
})
