/**
 * What other features draw on the tree's rows, as plain data the app hands in:
 * rings for nodes other people have selected, and an open proposal's changes
 * (the diff overlay). Rows read them with one Map lookup each.
 */

/** Someone else's selection of a node. */
export interface RowRing {
  username: string
  color: string
}

/** A proposed change shown on a row, with its checkbox. */
export interface RowChange {
  proposalId: string
  index: number
  kind: 'added' | 'removed' | 'moved' | 'updated'
  /** The change in words: the checkbox's name. */
  description: string
  /** added: the new node's value; moved: where it goes; updated: the new value. */
  detail: string
  checked: boolean
}

export const NO_RINGS: ReadonlyMap<string, readonly RowRing[]> = new Map()
export const NO_CHANGES: ReadonlyMap<string, readonly RowChange[]> = new Map()
