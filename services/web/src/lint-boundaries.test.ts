// @vitest-environment node
/**
 * Lint fixtures for the layering (eslint.config.js, import-x/no-restricted-paths): each
 * forbidden import below must fail lint, each allowed one must pass. The fixtures are lint
 * input at real paths of the tree, never files on disk, so `eslint .` stays clean.
 */
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

const cwd = fileURLToPath(new URL('..', import.meta.url))
const eslint = new ESLint({ cwd })

/** The messages of the boundary rule when `code` sits at `filePath` (relative to services/web). */
async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'import-x/no-restricted-paths' && m.severity === 2)
    .map((m) => m.message)
}

const uses = (specifier: string) => `import * as other from '${specifier}'\nexport const used = other\n`

// The first lint loads the TypeScript resolver: slow on a loaded machine.
describe('feature boundaries (eslint import-x/no-restricted-paths)', { timeout: 60_000 }, () => {
  it.each([
    ['src/features/tree/components/fixture.ts', '@/features/chat', 'Features never import each other'],
    ['src/features/tree/components/fixture.ts', '../../chat', 'Features never import each other'],
    ['src/features/tree/model/fixture.ts', '@/features/sessions/api/sessions', 'Features never import each other'],
    ['src/features/chat/fixture.ts', '@/app/routes/dashboard', 'Features do not import the app'],
    ['src/lib/fixture.ts', '@/features/tree', 'Shared code imports neither features nor the app'],
    ['src/components/ui/fixture.ts', '@/app/router', 'Shared code imports neither features nor the app'],
  ])('%s importing %s fails lint', async (filePath, specifier, message) => {
    const errors = await boundaryErrors(filePath, uses(specifier))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toContain(message)
  })

  it.each([
    ['src/features/tree/components/fixture.ts', '../model/tree-ops'],
    ['src/features/tree/components/fixture.ts', '@/lib/protocol'],
    ['src/app/routes/fixture.ts', '@/features/chat'],
    ['src/lib/fixture.ts', '@/components/ui/button'],
  ])('%s importing %s passes', async (filePath, specifier) => {
    expect(await boundaryErrors(filePath, uses(specifier))).toEqual([])
  })
})
