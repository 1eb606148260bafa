export { ChatPanel, MAX_PROMPT, type ChatPanelProps } from './components/chat-panel'
export {
  chatReducer,
  initialChatState,
  type ChatAction,
  type ChatMessage,
  type ChatState,
  type DebugEntry,
} from './model/chat-reducer'
