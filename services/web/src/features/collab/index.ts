export { PresenceAvatars, type PresenceAvatarsProps } from './components/presence-avatars'
export { ProposalReview, type Acceptance, type ProposalReviewProps } from './components/proposal-review'
export {
  canEdit,
  colorFor,
  collabReducer,
  initialCollabState,
  others,
  selectionsOf,
  typingText,
  type CollabAction,
  type CollabState,
  type Selector,
} from './model/collab-reducer'
export {
  describeDelta,
  nameLookup,
  nodeAt,
  pathIds,
  prerequisites,
  targetId,
  withoutDependents,
  withPrerequisites,
} from './model/proposal'
export { proposalOverlay, type ProposalOverlay, type ProposedNode, type ProposedPlace, type RowChange } from './model/overlay'
