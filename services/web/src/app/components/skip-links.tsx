import type { MouseEvent } from 'react'

const LINK =
  'sr-only rounded-md bg-background px-3 py-2 text-sm font-medium shadow focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:ring-[3px] focus:ring-ring/50'

/** Focuses the first element of `selectors` (in order) inside the page's main region. */
function focusIn(selectors: string[]) {
  return (e: MouseEvent<HTMLAnchorElement>) => {
    const main = document.getElementById('main')
    const target = selectors.map((s) => main?.querySelector<HTMLElement>(s)).find(Boolean)
    if (!target) return // the #main fallback of the href
    e.preventDefault()
    target.focus()
  }
}

/**
 * The dashboard's skip links, shown when focused: past the header and sessions, and straight to the message box
 * or the tree (the conversation puts two or three stops per message between them).
 */
export function SkipLinks() {
  return (
    <>
      <a href="#main" className={LINK}>
        Skip to the chat and tree
      </a>
      {/* A viewer has no message box: the conversation instead. */}
      <a href="#main" className={LINK} onClick={focusIn(['form textarea', '[role="log"]'])}>
        Skip to the message box
      </a>
      <a href="#main" className={LINK} onClick={focusIn(['[role="tree"]'])}>
        Skip to the tree
      </a>
    </>
  )
}
