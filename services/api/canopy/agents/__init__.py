"""Outside agents: personal-access-token callers over MCP (and AG-UI)."""
