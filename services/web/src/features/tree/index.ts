export { TreePanel, type TreePanelProps } from './components/tree-panel'
export { useTreeFeed, type LiveTreeFeed, type TreeFeed, type TreeSource } from './hooks/use-tree-feed'
export {
  addChildDelta,
  renameDelta,
  removeDelta,
  moveDelta,
  matchesFilter,
  type TreeOp,
} from './model/tree-ops'
export type { ProposedNode, ProposedPlace, RowChange, RowRing } from './model/decorations'
