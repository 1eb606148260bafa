import { describe, expect, it } from 'vitest'
import { parsePropValue, propRows, propsDelta } from './props-edit'

describe('props editing', () => {
  it('types values as written', () => {
    expect(parsePropValue('true')).toBe(true)
    expect(parsePropValue('3')).toBe(3)
    expect(parsePropValue('-1.5')).toBe(-1.5)
    expect(parsePropValue('high')).toBe('high')
    expect(parsePropValue('1e999')).toBe('1e999')
  })

  it('makes one update delta: changed and new keys set, removed keys null', () => {
    const before = { priority: 'low', done: false, gone: 1 }
    const rows = [...propRows(before).filter((r) => r.key !== 'gone'), { key: 'owner', value: 'Ann' }]
    rows[0]!.value = 'high'
    expect(propsDelta('/root/a', before, rows)).toEqual({
      delta: { action: 'update', path: '/root/a', fields: { props: { priority: 'high', owner: 'Ann', gone: null } } },
    })
    expect(propsDelta('/root/a', before, propRows(before))).toBeNull()
  })

  it('refuses a nameless or repeated key', () => {
    expect(propsDelta('/root', {}, [{ key: ' ', value: 'x' }])).toEqual({ problem: 'Every prop needs a name.' })
    expect(propsDelta('/root', {}, [{ key: 'a', value: '1' }, { key: 'a', value: '2' }])).toEqual({
      problem: "The prop 'a' is there twice.",
    })
  })
})
