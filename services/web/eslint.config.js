import js from '@eslint/js'
import globals from 'globals'
import reactHooks from 'eslint-plugin-react-hooks'
import reactRefresh from 'eslint-plugin-react-refresh'
import tseslint from 'typescript-eslint'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'
import { readdirSync } from 'node:fs'

// bulletproof-react layering, as import-x/no-restricted-paths zones (resolved paths, so `@/`, relative
// and index imports are all caught): src/app composes src/features/*; a feature never imports another;
// src/lib and src/components are shared and import neither features nor the app.
// scripts/lint-boundaries.mjs (in `npm run lint`) proves each zone fails on a forbidden import.
const FEATURES = readdirSync(new URL('./src/features', import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)

const boundaryZones = [
  ...FEATURES.map((feature) => ({
    target: `./src/features/${feature}`,
    from: './src/features',
    except: [`./${feature}`],
    message: 'Features never import each other: src/app wires them.',
  })),
  { target: './src/features', from: './src/app', message: 'Features do not import the app.' },
  {
    target: ['./src/lib', './src/components'],
    from: ['./src/features', './src/app'],
    message: 'Shared code imports neither features nor the app.',
  },
]

export default tseslint.config(
  // src/lib/generated: written by scripts/gen-types.mjs (checked for freshness, not style).
  { ignores: ['dist', 'node_modules', 'coverage', 'src/lib/generated'] },
  {
    files: ['**/*.{ts,tsx}'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      ecmaVersion: 2022,
      globals: globals.browser,
    },
    plugins: {
      'react-hooks': reactHooks,
      'react-refresh': reactRefresh,
    },
    rules: {
      ...reactHooks.configs.recommended.rules,
      'react-refresh/only-export-components': [
        'warn',
        {
          allowConstantExport: true,
          allowExportNames: ['buttonVariants', 'badgeVariants', 'createQueryClient', 'redirectTarget', 'sessionTitle'],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: boundaryZones }],
    },
  },
  {
    // The protocol, tree engine and WebSocket client are plain TypeScript.
    files: [
      'src/lib/protocol.ts',
      'src/lib/tree-engine.ts',
      'src/lib/transport.ts',
      'src/lib/tree-sync.ts',
      'src/lib/ws-client.ts',
      'src/lib/auth.ts',
      'src/lib/api-client.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'react', message: 'No React in the plain TypeScript core.' }], patterns: [{ group: ['@/features/**', '@/app/**'] }] },
      ],
    },
  },
  {
    files: ['src/app/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@/features/*/**'], message: 'Import a feature through its index (@/features/name).' }] },
      ],
    },
  },
  {
    files: ['scripts/**/*.{js,mjs}', 'eslint.config.js'],
    languageOptions: { globals: globals.node },
  },
)
