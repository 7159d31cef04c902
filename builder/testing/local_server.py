"""An HTTP server on 127.0.0.1 that answers what an app returns, for tests and benchmarks.

`LocalServer(app)` serves any object with `handle(method, path, body) -> Reply` on a free
loopback port, one thread per connection, keep-alive like the real servers; `tgi_server.py` and
`scripted_server.py` hold the apps. A `Reply` can also drop the connection or drip its body, the
faults a client must survive.

    with LocalServer(app) as server: ... server.url ...
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """What to answer: JSON (or raw bytes) with a status and headers, or nothing at all (`drop`).

    `drip` sends the body one byte at a time, that many seconds apart: every read is quick, the
    answer never ends (until the server stops). `quote_request` adds the request's headers to a
    JSON object body, as some gateways quote the request back in their error pages (the
    `Authorization` header included).
    """

    status: int = 200
    body: object = None
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0
    quote_request: bool = False


def tgi_error(status: int, message: str, error_type: str) -> Reply:
    """TGI's `ErrorResponse`."""
    return Reply(status, {"error": message, "error_type": error_type})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real servers
    disable_nagle_algorithm = True  # real servers answer at once; Nagle + delayed ACK adds ~40 ms

    def do_GET(self) -> None:
        self._answer(self.server.app.handle("GET", self.path, None))

    def do_POST(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as error:
            self._answer(tgi_error(400, f"invalid JSON: {error}", "validation"))
            return
        self._answer(self.server.app.handle("POST", self.path, body))

    def _answer(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True  # the socket closes with no response at all
            return
        body = reply.body
        if reply.quote_request:  # Authorization first: the client may cut a long page short
            headers = sorted(self.headers.items(), key=lambda kv: kv[0].lower() != "authorization")
            body = {**body, "request": {"headers": dict(headers)}}
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the client gave up (a "hang" fault)
            if not reply.drip:
                self.wfile.write(body)
            stopping = getattr(self.server.app, "stopping", threading.Event())
            for i in range(len(body) if reply.drip else 0):
                self.wfile.write(body[i : i + 1])
                if stopping.wait(reply.drip):
                    return

    def log_message(self, format, *args) -> None:  # quiet test output
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 64+ clients connect at once; the default backlog of 5 resets them
    authorizations: list[str | None]  # the Authorization header of each POST, in arrival order

    def handle_error(self, request, client_address) -> None:
        """A client that closed its connection (a cancelled request) is no error of ours."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """Serve an app (`handle(method, path, body) -> Reply`) on a free loopback port."""

    def __init__(self, app) -> None:
        self.app = app
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.app = app
        self.httpd.authorizations = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LocalServer:
        serve = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        serve.start()
        return self

    def __exit__(self, *exc) -> None:
        getattr(self.app, "stopping", threading.Event()).set()  # release hanging handlers
        getattr(self.app, "drain", lambda: None)()  # and wait for work in progress, if it says
        self.httpd.shutdown()
        self.httpd.server_close()


class RecordingProxy:
    """A `LocalServer` app that forwards every request to a real server (`upstream`, its base
    URL) and keeps the path and JSON body of each POST: what a client really sent."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.bodies: list[tuple[str, dict]] = []

    def handle(self, method: str, path: str, body) -> Reply:
        import httpx2

        if method == "POST":
            self.bodies.append((path, body))
        answer = httpx2.request(method, self.upstream + path, json=body, timeout=600)
        return Reply(answer.status_code, answer.content)


@contextlib.contextmanager
def in_child_process(serve, *args):
    """Run `serve(connection, *args)` in a spawned process (a server there does not share the
    client's interpreter lock, as a real one would not); yield the first thing it sends back
    (its URLs), and tell it "stop" at the end. `serve` must be importable (a module's function).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=serve, args=(child, *args), daemon=True)
    process.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        process.join()
