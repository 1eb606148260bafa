import { describe, expect, it } from 'vitest'
import { renderHook, waitFor } from '@testing-library/react'
import type { TreeNode } from '@/lib/protocol'
import { FilterIndex } from '../model/filter-index'
import { useFilterResult } from './use-filter-result'

/** A tree of `n` leaves under the root, named `Item i`. */
function tree(n: number): TreeNode {
  const children: TreeNode[] = []
  for (let i = 0; i < n; i++) children.push({ id: `n${i}`, value: `Item ${i}`, children: [] })
  return { id: 'root', value: 'Root', children }
}

describe('useFilterResult', () => {
  const index = FilterIndex.of(tree(20_000)) // a search of "i" takes many slices

  it('searches outside the render, then keeps the last result until the next one is ready', async () => {
    const { result, rerender } = renderHook(({ term }) => useFilterResult(index, term), {
      initialProps: { term: 'item 1999' },
    })
    expect(result.current).toBeNull() // nothing searched during the render
    await waitFor(() => expect(result.current?.matches).toBe(11)) // 1999, 19990-19999
    const first = result.current
    rerender({ term: 'item 19999' })
    expect(result.current).toBe(first) // the narrowed search has not run yet
    await waitFor(() => expect(result.current?.matches).toBe(1))
    expect(result.current!.nodes.map((n) => n.id)).toEqual(['root', 'n19999'])
  })

  it('shows nothing for an empty term or without an index, and searches a new index afresh', async () => {
    const { result, rerender } = renderHook(({ ix, term }) => useFilterResult(ix, term), {
      initialProps: { ix: index as FilterIndex | null, term: 'i' },
    })
    await waitFor(() => expect(result.current?.matches).toBe(20_000))
    rerender({ ix: index, term: '  ' })
    expect(result.current).toBeNull()
    rerender({ ix: null, term: 'i' })
    expect(result.current).toBeNull()
    const smaller = FilterIndex.of(tree(30))
    rerender({ ix: smaller, term: 'item 2' })
    await waitFor(() => expect(result.current?.index).toBe(smaller))
    expect(result.current!.matches).toBe(11) // 2, 20-29
  })
})
