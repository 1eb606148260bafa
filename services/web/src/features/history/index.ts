export { HistoryPanel, type HistoryPanelProps } from './components/history-panel'
export { historyKeys, historyQueryOptions, useHistory, HISTORY_PAGE, type HistoryItem, type HistoryPage } from './api/history'
