import { useEffect, useRef, useState } from 'react'
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
 * is applied), and rebuilt the same way when the tree changes meanwhile. Until a build finishes it returns the
 * previous index (of an earlier tree; its rows catch up a few frames later) or null — never a long task on a
 * keystroke. A build in progress is not restarted by a newer tree (remote updates at 20/s would restart it
 * forever): it finishes, and one build for the latest tree follows. Not wanted: no index is kept.
 */
export function useFilterIndex(tree: TreeNode | null, wanted: boolean): FilterIndex | null {
  const [index, setIndex] = useState<FilterIndex | null>(null)
  /** The tree the index should be of (null: none wanted). */
  const target = useRef<TreeNode | null>(null)
  const job = useRef<{ cancel: Cancel } | null>(null)

  useEffect(() => {
    target.current = wanted ? tree : null
    if (!target.current) {
      job.current?.cancel()
      job.current = null
      setIndex(null)
      return
    }
    const start = () => {
      const root = target.current
      if (!root || job.current) return
      const builder = new FilterIndexBuilder(root)
      const slice = () => {
        const done = builder.step(performance.now() + SLICE_MS)
        if (!done) {
          job.current = { cancel: whenIdle(slice) }
          return
        }
        job.current = null
        if (!target.current) return
        setIndex(done)
        if (target.current !== root) start()
      }
      job.current = { cancel: whenIdle(slice) }
    }
    start()
  }, [tree, wanted])

  useEffect(
    () => () => {
      job.current?.cancel()
      job.current = null // a remount (StrictMode) starts afresh
    },
    [],
  )
  return wanted ? index : null
}
