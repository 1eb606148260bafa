import { describe, expect, it } from 'vitest'
import type { TreeNode } from './protocol'
import { applyDelta, DEFAULT_LIMITS, DeltaError, limitsFrom, TreeDocument } from './tree-engine'

const base = (): TreeNode => ({
  id: 'root',
  value: 'Root',
  children: [
    { id: 'a', value: 'A', children: [{ id: 'a1', value: 'A1', children: [] }] },
    { id: 'b', value: 'B', props: { k: 1 }, children: [] },
  ],
})

function code(fn: () => unknown): number | null {
  try {
    fn()
    return null
  } catch (err) {
    if (err instanceof DeltaError) return err.code
    throw err
  }
}

describe('TreeDocument', () => {
  it('adds with index missing (append), clamped, negative', () => {
    const doc = new TreeDocument(base())
    doc.apply({ action: 'add', path: '/root/children', node: { id: 'c', value: 'C', children: [] } })
    doc.apply({ action: 'add', path: '/root/children', node: { id: 'd', value: 'D' }, index: 99 })
    doc.apply({ action: 'add', path: '/root/children', node: { id: 'e', value: 'E' }, index: -5 })
    expect(doc.root.children.map((c) => c.id)).toEqual(['e', 'a', 'b', 'c', 'd'])
    expect(doc.rev).toBe(3)
  })

  it('adds a whole subtree and drops empty props', () => {
    const doc = new TreeDocument(base())
    doc.apply({
      action: 'add',
      path: '/root/a/children',
      node: { id: 'x', value: 'X', props: {}, children: [{ id: 'y', value: 'Y', extra: 1 }] },
      index: 0,
    })
    expect(doc.root.children[0]).toEqual({
      id: 'a',
      value: 'A',
      children: [
        { id: 'x', value: 'X', children: [{ id: 'y', value: 'Y', children: [] }] },
        { id: 'a1', value: 'A1', children: [] },
      ],
    })
    expect(doc.pathOf('y')).toBe('/root/a/x/y')
  })

  it('merges props; null deletes; props omitted when empty', () => {
    const doc = new TreeDocument(base())
    doc.apply({ action: 'update', path: '/root/b', fields: { props: { s: 'x', k: null } } })
    expect(doc.root.children[1]).toEqual({ id: 'b', value: 'B', props: { s: 'x' }, children: [] })
    doc.apply({ action: 'update', path: '/root/b', fields: { props: { s: null }, value: 'B2' } })
    expect(doc.root.children[1]).toEqual({ id: 'b', value: 'B2', children: [] })
    expect('props' in doc.root.children[1]!).toBe(false)
  })

  it('moves with the index counted after removal, clamped', () => {
    const doc = new TreeDocument({
      id: 'root',
      value: 'Root',
      children: ['p', 'q', 'r', 's'].map((id) => ({ id, value: id, children: [] })),
    })
    doc.apply({ action: 'move', path: '/root/p', to: '/root/children', index: 2 })
    expect(doc.root.children.map((c) => c.id)).toEqual(['q', 'r', 'p', 's'])
    doc.apply({ action: 'move', path: '/root/q', to: '/root/s/children', index: 50 })
    expect(doc.pathOf('q')).toBe('/root/s/q')
  })

  it('keeps untouched subtrees as the same objects', () => {
    const doc = new TreeDocument(base())
    const before = doc.root
    doc.apply({ action: 'update', path: '/root/b', fields: { value: 'BB' } })
    expect(doc.root).not.toBe(before)
    expect(doc.root.children[0]).toBe(before.children[0])
  })

  it('rejects with the server codes and changes nothing', () => {
    const doc = new TreeDocument(base())
    const before = doc.root
    expect(code(() => doc.apply({ action: 'remove', path: '/root' }))).toBe(409)
    expect(code(() => doc.apply({ action: 'remove', path: '/root/zzz' }))).toBe(404)
    expect(code(() => doc.apply({ action: 'remove', path: '/root/a1' }))).toBe(409) // wrong ancestry
    expect(code(() => doc.apply({ action: 'remove', path: '/root/zzz/a1' }))).toBe(404)
    expect(code(() => doc.apply({ action: 'remove', path: 'root/a' }))).toBe(400)
    expect(code(() => doc.apply({ action: 'remove', path: '/root/' }))).toBe(400)
    expect(code(() => doc.apply({ action: 'explode', path: '/root/a' }))).toBe(400)
    expect(code(() => doc.apply({ action: 'add', path: '/root', node: { id: 'n', value: 'N' } }))).toBe(400)
    expect(code(() => doc.apply({ action: 'add', path: '/root/children', node: { id: 'a', value: 'dup' } }))).toBe(409)
    expect(code(() => doc.apply({ action: 'add', path: '/root/children', node: { id: 'bad id', value: 'x' } }))).toBe(400)
    expect(code(() => doc.apply({ action: 'add', path: '/root/children', node: { id: 'n', value: '' } }))).toBe(400)
    expect(code(() => doc.apply({ action: 'add', path: '/root/children', node: { id: 'n', value: 'x' }, index: 1.5 }))).toBe(400)
    expect(code(() => doc.apply({ action: 'update', path: '/root/a', fields: {} }))).toBe(400)
    expect(code(() => doc.apply({ action: 'update', path: '/root/a', fields: { props: { k: [1] } } }))).toBe(400)
    expect(code(() => doc.apply({ action: 'move', path: '/root/a', to: '/root/a/a1/children' }))).toBe(409)
    expect(code(() => doc.apply({ action: 'move', path: '/root/a', to: '/root/a/children' }))).toBe(409)
    expect(code(() => doc.apply({ action: 'move', path: '/root', to: '/root/a/children' }))).toBe(409)
    expect(code(() => doc.apply({ action: 'move', path: '/root/a', to: '/root/nope/children' }))).toBe(404)
    expect(doc.root).toBe(before)
    expect(doc.rev).toBe(0)
  })

  it('applyDelta works on plain trees', () => {
    const next = applyDelta(base(), { action: 'remove', path: '/root/a' })
    expect(next.children.map((c) => c.id)).toEqual(['b'])
  })

  it('updates a 10,000-node tree by copying only the changed path', () => {
    const children: TreeNode[] = []
    for (let i = 0; i < 10_000; i++) children.push({ id: `n${i}`, value: `Node ${i}`, children: [] })
    const doc = new TreeDocument({ id: 'root', value: 'Root', children })
    const before = doc.root
    for (let i = 0; i < 200; i++) {
      doc.apply({ action: 'update', path: `/root/n${i}`, fields: { value: `v${i}` } })
    }
    // What keeps it cheap, not how long it took (figures: bench/browser.py): the 9,800 untouched
    // nodes are the very objects the document started with, and the changed ones are new.
    const after = doc.root.children
    expect(after.slice(200).every((node, i) => node === before.children[200 + i])).toBe(true)
    expect(after.slice(0, 200).map((n) => n.value)).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`))
    expect(after[0]).not.toBe(before.children[0])
    expect(doc.size).toBe(10_001)
  })
})

describe('TreeDocument limits (from session_ready)', () => {
  const leaf = (id: string, value = id) => ({ id, value, children: [] })
  const add = (path: string, node: unknown) => ({ action: 'add', path: `${path}/children`, node })

  it('checks depth, node count, value and props against the limits it was given', () => {
    const limits = { ...DEFAULT_LIMITS, max_depth: 2, max_nodes: 3, max_value_chars: 4, max_props: 1 }
    const doc = new TreeDocument({ id: 'root', value: 'Root', children: [leaf('a')] }, 0, limits)
    expect(() => doc.validate(add('/root/a', leaf('b')))).toThrow(/exceed a depth of 2/)
    expect(() => doc.validate(add('/root', leaf('toolong', 'abcde')))).toThrow(/longer than 4 characters/)
    expect(() => doc.validate(add('/root', { ...leaf('p'), props: { x: 1, y: 2 } }))).toThrow(/more than 1 props/)
    doc.apply(add('/root', leaf('b')))
    expect(() => doc.validate(add('/root', leaf('c')))).toThrow(/exceed 3 nodes/)
  })

  it('limitsFrom takes the valid fields a server sent and the defaults for the rest', () => {
    expect(limitsFrom({})).toEqual(DEFAULT_LIMITS)
    expect(limitsFrom({ limits: null })).toEqual(DEFAULT_LIMITS)
    const got = limitsFrom({ limits: { max_depth: 200, max_nodes: 0, max_props: 2.5 } as never })
    expect(got).toEqual({ ...DEFAULT_LIMITS, max_depth: 200 })
  })
})

describe('TreeDocument adopting a snapshot', () => {
  it('normalizes the parsed tree in place and indexes it on first use, the same as a copy', () => {
    const wire = JSON.parse(
      '{"id":"root","value":"Root","children":[{"id":"a","value":"A","props":{},"children":[{"id":"a1","value":7}]},{"id":"b","value":"B","children":[]}]}',
    )
    const adopted = new TreeDocument(wire, 4, DEFAULT_LIMITS, true)
    expect(adopted.root).toBe(wire) // not copied
    expect(adopted.root.children[0]).toEqual({ id: 'a', value: 'A', children: [{ id: 'a1', value: '7', children: [] }] })
    const copy = new TreeDocument(JSON.parse(JSON.stringify(wire)), 4)
    // every question the index answers, first asked of a document that has none yet
    for (const doc of [adopted, copy]) {
      expect(doc.pathOf('a1')).toBe('/root/a/a1')
      expect(doc.size).toBe(4)
      expect(doc.parentOf('root')).toBeNull()
      expect(code(() => doc.validate({ action: 'add', path: '/root/children', node: { id: 'a1', value: 'x' } }))).toBe(409)
    }
    const late = new TreeDocument(JSON.parse(JSON.stringify(wire)), 4, DEFAULT_LIMITS, true)
    late.apply({ action: 'move', path: '/root/a/a1', to: '/root/b/children' }) // the first change indexes it
    expect(late.pathOf('a1')).toBe('/root/b/a1')
    expect(late.indexSome(-Infinity)).toBe(true) // already made: nothing changes
    expect(late.pathOf('a1')).toBe('/root/b/a1')
    expect(late.size).toBe(4)
  })

  it('makes the index in steps, and a change in between finishes it first', () => {
    const kids = Array.from({ length: 10_000 }, (_, i) => ({ id: `n${i}`, value: `v${i}`, children: [{ id: `c${i}`, value: 'c', children: [] }] }))
    const wire = () => JSON.parse(JSON.stringify({ id: 'root', value: 'Root', children: kids }))
    const doc = new TreeDocument(wire(), 0, DEFAULT_LIMITS, true)
    let steps = 1
    while (!doc.indexSome(-Infinity)) steps++ // a deadline already past: one step at a time
    expect(steps).toBeGreaterThan(3)
    expect(doc.size).toBe(20_001)
    expect(doc.pathOf('c9999')).toBe('/root/n9999/c9999')
    const half = new TreeDocument(wire(), 0, DEFAULT_LIMITS, true)
    expect(half.indexSome(-Infinity)).toBe(false)
    half.apply({ action: 'move', path: '/root/n5/c5', to: '/root/n9999/children' })
    expect(half.pathOf('c5')).toBe('/root/n9999/c5')
    expect(half.size).toBe(20_001)
    expect(code(() => half.validate({ action: 'add', path: '/root/children', node: { id: 'c9998', value: 'x' } }))).toBe(409)
  })
})
