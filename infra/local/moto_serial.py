#!/usr/bin/env python3
"""moto in server mode, with every DynamoDB request applied one at a time.

moto serves each connection on its own thread, and its backends are not safe under concurrent writes: with many
`TransactWriteItems` at once it answers HTTP 500, and nothing guarantees that two transactions' conditions are not
both checked before either writes. Real DynamoDB applies each transaction atomically. A lock around the WSGI
application gives moto that property while connections stay concurrent (keep-alive works as before), so
concurrency tests exercise our conditions, not moto's races.

It also fixes a cost of moto's that real DynamoDB does not have: moto's `TransactWriteItems` takes a deep copy of
the whole table for every item of the transaction (to roll back on failure), so a booking of ~17 items copied the
table 17 times and a few hundred bookings took seconds each and gigabytes of memory. Within one transaction the
copies are of the same unchanged table, so one is kept and reused: same rollback, one copy per table.

Usage (same flags as moto_server): moto_serial.py -H 127.0.0.1 -p 5050
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import threading
import types
from typing import Any, Callable, Iterable

import moto.dynamodb.models as dynamodb_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def copy_tables_once_per_transaction() -> None:
    """Makes moto's per-item table backups in `transact_write_items` share one deep copy per table."""
    # id -> (the table, its copy): holding the table keeps its id from being reused while the memo lives.
    memo: dict[int, tuple[Any, Any]] | None = None

    def deepcopy(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if memo is None or not isinstance(obj, dynamodb_models.Table):
            return copy.deepcopy(obj, *args, **kwargs)
        if id(obj) not in memo:
            memo[id(obj)] = (obj, copy.deepcopy(obj, *args, **kwargs))
        return memo[id(obj)][1]

    dynamodb_models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)  # type: ignore[assignment]
    original = dynamodb_models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal memo
        memo = {}
        try:
            return original(self, *args, **kwargs)
        finally:
            memo = None

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


class Serialized:
    """Runs the wrapped WSGI application for one DynamoDB request at a time, its whole body included.

    Only DynamoDB (JSON protocol, `X-Amz-Target: DynamoDB_…`) is serialised: it is the service whose atomicity the
    tests rely on, and serialising SQS too would let one long poll (`ReceiveMessage` waiting for messages) hold
    every other request for its whole wait.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return list(self.app(environ, start_response))
        with self.lock:
            return list(self.app(environ, start_response))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    copy_tables_once_per_transaction()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
