/**
 * What other features draw on the tree's rows, as plain data the app hands in:
 * rings for nodes other people have selected, and an open proposal's changes
 * (the diff overlay): changes to existing nodes, which their rows read with one
 * Map lookup each, and proposed nodes, shown as rows of their own where they
 * would go (model/proposed.ts merges them into the rows).
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

/**
 * A node a proposal adds, or a node it moves at its new place: a green row that is not a node (no edits, no
 * drag, no details, never a tree_op's target).
 */
export interface ProposedNode {
  /** Unique among all proposed nodes shown. */
  key: string
  /** The node's id (the id an added node will have): what the emphasis (a hovered change) names. */
  nodeId: string
  value: string
  /** 'moved': the new place of a node the proposal moves (its old place keeps its own row, dashed). */
  kind: 'added' | 'moved'
  /** The change that makes this row; its tick shades the row. */
  change: RowChange
  /**
   * Whether the row carries `change`'s checkbox: the top node of an added subtree does; the nodes inside it
   * and a move's new place do not (the move's checkbox is on the node's row at its old place).
   */
  box: boolean
  /** Later changes of the same proposal to this proposed node (a rename, a removal): chips on its row. */
  more: readonly RowChange[]
  children: readonly ProposedNode[]
}

/** Where a proposed node goes: under an existing node, at an index among its children (null: last). */
export interface ProposedPlace {
  /** The parent's id path, root first. */
  parentIds: readonly string[]
  index: number | null
  node: ProposedNode
}

export const NO_RINGS: ReadonlyMap<string, readonly RowRing[]> = new Map()
export const NO_CHANGES: ReadonlyMap<string, readonly RowChange[]> = new Map()
export const NO_PROPOSED: readonly ProposedPlace[] = []
