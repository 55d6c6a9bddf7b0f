"""One HTTP helper for the local tooling (the demo, the end-to-end tests): a request with a JSON or form body, and its
answer as (status, parsed JSON or None, headers). An HTTP error status is an answer, not an exception; nothing
answering at all is `Unreachable`."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message


class Unreachable(ConnectionError):
    """Nothing answered at the address (refused, timed out)."""


def exchange(method: str, url: str, *, json_body=None, form=None, raw: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 30.0,
             text: bool = False) -> tuple[int, object, Message]:
    """(HTTP status, the body as JSON or None (with `text`, as a string), the answer's headers)."""
    sent = {"Accept": "application/json", **(headers or {})}
    data = raw
    if json_body is not None:
        data = json.dumps(json_body).encode()
        sent.setdefault("Content-Type", "application/json")
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    outgoing = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout) as response:
            status, body, answered = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, body, answered = error.code, error.read(), error.headers
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise Unreachable(f"nothing answers at {url.split('?', 1)[0]} ({error})") from error
    if text:
        return status, body.decode(), answered
    try:
        return status, (json.loads(body) if body.strip() else None), answered
    except ValueError:
        return status, None, answered


def request(method: str, url: str, **options) -> tuple[int, object]:
    """(HTTP status, the body as JSON or None): [`exchange`] without the headers."""
    status, answer, _ = exchange(method, url, **options)
    return status, answer
