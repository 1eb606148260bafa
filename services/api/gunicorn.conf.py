"""gunicorn settings for Canopy: exactly one uvicorn worker (sessions live in its memory)."""

import os

bind = f"{os.environ.get('API_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8000')}"
workers = 1
worker_class = "canopy.worker.CanopyWorker"
# Turns in flight get this long to finish and be stored after SIGTERM.
graceful_timeout = 20
timeout = 60
keepalive = 75
control_socket_disable = True
accesslog = None  # uvicorn's own access log goes through the redacting logging config
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
