"""A user's drkit.toml with S3 and COS regions on the moto server, checked by the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drkit.config import load_config
from drkit.storage.cos import COSStore
from drkit.storage.s3 import S3Store
from drkit.storage.url import open_store


def test_config_with_cloud_regions_opens_every_store(drkit: Any, store_url_env: Any,
                                                     tmp_path: Path) -> None:
    beijing = store_url_env.s3(region="us-east-1", prefix="drkit", object_lock_days=30)
    shanghai = store_url_env.cos(region="ap-shanghai", prefix="drkit", versioning=True)
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "beijing"

[regions.beijing]
url = "{beijing}"
lock_days = 30
retention_days = 90

[regions.shanghai]
url = "{shanghai}"
storage_class = "ARCHIVE"
lock_days = 0
retention_days = 365

[sources.shop]
type = "sqlite"
path = "shop.db"
""")
    (tmp_path / "shop.db").touch()  # config check also reports a source that does not exist
    result = drkit("config", "check", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["valid"] is True

    config = load_config(tmp_path / "drkit.toml")
    stores = {name: open_store(region.url, clock=drkit.clock)
              for name, region in config.regions.items()}
    assert isinstance(stores["beijing"], S3Store)
    assert isinstance(stores["shanghai"], COSStore)
    for name, store in stores.items():
        cls = config.region(name).storage_class
        store.put("snapshots/first", b"manifest", storage_class=cls)
        assert store.head("snapshots/first").storage_class == cls
    assert stores["beijing"].get("snapshots/first") == b"manifest"
    assert stores["shanghai"].head("snapshots/first").needs_thaw
    assert stores["beijing"].bucket_settings().default_retention_days == 30
    assert stores["shanghai"].bucket_settings().versioning == "Enabled"
