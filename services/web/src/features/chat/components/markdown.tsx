import ReactMarkdown, { type Components } from 'react-markdown'

const safeLink = { target: '_blank', rel: 'noopener noreferrer nofollow' } as const

const components: Components = {
  a: ({ node: _node, ...props }) => <a {...props} {...safeLink} />,
  // Never an <img>: a remote image would load as soon as the message shows (a tracking pixel,
  // the reader's address to whoever the assistant or a pasted text named). It becomes a link.
  img: ({ src, alt }) => {
    const text = alt || 'image'
    return typeof src === 'string' && /^https?:\/\//i.test(src) ? (
      <a href={src} {...safeLink}>
        {text}
      </a>
    ) : (
      <span>{text}</span>
    )
  },
}

/** Safe markdown: raw HTML is never rendered (no rehype-raw), unsafe URLs are dropped, images become links. */
export function Markdown({ children }: { children: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown skipHtml components={components}>
        {children}
      </ReactMarkdown>
    </div>
  )
}
