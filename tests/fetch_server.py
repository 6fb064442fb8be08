"""A real HTTP server on loopback that plays recorded responses, for tests of `qa fetch`.

Routes map a path (tried with its query first, then without) to a list of responses, served in
turn; the last one repeats. A response may be cut off mid-body (`drop=True`: the headers promise
the full length, half is sent, the connection closes) to test partial downloads, sent one byte at a
time (`drip=seconds` between bytes), or streamed from a generator without Content-Length (`stream`,
for bodies too large to hold).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_plus


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    drip: float = 0.0
    stream: Callable[[], Iterator[bytes]] | None = None


class FakeServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.log: list[tuple[str, dict[str, str]]] = []  # (unquoted path, headers) per request
        self.sent = 0  # body bytes written, over all requests
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                path = unquote_plus(self.path)
                server.log.append((path, dict(self.headers)))
                replies = server.routes.get(path) or server.routes.get(path.split("?")[0])
                reply = (replies.pop(0) if len(replies) > 1 else replies[0]) if replies else Reply(b"not found", 404)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.stream is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        for piece in reply.stream():
                            self.wfile.write(piece)
                            server.sent += len(piece)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.drip:
                    self.end_headers()
                    try:
                        for index in range(len(reply.body)):
                            self.wfile.write(reply.body[index : index + 1])
                            self.wfile.flush()
                            server.sent += 1
                            time.sleep(reply.drip)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True
                    return
                if reply.drop:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.drop:
                    self.wfile.write(reply.body[: len(reply.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)
                server.sent += len(reply.body)

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def requests_to(self, prefix: str) -> list[str]:
        return [path for path, _ in self.log if path.startswith(prefix)]
