"""A drkit project whose primary region is an S3 bucket on the moto server, with the four
approvers of tests/approval enrolled, and a local HTTP server that records webhook calls."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from approval.conftest import RECOVERY, Project, approver_keys  # noqa: F401 (a fixture)

FIXTURES = Path(__file__).parent / "fixtures"

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 1

[regions.beijing]
url = "{primary}"
retention_days = 30

[regions.shanghai]
url = "file:regions/shanghai"
retention_days = 365

[sources.uploads]
type = "files"
path = "data/uploads"

[verify]
state_dir = "state"

[schedule.webhook]
url = "{webhook}"
"""


class Hooks:
    """A real HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def s3_project(drkit: Any, clock: Any, tmp_path: Path, approver_keys: Path,  # noqa: F811
               store_url_env: Any, hooks: Hooks) -> Project:
    primary = store_url_env.s3()
    (tmp_path / "drkit.toml").write_text(CONFIG.format(primary=primary, webhook=hooks.url))
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    proj = Project(tmp_path, drkit, clock)
    proj.primary_url = primary  # type: ignore[attr-defined]
    proj.run("keys", "init")
    shutil.copytree(approver_keys, tmp_path / "keys" / "approvers")
    for path in sorted((tmp_path / "keys" / "approvers").glob("*.enrollment.json")):
        proj.enrollments[path.name.split(".")[0]] = path
    proj.run("approvers", "bootstrap", *(str(proj.enrollments[n])
                                         for n in ("alice", "bob", "carol", "dave")))
    return proj


__all__ = ["FIXTURES", "RECOVERY", "Hooks"]
