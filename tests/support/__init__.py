"""What tests/ and bench/ share: the stack harness, WebSocket clients, the fake turn context, user factories.

bench/ imports from here and only here; nothing in tests/ imports bench/.
"""
