from __future__ import annotations

from pathlib import Path

import pytest

from drkit.config import check_config, load_config
from drkit.errors import ConfigError, InputError, InvalidObjectKey
from drkit.storage.base import validate_key
from drkit.storage.url import parse_store_url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drkit.toml"
    path.write_text(text)
    return path


MINIMAL = """
[repository]
primary = "beijing"
[regions.beijing]
url = "file:regions/bj"
lock_days = 7
retention_days = 30
[regions.shanghai]
url = "s3://drkit-sh/copy?region=ap-east-1&credentials=env:DRKIT_SH"
storage_class = "deep_archive"
[sources.shop]
type = "sqlite"
path = "data/shop.db"
production = true
"""


def test_minimal_config_is_typed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.primary == "beijing"
    assert cfg.primary_region.url.path == tmp_path / "regions/bj"
    sh = cfg.region("shanghai")
    assert sh.storage_class == "DEEP_ARCHIVE"
    assert (sh.url.scheme, sh.url.bucket, sh.url.prefix) == ("s3", "drkit-sh", "copy")
    assert sh.url.params == {"region": "ap-east-1", "credentials": "env:DRKIT_SH"}
    assert cfg.source("shop").path == tmp_path / "data/shop.db"
    assert cfg.source("shop").production is True
    assert cfg.keys_dir == tmp_path / "keys"


def test_unknown_region_and_source_are_input_errors(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(InputError, match=r"unknown region 'mars' \(configured: beijing, sh"):
        cfg.region("mars")
    with pytest.raises(InputError, match="unknown source 'crm'"):
        cfg.source("crm")


def test_load_config_names_first_problem_and_count(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[objectives]\nrto_minutes = -1\nrpo = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: objectives.rpo: unknown key")
    assert "(and 1 more; see 'drkit config check')" in str(err.value)


@pytest.mark.parametrize(
    ("snippet", "key", "reason"),
    [
        ('[regions.x]\nstorage_class = "COLD"\nurl = "file:x"\n', "regions.x.storage_class",
         "unknown storage class"),
        ('[regions.x]\nlock_days = true\nurl = "file:x"\n', "regions.x.lock_days",
         "must be a whole number, got bool"),
        ('[regions.x]\nurl = "cos://nobucketappid/p?region=ap-shanghai"\n', "regions.x.url",
         "BUCKETNAME-APPID"),
        ('[regions.x]\nurl = "cos://b-1250000000/p"\n', "regions.x.url", "need ?region="),
        ('[regions.x]\nurl = "s3://bucket/p?colour=red"\n', "regions.x.url",
         "unknown parameter 'colour'"),
        ('[regions.x]\nurl = "s3://bucket/p?credentials=AKIA123"\n', "regions.x.url",
         "credentials must look like env:NAME"),
        ('[regions.x]\nurl = "s3://bucket/../etc"\n', "regions.x.url", "bad prefix"),
        ('[regions.x]\n', "regions.x.url", "missing"),
        ('[sources.y]\ntype = "files"\n', "sources.y.path", "missing"),
        ('[sources.y]\ntype = "files"\npath = "p"\nexclude = [1]\n', "sources.y.exclude",
         "list of strings"),
        ('[repository]\npack_size_mib = 4096\n', "repository.pack_size_mib", "between 1 and 512"),
    ],
)
def test_each_problem_names_its_key(tmp_path: Path, snippet: str, key: str, reason: str) -> None:
    base = '[repository]\nprimary = "a"\n[regions.a]\nurl = "file:a"\n'
    if snippet.startswith("[repository]"):
        base = '[regions.a]\nurl = "file:a"\n'
        snippet = snippet.replace("[repository]\n", '[repository]\nprimary = "a"\n')
    _cfg, problems = check_config(write(tmp_path, base + snippet))
    found = {p.key: p.reason for p in problems}
    assert key in found, problems
    assert reason in found[key]


def test_secret_in_url_is_not_echoed(tmp_path: Path) -> None:
    # A credential pasted into a URL is refused, and the error shows the parameter name only.
    _cfg, problems = check_config(write(
        tmp_path,
        '[repository]\nprimary = "a"\n[regions.a]\n'
        'url = "s3://bucket/p?secret=wJalrXUtnFEMI"\n'))
    assert problems and "unknown parameter 'secret'" in problems[0].reason


@pytest.mark.parametrize("key", ["../x", "a/../b", "/abs", "a//b", "a/./b", "a\x00b", "a\nb",
                                 "a\\b", "", ".drkit-meta/x", "x" * 1025, "a\x7fb", "tab\there"])
def test_bad_keys_rejected(key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        validate_key(key)


@pytest.mark.parametrize("key", ["config", "packs/ab/abcdef", "journal/00000000000000000001",
                                 "snapshots/2026-11-23T02:30:00Z-abc", "a.b/c-d_e"])
def test_good_keys_accepted(key: str) -> None:
    assert validate_key(key) == key


def test_url_forms(tmp_path: Path) -> None:
    assert parse_store_url("file:///srv/drkit").path == Path("/srv/drkit")
    assert parse_store_url("file:rel/dir", base_dir=tmp_path).path == tmp_path / "rel/dir"
    with pytest.raises(InputError, match="unknown scheme gs:"):
        parse_store_url("gs://bucket/x")
    with pytest.raises(InputError, match="unknown scheme \\(none\\)"):
        parse_store_url("/just/a/path")
    with pytest.raises(InputError, match="file URLs take no host"):
        parse_store_url("file://server/share")
    with pytest.raises(InputError, match="no bucket name"):
        parse_store_url("s3:///prefix")
