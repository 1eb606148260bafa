import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import type { TreeNode } from '@/lib/protocol'

export interface TreeChangeInfo {
  /** Ids the change(s) touched, for a brief highlight; empty after a snapshot. */
  ids: string[]
  /** Increments on every change, so equal id lists still count as new. */
  version: number
  origin?: string
}

export interface TreeFeed {
  tree: TreeNode | null
  rev: number
  lastChange: TreeChangeInfo | null
}

/** What the session client offers (SessionSocket fits): a store of the latest tree. */
export interface TreeSource {
  subscribe(listener: () => void): () => void
  getSnapshot(): TreeFeed
}

/** The feed, and a way to render what is waiting for the next frame now. */
export interface LiveTreeFeed extends TreeFeed {
  /**
   * Hands on at once the tree that is waiting for the next animation frame (nothing when none is). Called in
   * the same task as another state update, React renders both together: the caller's state and the tree it
   * goes with show in one render (a decided proposal's rows go in the render its accepted nodes arrive in).
   */
  catchUp(): void
}

/** A frame's wait when rAF does not run (a background tab is throttled, not stopped). */
const FALLBACK_MS = 100

function pick(s: TreeFeed): TreeFeed {
  return { tree: s.tree, rev: s.rev, lastChange: s.lastChange }
}

/**
 * The session's tree, re-rendering at most once per animation frame however many `tree_update`s arrive in
 * it: a burst of deltas becomes one render, and the ids every one of them touched are merged into the
 * `lastChange` of that render (so no highlight or "jump to change" is lost). A snapshot is passed on at
 * once. Nothing else of the session's state (connection, chat) reaches the tree through this hook.
 */
export function useTreeFeed(source: TreeSource): LiveTreeFeed {
  const [feed, setFeed] = useState(() => pick(source.getSnapshot()))
  const pending = useRef<(() => void) | null>(null)
  useEffect(() => {
    let raf = 0
    let timer: ReturnType<typeof setTimeout> | null = null
    let ids: string[] = []
    let seen = source.getSnapshot().lastChange?.version
    let origin: string | undefined
    const flush = () => {
      if (raf) cancelAnimationFrame(raf)
      if (timer) clearTimeout(timer)
      raf = 0
      timer = null
      const s = source.getSnapshot()
      const merged = s.lastChange ? { ...s.lastChange, ids, origin: origin ?? s.lastChange.origin } : null
      ids = []
      origin = undefined
      setFeed((f) => (f.tree === s.tree && f.rev === s.rev && f.lastChange?.version === merged?.version ? f : { tree: s.tree, rev: s.rev, lastChange: merged }))
    }
    const onChange = () => {
      const change = source.getSnapshot().lastChange
      if (change && change.version !== seen) {
        seen = change.version
        origin = change.origin
        if (change.origin === 'snapshot') {
          // A whole new tree (opening a session): rendered at once, not a frame later.
          ids = []
          flush()
          return
        }
        ids = ids.length ? ids.concat(change.ids) : change.ids
      }
      if (raf || timer) return
      raf = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(flush) : 0
      timer = setTimeout(flush, FALLBACK_MS)
    }
    pending.current = () => {
      if (raf || timer) flush()
    }
    const off = source.subscribe(onChange)
    // Anything that changed between the first render and this effect.
    if (source.getSnapshot().tree !== feed.tree) onChange()
    return () => {
      off()
      pending.current = null
      if (raf) cancelAnimationFrame(raf)
      if (timer) clearTimeout(timer)
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps -- feed.tree is only the catch-up check at subscribe time
  }, [source])
  const catchUp = useCallback(() => pending.current?.(), [])
  return useMemo(() => ({ ...feed, catchUp }), [feed, catchUp])
}
