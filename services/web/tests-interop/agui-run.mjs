// Runs Canopy's AG-UI endpoint with the official @ag-ui/client HttpAgent (its own stream verification on),
// then checks that the state it built from STATE_SNAPSHOT + STATE_DELTA equals the tree over REST, and
// that a second run while one is active ends in RUN_ERROR. Driven by tests/stack/test_node_clients.py.
import assert from 'node:assert/strict'
import { HttpAgent } from '@ag-ui/client'
import jsonpatch from 'fast-json-patch'

const { CANOPY_URL: base, CANOPY_TOKEN: token, CANOPY_ACCESS: access, CANOPY_SESSION: session } = process.env
const url = `${base}/api/agui/sessions/${session}`

function agent(threadId) {
  return new HttpAgent({ url, headers: { Authorization: `Bearer ${token}` }, threadId })
}

/** The REST tree as the AG-UI state map, built here independently of the server's code. */
function asMap(tree, rev) {
  const nodes = {}
  const walk = (node, parent) => {
    nodes[node.id] = { value: node.value, props: node.props ?? {}, parent, children: node.children.map((c) => c.id) }
    node.children.forEach((c) => walk(c, node.id))
  }
  walk(tree, null)
  return { rev, root: tree.id, nodes }
}

async function restTree() {
  const res = await fetch(`${base}/api/sessions/${session}`, { headers: { Authorization: `Bearer ${access}` } })
  assert.equal(res.status, 200)
  const body = await res.json()
  return asMap(body.tree, body.rev)
}

// 1. A run: the client verifies the stream itself (RUN_STARTED first, nothing after RUN_FINISHED, nothing left open).
const first = agent('thread-1')
first.addMessage({ id: 'u1', role: 'user', content: "Add 'Design', 'Build' and 'Launch' under root" })
const events = []
const result = await first.runAgent({ runId: 'run-1' }, { onEvent: ({ event }) => void events.push(event) })
const types = events.map((e) => e.type)
assert.equal(types[0], 'RUN_STARTED')
assert.equal(types.at(-1), 'RUN_FINISHED')
assert.ok(types.includes('STATE_SNAPSHOT') && types.includes('STATE_DELTA') && types.includes('TOOL_CALL_START'))
assert.ok(result.newMessages.some((m) => m.role === 'assistant' && typeof m.content === 'string' && m.content.length))
// The snapshot with every delta applied (by the client, and again here) equals the tree over REST.
let replayed = structuredClone(events.find((e) => e.type === 'STATE_SNAPSHOT').snapshot)
for (const e of events.filter((e) => e.type === 'STATE_DELTA')) {
  replayed = jsonpatch.applyPatch(replayed, e.delta, true, false).newDocument
}
const rest = await restTree()
assert.deepEqual(first.state, rest)
assert.deepEqual(replayed, rest)
const values = rest.nodes.root.children.map((id) => rest.nodes[id].value)
assert.deepEqual(values.slice(-3), ['Design', 'Build', 'Launch'])

// 2. A second run while one is active fails cleanly: RUN_ERROR (code 409), and the first still finishes.
const long = agent('thread-2')
long.addMessage({ id: 'u2', role: 'user', content: "Add 'Alpha', 'Beta', 'Gamma', 'Delta' and 'Epsilon' under root" })
let textStarted
const started = new Promise((resolve) => (textStarted = resolve))
const running = long.runAgent({ runId: 'run-2' }, { onTextMessageContentEvent: () => textStarted() })
await started
const second = agent('thread-3')
second.addMessage({ id: 'u3', role: 'user', content: "Add 'Omega' under root" })
let runError = null
await second
  .runAgent({ runId: 'run-3' }, { onRunErrorEvent: ({ event }) => void (runError = event) })
  .catch(() => undefined) // the client rejects the run as well as reporting the event
assert.ok(runError, 'the second run got RUN_ERROR')
assert.equal(runError.code, '409')
await running
const after = await restTree()
assert.deepEqual(long.state, after)
assert.ok(!Object.values(after.nodes).some((n) => n.value === 'Omega'))
console.log(JSON.stringify({ ok: true, events: types.length, secondRun: runError.message }))
