"""Soak test: simulated users against the real stack for a bounded time (issue 8 part 5)."""
