#!/usr/bin/env node
// Initial-load JavaScript budget: gzips every script index.html loads up front
// (module entry + modulepreloads) and fails when the total is over budget.
import { readFileSync, existsSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BUDGET_KB = Number(process.env.INITIAL_JS_BUDGET_KB ?? 150)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const indexPath = join(dist, 'index.html')
if (!existsSync(indexPath)) {
  console.error('dist/index.html not found: run `npm run build` first')
  process.exit(1)
}
const html = readFileSync(indexPath, 'utf8')

if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(html)) {
  console.error('index.html has an inline <script>: the CSP allows only same-origin script files')
  process.exit(1)
}

const initial = new Set()
for (const m of html.matchAll(/<script\b[^>]*\bsrc="([^"]+\.js)"/gi)) initial.add(m[1])
for (const m of html.matchAll(/<link\b[^>]*\brel="modulepreload"[^>]*\bhref="([^"]+\.js)"/gi)) initial.add(m[1])
for (const m of html.matchAll(/<link\b[^>]*\bhref="([^"]+\.js)"[^>]*\brel="modulepreload"/gi)) initial.add(m[1])
if (initial.size === 0) {
  console.error('no script found in dist/index.html')
  process.exit(1)
}

let total = 0
const rows = []
for (const src of initial) {
  const file = join(dist, src.replace(/^\//, ''))
  const buf = readFileSync(file)
  const gz = gzipSync(buf, { level: 9 }).length
  total += gz
  rows.push([src, (buf.length / 1024).toFixed(1), (gz / 1024).toFixed(1)])
}
for (const m of html.matchAll(/<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+\.css)"/gi)) {
  const buf = readFileSync(join(dist, m[1].replace(/^\//, '')))
  rows.push([`${m[1]} (css, not counted)`, (buf.length / 1024).toFixed(1), (gzipSync(buf, { level: 9 }).length / 1024).toFixed(1)])
}

const w = Math.max(...rows.map((r) => r[0].length))
console.log(`${'file'.padEnd(w)}  ${'raw KB'.padStart(8)}  ${'gzip KB'.padStart(8)}`)
for (const [f, raw, gz] of rows) console.log(`${f.padEnd(w)}  ${raw.padStart(8)}  ${gz.padStart(8)}`)
const totalKb = total / 1024
console.log(`initial JavaScript: ${totalKb.toFixed(1)} KB gzip (budget ${BUDGET_KB} KB)`)
if (totalKb > BUDGET_KB) {
  console.error(`over budget by ${(totalKb - BUDGET_KB).toFixed(1)} KB`)
  process.exit(1)
}
