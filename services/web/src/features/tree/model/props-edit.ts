/** The node details panel's model: props typed as text, turned into one `update` delta. */
import type { Delta } from '@/lib/protocol'

export type PropValue = string | number | boolean

export interface PropRow {
  key: string
  value: string
}

/** A prop as typed: true/false and finite numbers become those; anything else stays text. */
export function parsePropValue(text: string): PropValue {
  const t = text.trim()
  if (t === 'true' || t === 'false') return t === 'true'
  if (t !== '' && /^-?\d+(\.\d+)?$/.test(t) && Number.isFinite(Number(t))) return Number(t)
  return text
}

export function propRows(props: Record<string, unknown> | null | undefined): PropRow[] {
  return Object.entries(props ?? {}).map(([key, value]) => ({ key, value: String(value) }))
}

/**
 * The one delta that turns `before` into `rows` (changed and new keys set, removed ones null), or a problem
 * to show, or null when nothing changed.
 */
export function propsDelta(
  path: string,
  before: Record<string, unknown> | null | undefined,
  rows: readonly PropRow[],
): { delta: Delta } | { problem: string } | null {
  const next: Record<string, PropValue | null> = {}
  const seen = new Set<string>()
  for (const row of rows) {
    const key = row.key.trim()
    if (!key) return { problem: 'Every prop needs a name.' }
    if (seen.has(key)) return { problem: `The prop '${key}' is there twice.` }
    seen.add(key)
    const value = parsePropValue(row.value)
    if (before?.[key] !== value) next[key] = value
  }
  for (const key of Object.keys(before ?? {})) if (!seen.has(key)) next[key] = null
  if (Object.keys(next).length === 0) return null
  return { delta: { action: 'update', path, fields: { props: next } } }
}
