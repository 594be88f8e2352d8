"""moto's S3 server with one request handled at a time.

moto checks `If-None-Match: *` and then stores the object in separate
steps, so two concurrent creates of one key can both succeed; S3 itself
decides them atomically. Handling one request at a time gives the tests a
server whose creates are atomic, as tests/tests/object_store.rs checks
before it runs anything else.

Usage: serial_moto.py HOST PORT
"""

import sys
import threading

from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple

# Newer moto keeps S3 metadata headers with underscores through its own
# handler; older releases have none, and the tests use no such header.
handler = getattr(werkzeug_app, "MotoRequestHandler", WSGIRequestHandler)

app = DomainDispatcherApplication(create_backend_app)
turn = threading.Lock()


def serial(environ, start_response):
    with turn:
        # The body is built inside the lock: moto does its work lazily.
        return list(app(environ, start_response))


if __name__ == "__main__":
    run_simple(sys.argv[1], int(sys.argv[2]), serial, threaded=True, request_handler=handler)
