import { useEffect, type KeyboardEvent } from 'react'

export function isEditableTarget(target: EventTarget | null): boolean {
  return (
    target instanceof Element &&
    !!target.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])')
  )
}

/** Ctrl+Z / Ctrl+Shift+Z (and Ctrl+Y) anywhere on the page but in a text field. */
export function useUndoShortcuts(onUndo: () => void, onRedo: () => void): void {
  useEffect(() => {
    function onKey(e: globalThis.KeyboardEvent) {
      if (!(e.ctrlKey || e.metaKey) || e.altKey) return
      if (isEditableTarget(e.target)) return
      const key = e.key.toLowerCase()
      if (key === 'z' && !e.shiftKey) {
        e.preventDefault()
        onUndo()
      } else if ((key === 'z' && e.shiftKey) || key === 'y') {
        e.preventDefault()
        onRedo()
      }
    }
    document.addEventListener('keydown', onKey)
    return () => document.removeEventListener('keydown', onKey)
  }, [onUndo, onRedo])
}

export interface TreeKeyTarget {
  /** The focused row, or -1. */
  focusedIndex(): number
  count(): number
  pageSize(): number
  depthAt(index: number): number
  /** true / false for a branch, null for a leaf. */
  expandedAt(index: number): boolean | null
  parentIndex(index: number): number
  focus(index: number): void
  toggle(index: number): void
  edit(index: number): void
  addChild(index: number): void
  /** Enter: a new sibling right after the row (the root: a first child), its editor open. */
  addSibling(index: number): void
  remove(index: number): void
  /** Alt+↑ / Alt+↓: the node moves one place among its siblings. */
  moveAmong(index: number, by: -1 | 1): void
  /** Space: tick or untick the checkbox of a proposed row. */
  check(index: number): void
}

/**
 * The tree's keys (WAI-ARIA tree view pattern plus the panel's own): ↑/↓, Home/End, PageUp/PageDown move;
 * → opens or goes to the first child, ← closes or goes to the parent; Enter adds a sibling after the row and
 * starts editing it (the outliner habit); F2 renames; Insert (or a) adds a child; Delete (or Backspace) removes;
 * Alt+↑/↓ moves the node among its siblings; Space ticks a proposed row's checkbox. Tab is not handled: it
 * leaves the tree (in the inline editor, Tab and Shift+Tab indent and outdent). Returns the keydown handler.
 */
export function treeKeyHandler(t: TreeKeyTarget) {
  return (e: KeyboardEvent<HTMLElement>) => {
    if (isEditableTarget(e.target) || e.ctrlKey || e.metaKey) return
    const n = t.count()
    if (n === 0) return
    const i = Math.max(0, t.focusedIndex())
    if (e.altKey) {
      if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return
      e.preventDefault()
      t.moveAmong(i, e.key === 'ArrowUp' ? -1 : 1)
      return
    }
    const move = (to: number) => t.focus(Math.min(n - 1, Math.max(0, to)))
    const open = t.expandedAt(i)
    const actions: Record<string, () => void> = {
      ArrowDown: () => move(t.focusedIndex() < 0 ? 0 : i + 1),
      ArrowUp: () => move(i - 1),
      Home: () => move(0),
      End: () => move(n - 1),
      PageDown: () => move(i + t.pageSize()),
      PageUp: () => move(i - t.pageSize()),
      ArrowRight: () => (open === false ? t.toggle(i) : open ? move(i + 1) : undefined),
      ArrowLeft: () => (open ? t.toggle(i) : t.parentIndex(i) >= 0 ? move(t.parentIndex(i)) : undefined),
      Enter: () => t.addSibling(i),
      F2: () => t.edit(i),
      Insert: () => t.addChild(i),
      a: () => t.addChild(i),
      Delete: () => t.remove(i),
      Backspace: () => t.remove(i),
      ' ': () => t.check(i),
    }
    const act = actions[e.key]
    if (!act) return
    e.preventDefault()
    act()
  }
}
