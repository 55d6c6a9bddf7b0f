"""A local stand-in for API Gateway's HTTP API (and for a Lambda function URL), in front of `cargo lambda watch`.

`cargo lambda watch` serves each function on `/lambda-url/<binary>/...`, but it is not API Gateway: it has no routes
(every path reaches the function), and it answers 500 itself to a body that is not UTF-8, before the function runs.
API Gateway passes such a body base64-encoded (`isBase64Encoded`), and the function must answer it. So this gateway
builds the payload-format-2.0 event API Gateway would build and invokes the function through the runtime's invoke
API (`POST {lambda}/2015-03-31/functions/<binary>/invocations`), as AWS does:

- routes come from `template.yaml` (every `HttpApi` event: method and path, `{name}` path parameters); a request
  no route takes gets API Gateway's `404 {"message":"Not Found"}`;
- a body is passed as text when it is UTF-8 and its content type is textual, base64 otherwise;
- the function's answer (`statusCode`, `headers`, `cookies`, `body`, `isBase64Encoded`) becomes the response; a
  function that fails or answers something else gets API Gateway's `500 {"message":"Internal Server Error"}`;
- with `--function-url <binary>` every request goes to that one function, as its function URL would.

Used by the fuzz (`infra/local/fuzz.py`), so what it finds is what a deployed stack would do.

    python infra/local/gateway.py --lambda http://127.0.0.1:9000 --port 8080 [--function-url tour-webhook]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cfn_template import load_template  # noqa: E402

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# API Gateway's HTTP API limits: a 10 MB payload and 30 seconds.
MAX_BODY_BYTES = 10 * 1024 * 1024
INVOKE_TIMEOUT_SECONDS = 30
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded", "+json", "+xml")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    binary: str
    pattern: re.Pattern

    @staticmethod
    def of(method: str, path: str, binary: str) -> "Route":
        parts = re.split(r"(\{[^}]+\})", path)
        regex = "".join(
            f"(?P<{p[1:-1].rstrip('+')}>.+)" if p.endswith("+}") else f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{")
            else re.escape(p)
            for p in parts
        )
        return Route(method.upper(), path, binary, re.compile(f"^{regex}$"))


def routes_of(template_path: Path = DEFAULT_TEMPLATE) -> list[Route]:
    routes = []
    for function in load_template(template_path).functions():
        for _, properties in function.events_of_type("HttpApi"):
            routes.append(Route.of(str(properties["Method"]), str(properties["Path"]), function.require_binary()))
    return routes


def is_text(content_type: str, body: bytes) -> bool:
    if not body:
        return True
    lowered = content_type.lower()
    if not any(kind in lowered for kind in TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def event_for(method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: bytes,
              route_key: str, path_parameters: dict[str, str] | None) -> dict:
    """The payload-format-2.0 event API Gateway's HTTP API (or a function URL) gives a function."""
    query: dict[str, str] = {}
    for pair in raw_query.split("&") if raw_query else []:
        name, _, value = pair.partition("=")
        name, value = urllib.parse.unquote_plus(name), urllib.parse.unquote_plus(value)
        query[name] = f"{query[name]},{value}" if name in query else value
    text = is_text(headers.get("content-type", ""), body)
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": not text,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode()
    return event


class Gateway:
    def __init__(self, lambda_base: str, routes: list[Route], function_url: str | None = None):
        self.lambda_base = lambda_base.rstrip("/")
        self.routes = routes
        self.function_url = function_url

    def route(self, method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
        """(binary, route key, path parameters) for a request, or None when no route takes it."""
        if self.function_url:
            return self.function_url, "$default", {}
        # The most specific route, as API Gateway chooses: a literal path before one with path variables, and on
        # the same path the method's own route before `ANY`.
        for route in sorted(self.routes, key=lambda r: (r.path.count("{"), r.method == "ANY")):
            found = route.pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route.binary, f"{route.method} {route.path}", found.groupdict()
        return None

    def invoke(self, binary: str, event: dict) -> tuple[int, list[tuple[str, str]], bytes]:
        request = urllib.request.Request(
            f"{self.lambda_base}/2015-03-31/functions/{binary}/invocations",
            data=json.dumps(event).encode(), method="POST", headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT_SECONDS) as answer:
                failed = answer.headers.get("X-Amz-Function-Error")
                payload = answer.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return internal_error()
        if failed:
            return internal_error()
        return response_of(payload)


def internal_error() -> tuple[int, list[tuple[str, str]], bytes]:
    return 500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'


def response_of(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP response API Gateway makes of a function's payload-format-2.0 answer."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return internal_error()
    if not isinstance(answer, dict) or "statusCode" not in answer:
        # A bare value is a 200 with it as a JSON body, as API Gateway does for format 2.0.
        return 200, [("content-type", "application/json")], payload
    try:
        status = int(answer["statusCode"])
    except (TypeError, ValueError):
        return internal_error()
    headers = [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()]
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        headers += [(str(name), str(v)) for v in values]
    headers += [("set-cookie", str(c)) for c in answer.get("cookies") or []]
    body = answer.get("body") or ""
    raw = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode()
    return status, headers, raw


def handler_for(gateway: Gateway):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass  # request lines may carry tokens and personal data in their query

        def _handle(self) -> None:
            try:
                self._route()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away before the answer (a fuzzer's timeout): nothing to answer

        def _route(self) -> None:
            raw_path, _, raw_query = self.path.partition("?")
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, [("content-type", "application/json")], b'{"message":"Request Entity Too Large"}')
                return
            body = self.rfile.read(length) if length else b""
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                name = name.lower()
                headers[name] = f"{headers[name]},{value}" if name in headers else value
            found = gateway.route(self.command, urllib.parse.unquote(raw_path))
            if found is None:
                self._send(404, [("content-type", "application/json")], b'{"message":"Not Found"}')
                return
            binary, route_key, parameters = found
            event = event_for(self.command, raw_path, raw_query, headers, body, route_key, parameters)
            self._send(*gateway.invoke(binary, event))

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def __getattr__(self, name: str):
            # Every method, standard or not (TRACE, QUERY, ...), is routed as API Gateway routes it.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    return Handler


def serve(lambda_base: str, port: int, function_url: str | None = None,
          template: Path = DEFAULT_TEMPLATE) -> ThreadingHTTPServer:
    """Starts the gateway on 127.0.0.1:`port` in a background thread; `shutdown()` stops it."""
    gateway = Gateway(lambda_base, routes_of(template), function_url)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(gateway))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lambda", dest="lambda_base", required=True, help="cargo lambda watch's address")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--function-url", help="serve this one function as its function URL would")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    args = parser.parse_args(argv)
    server = serve(args.lambda_base, args.port, args.function_url, Path(args.template))
    print(f"gateway on http://127.0.0.1:{args.port} -> {args.lambda_base}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
