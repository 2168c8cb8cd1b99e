"""The built documentation site, served over HTTP on a free port, with every request's status kept."""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS_ENV = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


def build_site(target: Path) -> Path:
    """``make docs``'s build, into ``target``: the Mermaid renderer fetched, then ``mkdocs build --strict``."""
    subprocess.run(["bash", "scripts/fetch-docs-assets.sh"], cwd=ROOT, check=True, timeout=300)
    mkdocs = ROOT / ".venv" / "bin" / "mkdocs"
    command = [str(mkdocs), "build", "--strict", "--quiet", "--site-dir", str(target)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=300, env={**os.environ, **DOCS_ENV})
    return target


class _Handler(SimpleHTTPRequestHandler):
    statuses: list[tuple[str, int]]

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self.statuses.append((self.path, int(code)))

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the statuses are what counts
        pass


@contextmanager
def serve(directory: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """Serve ``directory`` on 127.0.0.1; yields the base URL and the (path, status) of every request."""
    statuses: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"statuses": statuses})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", statuses
    finally:
        server.shutdown()
        server.server_close()
