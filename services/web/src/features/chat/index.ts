export { ChatPanel, MAX_PROMPT, TYPING_IDLE_MS, type ChatPanelProps } from './components/chat-panel'
export {
  chatReducer,
  hasOtherAuthors,
  initialChatState,
  type ChatAction,
  type ChatMessage,
  type Author,
  type ChatState,
  type DebugEntry,
  type ProposalNote,
} from './model/chat-reducer'
