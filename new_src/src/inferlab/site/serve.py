"""Preview a built site: a static file server bound to 127.0.0.1 only, never to the network."""

from __future__ import annotations

import errno
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from inferlab.errors import InferlabError

HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass  # tests and scripts want a silent server; the CLI uses the logging handler


def make_server(directory: Path, port: int = 8000, *, quiet: bool = False) -> ThreadingHTTPServer:
    """A server for `directory` on 127.0.0.1:`port` (0: any free port; `server.server_port` says
    which). Call `serve_forever()`, and `shutdown()` from another thread to stop it."""
    handler = partial(_QuietHandler if quiet else SimpleHTTPRequestHandler, directory=str(directory))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise InferlabError(f"port {port} is already in use; pick another with --port") from None
        raise InferlabError(f"cannot serve on {HOST}:{port}: {e.strerror or e}") from None
