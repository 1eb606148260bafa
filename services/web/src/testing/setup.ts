import '@testing-library/jest-dom/vitest'
import { cleanup, configure } from '@testing-library/react'
import { afterEach } from 'vitest'

// jsdom has no matchMedia (sonner's theme="system" asks for prefers-color-scheme).
if (typeof window !== 'undefined' && !window.matchMedia) {
  window.matchMedia = (query: string) =>
    ({
      matches: /min-width/.test(query), // a wide screen, light scheme
      media: query,
      onchange: null,
      addListener: () => {},
      removeListener: () => {},
      addEventListener: () => {},
      removeEventListener: () => {},
      dispatchEvent: () => false,
    }) as MediaQueryList
}

// findBy*/waitFor give up after this long. The default (1 s) is a ceiling a lazy route's first
// load can pass on a busy CI machine; a ceiling is not a sleep: a passing wait returns at once.
configure({ asyncUtilTimeout: 5000 })

afterEach(() => {
  cleanup()
})
