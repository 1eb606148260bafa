export { TokensSettings } from './components/tokens-settings'
export { useTokens, type PersonalToken } from './api/tokens'
