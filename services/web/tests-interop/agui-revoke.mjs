// A run of Canopy's AG-UI endpoint with the official @ag-ui/client HttpAgent whose personal access token is
// revoked while the turn runs: the run ends with RUN_ERROR code 401 (the client's own stream verification
// finds nothing left open), the turn is cancelled, and the token's next run is refused.
// Driven by tests/stack/test_node_clients.py.
import assert from 'node:assert/strict'
import { HttpAgent } from '@ag-ui/client'

const { CANOPY_URL: base, CANOPY_TOKEN: token, CANOPY_ACCESS: access, CANOPY_SESSION: session } = process.env
const url = `${base}/api/agui/sessions/${session}`
const rest = (path, init = {}) => fetch(`${base}${path}`, { ...init, headers: { Authorization: `Bearer ${access}` } })

const [pat] = await (await rest('/api/tokens')).json()
// Many values make a long answer: the slow stack streams it for more than a second after the snapshot.
const values = Array.from({ length: 30 }, (_, i) => `'Item ${i + 1}'`).join(', ')
const agent = new HttpAgent({ url, headers: { Authorization: `Bearer ${token}` }, threadId: 'revoked' })
agent.addMessage({ id: 'u1', role: 'user', content: `Add ${values} under root` })
const types = []
let runError = null
let revoked = null
await agent
  .runAgent(
    { runId: 'run-revoked' },
    {
      onEvent: ({ event }) => void types.push(event.type),
      // The run is streaming: revoke its token now.
      onStateSnapshotEvent: () => void (revoked ??= rest(`/api/tokens/${pat.id}`, { method: 'DELETE' })),
      onRunErrorEvent: ({ event }) => void (runError = event),
    },
  )
  .catch(() => undefined) // the client rejects the run as well as reporting the event
assert.equal((await revoked).status, 204)
assert.ok(runError, `the run got RUN_ERROR (events: ${types.join(' ')})`)
assert.equal(runError.code, '401')
assert.ok(!types.includes('RUN_FINISHED'))

// The turn was cancelled: its stored answer says so.
let answer
for (let i = 0; i < 200 && !answer; i++) {
  const body = await (await rest(`/api/sessions/${session}`)).json()
  answer = body.history.filter((m) => m.role === 'assistant').at(-1)
  if (!answer) await new Promise((resolve) => setTimeout(resolve, 50)) // a poll period
}
assert.ok(answer, 'the turn ended')
assert.equal(answer.cancelled, true)

// The revoked token runs nothing more.
const refused = await fetch(url, {
  method: 'POST',
  headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'text/event-stream' },
  body: JSON.stringify({ threadId: 't', runId: 'r', messages: [{ id: 'u', role: 'user', content: 'hi' }] }),
})
assert.equal(refused.status, 401)
console.log(JSON.stringify({ ok: true, error: runError.message }))
