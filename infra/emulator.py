"""DynamoDB- and SQS-compatible emulator on loopback: moto's WSGI app, made atomic.

Plain `moto_server` runs concurrent DynamoDB transactions interleaved, so conditional
writes can oversell. Every DynamoDB request here runs under one lock; SQS requests stay
concurrent so that long polling does not stall the table.

Prints `listening on <port>` once the socket is bound (port 0 picks a free one).
"""

import argparse
import os
import sys
import threading
import time

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server, WSGIRequestHandler


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def atomic_dynamodb(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with lock:
                # Materialise the body under the lock: the work happens while it is read.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def exit_with_parent():
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one ends",
    )
    args = parser.parse_args()
    if args.exit_with_parent:
        exit_with_parent()
    app = atomic_dynamodb(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=QuietHandler
    )
    print(f"listening on {server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
