import js from '@eslint/js'
import globals from 'globals'
import reactHooks from 'eslint-plugin-react-hooks'
import reactRefresh from 'eslint-plugin-react-refresh'
import tseslint from 'typescript-eslint'

// bulletproof-react layering: src/app composes src/features/*; features never import each
// other; src/lib and src/components are shared and import neither features nor the app.
const FEATURES = ['auth', 'chat', 'tree', 'sessions']

const featureBoundaries = FEATURES.map((feature) => {
  const others = FEATURES.filter((f) => f !== feature)
  return {
    files: [`src/features/${feature}/**/*.{ts,tsx}`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: others.flatMap((o) => [`@/features/${o}`, `@/features/${o}/**`, `**/features/${o}/**`, `../../${o}`, `../../${o}/**`]),
              message: 'Features never import each other: src/app wires them.',
            },
            { group: ['@/app', '@/app/**'], message: 'Features do not import the app.' },
          ],
        },
      ],
    },
  }
})

export default tseslint.config(
  { ignores: ['dist', 'node_modules', 'coverage'] },
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
  ...featureBoundaries,
  {
    files: ['src/lib/**/*.{ts,tsx}', 'src/components/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@/features', '@/features/**', '@/app', '@/app/**'],
              message: 'Shared code imports neither features nor the app.',
            },
          ],
        },
      ],
    },
  },
  {
    // The protocol, tree engine and WebSocket client are plain TypeScript.
    files: ['src/lib/protocol.ts', 'src/lib/tree-engine.ts', 'src/lib/ws-client.ts', 'src/lib/auth.ts', 'src/lib/api-client.ts'],
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
