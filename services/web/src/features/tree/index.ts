export { TreePanel, type TreePanelProps } from './components/tree-panel'
export {
  addChildDelta,
  renameDelta,
  removeDelta,
  moveDelta,
  matchesFilter,
  type TreeOp,
} from './model/tree-ops'
