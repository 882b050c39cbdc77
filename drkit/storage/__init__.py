"""Object storage behind one small interface; see ``drkit.storage.base``."""

from drkit.storage.base import BucketSettings, ObjectInfo, Store, validate_key
from drkit.storage.url import StoreURL, open_store, parse_store_url

__all__ = [
    "BucketSettings",
    "ObjectInfo",
    "Store",
    "StoreURL",
    "open_store",
    "parse_store_url",
    "validate_key",
]
