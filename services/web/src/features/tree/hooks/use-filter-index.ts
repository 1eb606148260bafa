import { useEffect, useState } from 'react'
import type { TreeNode } from '@/lib/protocol'
import { FilterIndexBuilder, type FilterIndex } from '../model/filter-index'

/** Longest slice of one build step: well under a frame, so typing and scrolling stay smooth meanwhile. */
const SLICE_MS = 8
/** An idle callback runs by then even on a busy page (the build must finish while the user types). */
const IDLE_TIMEOUT_MS = 100

type Cancel = () => void

function whenIdle(fn: () => void): Cancel {
  if (typeof requestIdleCallback === 'function') {
    const h = requestIdleCallback(fn, { timeout: IDLE_TIMEOUT_MS })
    return () => cancelIdleCallback(h)
  }
  const t = setTimeout(fn, 0)
  return () => clearTimeout(t)
}

/**
 * The filter index of `tree`, built in idle-time slices while `wanted` (the filter box has focus, or a filter
 * is applied) and again in slices whenever the tree changes meanwhile. Until a build finishes it returns the
 * previous index (of an earlier tree; its rows catch up a few frames later) or null — never a long task on a
 * keystroke. Not wanted: no index is kept (a 100k-node index holds a few MB).
 */
export function useFilterIndex(tree: TreeNode | null, wanted: boolean): FilterIndex | null {
  const [index, setIndex] = useState<FilterIndex | null>(null)
  useEffect(() => {
    if (!wanted || !tree) {
      setIndex(null)
      return
    }
    const builder = new FilterIndexBuilder(tree)
    let cancel: Cancel | null = null
    const slice = () => {
      const done = builder.step(performance.now() + SLICE_MS)
      if (done) {
        cancel = null
        setIndex(done)
      } else cancel = whenIdle(slice)
    }
    cancel = whenIdle(slice)
    return () => cancel?.()
  }, [tree, wanted])
  return wanted ? index : null
}
