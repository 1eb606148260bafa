import { useEffect, useRef, useState } from 'react'
import { FilterSearch, normalizeTerm, type FilterIndex, type FilterResult } from '../model/filter-index'

/** Longest slice of one search step: a frame keeps room for the input event, React and paint. */
const SLICE_MS = 6

type Cancel = () => void

interface TaskScheduler {
  postTask(fn: () => void, options: { priority?: string; signal?: AbortSignal }): Promise<unknown>
}

/**
 * Run `fn` in a task of its own, soon. `scheduler.postTask` (Chromium) is neither clamped like nested
 * timeouts nor starved like idle callbacks, and the browser paints between two tasks when a frame is due.
 */
export function nextTask(fn: () => void): Cancel {
  const scheduler = (globalThis as { scheduler?: Partial<TaskScheduler> }).scheduler
  if (typeof scheduler?.postTask === 'function') {
    const abort = new AbortController()
    scheduler.postTask(fn, { priority: 'user-visible', signal: abort.signal }).catch(() => {}) // aborted
    return () => abort.abort()
  }
  const t = setTimeout(fn, 0)
  return () => clearTimeout(t)
}

/**
 * The filter's rows for `term` over `index`, searched in slices of a few milliseconds (FilterSearch), never
 * in a render: a keystroke costs a frame at most a slice long, however many of 100k nodes match. Until a
 * search ends, the last result stays (or null: the rows stay unfiltered); a newer term or index cancels it.
 * Each search starts from the last one it can narrow from (a term that contains the last term).
 */
export function useFilterResult(index: FilterIndex | null, term: string): FilterResult | null {
  const [result, setResult] = useState<FilterResult | null>(null)
  const last = useRef<FilterResult | null>(null)
  const t = normalizeTerm(term)

  useEffect(() => {
    // (state is set from scheduled tasks only: a render never waits for a search)
    if (!index || t === '') return nextTask(() => setResult(null))
    const prev = last.current
    const search = prev && prev.index === index && prev.term === t ? null : new FilterSearch(index, t, prev)
    let cancel: Cancel | null = null
    const slice = () => {
      const done = search ? search.step(performance.now() + SLICE_MS) : prev
      if (!done) {
        cancel = nextTask(slice)
        return
      }
      cancel = null
      last.current = done
      setResult(done)
    }
    cancel = nextTask(slice)
    return () => cancel?.()
  }, [index, t])

  return index && t !== '' ? result : null
}
