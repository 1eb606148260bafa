import { useCallback, useState } from 'react'

/**
 * The element's content height, tracked with a ResizeObserver. Falls back to
 * `fallback` where there is no layout (tests) or before the first measurement.
 */
export function useElementHeight<T extends HTMLElement>(fallback: number) {
  const [height, setHeight] = useState(fallback)
  const ref = useCallback(
    (el: T | null) => {
      if (!el) return
      const measure = () => {
        const h = Math.floor(el.clientHeight)
        setHeight(h > 0 ? h : fallback)
      }
      measure()
      if (typeof ResizeObserver === 'undefined') return
      const ro = new ResizeObserver(measure)
      ro.observe(el)
      return () => ro.disconnect()
    },
    [fallback],
  )
  return { ref, height }
}
