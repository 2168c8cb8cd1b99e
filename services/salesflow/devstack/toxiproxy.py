"""Toxiproxy (a TCP proxy that injects latency, cuts and slow links on demand), built from source
through the Go module proxy once and cached beside the Kafka jars; and a small client of its HTTP API.

Used by the nemesis (``make nemesis``) to put real network faults between a service and the broker
or Postgres. Nothing else in the stack needs it: without Go, ``ensure_toxiproxy`` returns None and
the nemesis leaves network faults out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The newest v2 release on the Go module proxy (v2.5.0). Its server's package is cmd/server: the
# cmd/toxiproxy-server path of later GitHub releases does not exist in any version the proxy serves.
VERSION = "v2.5.0"
PACKAGE = "github.com/Shopify/toxiproxy/v2/cmd/server"


def binary_path(cache_dir: Path) -> Path:
    return cache_dir / f"toxiproxy-{VERSION}" / "server"


def ensure_toxiproxy(cache_dir: Path) -> Path | None:
    """The cached server binary, built with ``go install`` on first use; None when Go is absent."""
    binary = binary_path(cache_dir)
    if binary.exists():
        return binary
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        return None
    partial = binary.parent.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    env = {**os.environ, "GOBIN": str(partial), "GOFLAGS": "-mod=mod"}
    proc = subprocess.run([go, "install", f"{PACKAGE}@{VERSION}"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"go install {PACKAGE}@{VERSION} failed:\n{proc.stderr[-3000:]}")
    shutil.rmtree(binary.parent, ignore_errors=True)
    partial.rename(binary.parent)  # whole or not at all: an interrupted build never looks cached
    return binary


class ToxiproxyError(RuntimeError):
    """The Toxiproxy API refused a request."""


@dataclass
class Toxiproxy:
    """One ``toxiproxy-server`` process on ``api_port`` and the proxies made through it."""

    binary: Path
    api_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    proxies: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (listen, upstream)

    def start(self, timeout: float = 30) -> Toxiproxy:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "-host", "127.0.0.1", "-port", str(self.api_port)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._call("GET", "/version")
                return self
            except (OSError, ToxiproxyError):
                time.sleep(0.2)
        raise RuntimeError(f"toxiproxy did not answer on port {self.api_port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def proxy(self, name: str, listen: int, upstream: int) -> None:
        """Forward 127.0.0.1:``listen`` to 127.0.0.1:``upstream``."""
        body = {"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}", "enabled": True}
        self._call("POST", "/proxies", body)
        self.proxies[name] = (listen, upstream)

    def add_toxic(self, proxy: str, kind: str, attributes: dict[str, Any], stream: str = "downstream") -> str:
        """Add a toxic (``latency``, ``bandwidth``, ``timeout``, ``slicer``, ...); returns its name."""
        name = f"{kind}_{stream}"
        body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}
        self._call("POST", f"/proxies/{proxy}/toxics", body)
        return name

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Disabled: every connection through it is closed, and new ones are refused (a cut)."""
        self._call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def heal(self) -> None:
        """Every proxy enabled, every toxic gone."""
        self._call("POST", "/reset")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ToxiproxyError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from exc
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:  # /version answers plain text
            return raw.decode(errors="replace")
