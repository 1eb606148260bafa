import { describe, expect, it } from 'vitest'
import { renderHook, waitFor } from '@testing-library/react'
import type { TreeNode } from '@/lib/protocol'
import { useFilterIndex } from './use-filter-index'

/** A tree of `n` leaves under the root, named `<tag> i`. */
function tree(tag: string, n: number): TreeNode {
  const children: TreeNode[] = []
  for (let i = 0; i < n; i++) children.push({ id: `${tag}-${i}`, value: `${tag} ${i}`, children: [] })
  return { id: 'root', value: 'Root', children }
}

describe('useFilterIndex', () => {
  it('builds nothing until wanted, then the index of the tree, in idle time', async () => {
    const t = tree('a', 5000) // more than one build step
    const { result, rerender } = renderHook(({ tr, wanted }) => useFilterIndex(tr, wanted), {
      initialProps: { tr: t, wanted: false },
    })
    expect(result.current).toBeNull()
    rerender({ tr: t, wanted: true })
    expect(result.current).toBeNull() // not built during the render
    await waitFor(() => expect(result.current?.root).toBe(t))
    expect(result.current!.run('a 4999').matches).toBe(1)
    rerender({ tr: t, wanted: false })
    expect(result.current).toBeNull()
  })

  it('ends on the latest tree when trees arrive faster than a build', async () => {
    const trees = [tree('a', 4000), tree('b', 4000), tree('c', 4000)]
    const { result, rerender } = renderHook(({ tr }) => useFilterIndex(tr, true), {
      initialProps: { tr: trees[0]! },
    })
    rerender({ tr: trees[1]! })
    rerender({ tr: trees[2]! })
    await waitFor(() => expect(result.current?.root).toBe(trees[2]))
    expect(result.current!.run('c 3999').matches).toBe(1)
    expect(result.current!.run('b 1').matches).toBe(0)
  })
})
