// Canopy's MCP server with the official TypeScript SDK client (@modelcontextprotocol/sdk, the 2025 protocol):
// list tools, call them, read the tree resource and get a resource-updated notification after a change.
// Driven by tests/stack/test_node_clients.py.
import assert from 'node:assert/strict'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'

const { CANOPY_URL: base, CANOPY_TOKEN: token, CANOPY_SESSION: session } = process.env
const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
})
const client = new Client({ name: 'canopy-node-test', version: '1.0.0' })
await client.connect(transport)

const tools = (await client.listTools()).tools.map((t) => t.name).sort()
assert.deepEqual(tools, ['add_nodes', 'delete_node', 'find_nodes', 'get_tree', 'list_sessions', 'move_node', 'undo', 'update_node'])

const uri = `canopy://sessions/${session}/tree`
let notified
const updated = new Promise((resolve) => (notified = resolve))
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
  if (n.params.uri === uri) notified(n.params.uri)
})
await client.subscribeResource({ uri })

const added = await client.callTool({ name: 'add_nodes', arguments: { session_id: session, parent_id: 'root', values: ['From Node'] } })
assert.ok(!added.isError, JSON.stringify(added.content))
assert.equal(await updated, uri)

const read = await client.readResource({ uri })
const tree = JSON.parse(read.contents[0].text).tree
assert.ok(tree.children.some((c) => c.value === 'From Node'))

const bad = await client.callTool({ name: 'delete_node', arguments: { session_id: session, node_id: 'root' } })
assert.ok(bad.isError)
await client.close()
console.log(JSON.stringify({ ok: true, tools: tools.length }))
