export { ExportMenu } from './components/export-menu'
export { ImportDialog } from './components/import-dialog'
export { countNodes, formatOf, type OutlineFormat } from './model/files'
