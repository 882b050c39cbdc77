"""Wrong credentials against a server that checks them: one clear line, no secret.

The shared moto server accepts any key, so this test starts its own moto server process
with IAM enforcement on from the first request (INITIAL_NO_AUTH_ACTION_COUNT=0): every
request signed with an unknown access key is refused, as real S3 refuses it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_server import free_port

from drkit.errors import BackendUnavailable, ExitCode
from drkit.storage.s3 import S3Store
from drkit.storage.url import parse_store_url

SECRET = "wrong-secret-value-that-must-never-be-printed"


@pytest.fixture(scope="module")
def enforcing_endpoint() -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0",
               MOTO_EC2_LOAD_DEFAULT_AMIS="false")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the IAM-enforcing moto server did not start")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_wrong_credentials_are_one_clear_line(enforcing_endpoint: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAD_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    monkeypatch.setenv("BAD_SECRET_ACCESS_KEY", SECRET)
    store = S3Store.from_url(parse_store_url(
        f"s3://drkit-anything/p?region=us-east-1&endpoint={enforcing_endpoint}"
        "&credentials=env:BAD"), clock=None)
    for attempt in (lambda: store.put("a/b", b"x"), lambda: list(store.list("")),
                    lambda: store.get("a/b")):
        with pytest.raises(BackendUnavailable) as err:
            attempt()
        message = str(err.value)
        assert err.value.exit_code == ExitCode.USAGE
        assert "\n" not in message
        assert "drkit-anything" in message
        assert "credential" in message.lower() or "access key" in message.lower(), message
        assert SECRET not in message and "AKIAWRONG" not in message


def test_wrong_credentials_from_the_cli(enforcing_endpoint: str, drkit, tmp_path: Path
                                        ) -> None:
    (tmp_path / "drkit.toml").write_text(
        '[repository]\nprimary = "aws"\n[regions.aws]\n'
        f'url = "s3://drkit-anything/p?region=us-east-1&endpoint={enforcing_endpoint}'
        '&credentials=env:BAD"\n')
    res = drkit("snapshots", env={"BAD_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG0",
                                  "BAD_SECRET_ACCESS_KEY": SECRET})
    assert res.exit_code == 2, res.stdout + res.stderr
    assert res.stderr.startswith("drkit: error: ") and res.stderr.count("\n") == 1
    assert SECRET not in res.stderr and "Traceback" not in res.stderr
