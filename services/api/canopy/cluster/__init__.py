"""Several API replicas on one PostgreSQL: session leases (who serves a session, fenced by an
epoch) and cross-replica events (LISTEN/NOTIFY). See docs/scaling.md."""
