import { describe, expect, it } from 'vitest'
import type { TreeNode } from '@/lib/protocol'
import { draftParentPath, indentDraft, newDraft, outdentDraft, withDraft } from './draft'

const tree: TreeNode = {
  id: 'root',
  value: 'Root',
  children: [
    { id: 'a', value: 'A', children: [{ id: 'a1', value: 'A1', children: [] }] },
    { id: 'b', value: 'B', children: [] },
  ],
}

describe('withDraft', () => {
  it('inserts an empty node at its place, copying only the path to it', () => {
    const d = newDraft(['root', 'a'], 0)
    const shown = withDraft(tree, d)
    expect(shown.children[0]!.children.map((c) => c.value)).toEqual(['', 'A1'])
    expect(shown.children[0]!.children[0]!.id).toBe(d.id)
    expect(shown.children[1]).toBe(tree.children[1]) // shared, not copied
    expect(tree.children[0]!.children).toHaveLength(1) // the tree itself is untouched
    expect(draftParentPath(d)).toBe('/root/a')
  })

  it('clamps the index and leaves the tree as it is when the parent is gone', () => {
    expect(withDraft(tree, newDraft(['root'], 99)).children.map((c) => c.value)).toEqual(['A', 'B', ''])
    expect(withDraft(tree, newDraft(['root', 'gone'], 0))).toBe(tree)
  })
})

describe('Tab and Shift+Tab on a draft', () => {
  it('indents under the previous sibling and outdents after the parent, keeping what was typed', () => {
    const d = newDraft(['root'], 1) // between A and B
    const inA = indentDraft(tree, d, 'typed')!
    expect(inA).toMatchObject({ parentIds: ['root', 'a'], index: 1, value: 'typed' })
    expect(indentDraft(tree, newDraft(['root'], 0), '')).toBeNull() // no previous sibling
    const back = outdentDraft(tree, inA, 'typed')!
    expect(back).toMatchObject({ parentIds: ['root'], index: 1, value: 'typed' })
    expect(outdentDraft(tree, d, '')).toBeNull() // already at the top
  })
})
