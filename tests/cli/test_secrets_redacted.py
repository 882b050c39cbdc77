"""A secret written into drkit.toml by mistake is never echoed back."""

from __future__ import annotations

from pathlib import Path

import pytest

from drkit.redact import redact_text, redact_url

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

CONFIGS = {
    "credentials in the URL": f'url = "s3://bucket/x?region=us-east-1&credentials={KEY_ID}:{SECRET}"',
    "password in the endpoint": (f'url = "s3://bucket/x?region=us-east-1&endpoint='
                                 f'http://{KEY_ID}:{SECRET}@127.0.0.1:9"'),
    "unknown secret parameter": f'url = "s3://bucket/x?region=us-east-1&secret_key={SECRET}"',
}


def _write(tmp_path: Path, region_line: str) -> None:
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "beijing"

[regions.beijing]
{region_line}
""")


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_config_check_and_every_command_error_mask_the_secret(drkit, tmp_path: Path,
                                                              case: str) -> None:
    _write(tmp_path, CONFIGS[case])
    for argv in (("config", "check"), ("--json", "config", "check"), ("snapshots",),
                 ("verify", "--all"), ("-v", "snapshot")):
        res = drkit(*argv)
        assert res.exit_code in (1, 2) or argv[-1] == "check", (argv, res.stdout, res.stderr)
        for text in (res.stdout, res.stderr):
            assert SECRET not in text and "wJal" not in text, (argv, text)
            assert KEY_ID not in text, (argv, text)
        assert "Traceback" not in res.stderr
    if case == "credentials in the URL":
        res = drkit("config", "check")
        assert res.exit_code == 2 and "credentials=***" in res.stdout, res.stdout


def test_redact_keeps_what_is_not_secret() -> None:
    url = "s3://b/p?region=ap-east-1&credentials=env:DRKIT_SHANGHAI&endpoint=http://h:9000"
    assert redact_url(url) == url
    assert redact_text(f"store URL {url!r}: bad") == f"store URL {url!r}: bad"
    assert redact_url("https://qyapi.example/send?key=abc123") == \
        "https://qyapi.example/send?key=***"
    assert "abc" not in redact_text("POST https://h/x?token=abc&x=1 failed")
