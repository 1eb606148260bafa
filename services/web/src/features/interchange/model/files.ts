/** The three import/export formats, how files name them, and a quick node count for the import preview. */
export type OutlineFormat = 'json' | 'markdown' | 'opml'

export const FORMATS: Array<{ format: OutlineFormat; label: string; extension: string }> = [
  { format: 'json', label: 'JSON', extension: 'json' },
  { format: 'markdown', label: 'Markdown outline', extension: 'md' },
  { format: 'opml', label: 'OPML', extension: 'opml' },
]

/** The format a file name suggests (the user may change it), or null. */
export function formatOf(fileName: string): OutlineFormat | null {
  const ext = fileName.toLowerCase().split('.').pop() ?? ''
  if (ext === 'json') return 'json'
  if (ext === 'md' || ext === 'markdown' || ext === 'txt') return 'markdown'
  if (ext === 'opml' || ext === 'xml') return 'opml'
  return null
}

function countJson(node: unknown): number {
  if (!node || typeof node !== 'object') return 0
  const kids = (node as { children?: unknown }).children
  return 1 + (Array.isArray(kids) ? kids.reduce<number>((n, k) => n + countJson(k), 0) : 0)
}

/**
 * How many nodes the import would add (the root's children and their descendants), for the preview;
 * null when the file does not look like that format. The server does the real parsing and checks.
 */
export function countNodes(format: OutlineFormat, content: string): number | null {
  try {
    if (format === 'json') {
      const data: unknown = JSON.parse(content)
      const tree = data && typeof data === 'object' && 'tree' in data ? (data as { tree: unknown }).tree : data
      const total = countJson(tree)
      return total ? total - 1 : null
    }
    if (format === 'markdown') {
      return content.split('\n').filter((line) => /^[ \t]*[-*+]( |$)/.test(line.replace(/\r$/, ''))).length
    }
    const doc = new DOMParser().parseFromString(content, 'application/xml')
    if (doc.getElementsByTagName('parsererror').length || doc.documentElement.nodeName !== 'opml') return null
    return doc.querySelectorAll('body outline').length
  } catch {
    return null
  }
}
