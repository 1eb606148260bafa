import { describe, expect, it } from 'vitest'
import { useState } from 'react'
import { act, renderHook, waitFor } from '@testing-library/react'
import type { TreeNode } from '@/lib/protocol'
import { useTreeFeed, type TreeFeed, type TreeSource } from './use-tree-feed'

function source(initial: TreeFeed) {
  let snap = initial
  const listeners = new Set<() => void>()
  const src: TreeSource = {
    subscribe: (l) => {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    getSnapshot: () => snap,
  }
  const push = (next: TreeFeed) => {
    snap = next
    for (const l of listeners) l()
  }
  return { src, push }
}

const node = (value: string): TreeNode => ({ id: 'root', value, children: [] })

describe('useTreeFeed', () => {
  it('renders a burst of updates once, with the ids of every one of them', async () => {
    const { src, push } = source({ tree: node('v0'), rev: 0, lastChange: null })
    let renders = 0
    const { result } = renderHook(() => {
      renders++
      return useTreeFeed(src)
    })
    const before = renders
    act(() => {
      for (let i = 1; i <= 5; i++) push({ tree: node(`v${i}`), rev: i, lastChange: { ids: [`n${i}`], version: i, origin: 'assistant' } })
    })
    await waitFor(() => expect(result.current.rev).toBe(5))
    expect(renders - before).toBe(1)
    expect(result.current.tree?.value).toBe('v5')
    expect(result.current.lastChange).toMatchObject({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], version: 5 })
  })

  it('a snapshot drops the ids of the changes it replaced', async () => {
    const { src, push } = source({ tree: node('v0'), rev: 0, lastChange: null })
    const { result } = renderHook(() => useTreeFeed(src))
    act(() => {
      push({ tree: node('v1'), rev: 1, lastChange: { ids: ['a'], version: 1, origin: 'user' } })
      push({ tree: node('v9'), rev: 9, lastChange: { ids: [], version: 2, origin: 'snapshot' } })
    })
    await waitFor(() => expect(result.current.rev).toBe(9))
    expect(result.current.lastChange).toMatchObject({ ids: [], origin: 'snapshot' })
  })

  it('passes a snapshot on at once, not at the next animation frame', () => {
    const { src, push } = source({ tree: null, rev: 0, lastChange: null })
    const { result } = renderHook(() => useTreeFeed(src))
    act(() => {
      push({ tree: node('big'), rev: 7, lastChange: { ids: [], version: 1, origin: 'snapshot' } })
    })
    // no waiting: the render that act() flushed already has it
    expect(result.current.tree?.value).toBe('big')
    expect(result.current.rev).toBe(7)
    act(() => {
      push({ tree: node('edited'), rev: 8, lastChange: { ids: ['root'], version: 2, origin: 'user' } })
    })
    expect(result.current.rev).toBe(7) // a delta waits for its frame
  })

  it('catches up on demand: the waiting tree renders now, in the same render as state set beside it', () => {
    const { src, push } = source({ tree: node('v0'), rev: 0, lastChange: null })
    let renders = 0
    const { result } = renderHook(() => {
      renders++
      const [other, setOther] = useState(0)
      return { feed: useTreeFeed(src), other, setOther }
    })
    act(() => {
      push({ tree: node('v1'), rev: 1, lastChange: { ids: ['a'], version: 1, origin: 'proposal' } })
    })
    expect(result.current.feed.rev).toBe(0) // waiting for its frame
    const before = renders
    act(() => {
      result.current.feed.catchUp()
      result.current.setOther(1)
    })
    expect(renders - before).toBe(1)
    expect(result.current.feed.rev).toBe(1)
    expect(result.current.feed.lastChange).toMatchObject({ ids: ['a'], version: 1 })
    expect(result.current.other).toBe(1)
    // Nothing waiting: nothing to render.
    const settled = renders
    act(() => result.current.feed.catchUp())
    expect(renders).toBe(settled)
  })
})
