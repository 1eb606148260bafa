// Lint fixtures for the layering (eslint.config.js, import-x/no-restricted-paths): each forbidden
// import below must fail lint, each allowed one must pass. The fixtures are lint input at real paths
// of the tree, never files on disk, so `eslint .` stays clean. Run by `npm run lint` (node:test),
// apart from vitest so that ESLint's start-up does not compete with the UI tests for the CPU.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'

const eslint = new ESLint({ cwd: fileURLToPath(new URL('..', import.meta.url)) })

/** The messages of the boundary rule when `code` sits at `filePath` (relative to services/web). */
async function boundaryErrors(filePath, code) {
  const [result] = await eslint.lintText(code, { filePath })
  return result.messages
    .filter((m) => m.ruleId === 'import-x/no-restricted-paths' && m.severity === 2)
    .map((m) => m.message)
}

const uses = (specifier) => `import * as other from '${specifier}'\nexport const used = other\n`

const FORBIDDEN = [
  ['src/features/tree/components/fixture.ts', '@/features/chat', 'Features never import each other'],
  ['src/features/tree/components/fixture.ts', '../../chat', 'Features never import each other'],
  ['src/features/tree/model/fixture.ts', '@/features/sessions/api/sessions', 'Features never import each other'],
  ['src/features/chat/fixture.ts', '@/app/routes/dashboard', 'Features do not import the app'],
  ['src/lib/fixture.ts', '@/features/tree', 'Shared code imports neither features nor the app'],
  ['src/components/ui/fixture.ts', '@/app/router', 'Shared code imports neither features nor the app'],
]

const ALLOWED = [
  ['src/features/tree/components/fixture.ts', '../model/tree-ops'],
  ['src/features/tree/components/fixture.ts', '@/lib/protocol'],
  ['src/app/routes/fixture.ts', '@/features/chat'],
  ['src/lib/fixture.ts', '@/components/ui/button'],
]

describe('feature boundaries (eslint import-x/no-restricted-paths)', () => {
  for (const [filePath, specifier, message] of FORBIDDEN) {
    it(`${filePath} importing ${specifier} fails lint`, async () => {
      const errors = await boundaryErrors(filePath, uses(specifier))
      assert.equal(errors.length, 1, `expected one boundary error, got ${JSON.stringify(errors)}`)
      assert.match(errors[0], new RegExp(message))
    })
  }
  for (const [filePath, specifier] of ALLOWED) {
    it(`${filePath} importing ${specifier} passes`, async () => {
      assert.deepEqual(await boundaryErrors(filePath, uses(specifier)), [])
    })
  }
})
