export { ChatPanel, MAX_PROMPT, TYPING_IDLE_MS, type ChatPanelProps } from './components/chat-panel'
export {
  chatReducer,
  initialChatState,
  type ChatAction,
  type ChatMessage,
  type ChatState,
  type DebugEntry,
  type ProposalNote,
} from './model/chat-reducer'
