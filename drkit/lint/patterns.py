"""IAM/CAM wildcard patterns: ``*`` matches any run of characters, ``?`` exactly one.

Unlike :mod:`fnmatch`, brackets are literal (IAM has no character classes), so patterns are
compiled here. Compilation and overlap tests are cached because the same few patterns recur
across thousands of policy files.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WILD = re.compile(r"[*?]")


def has_wildcard(pattern: str) -> bool:
    return _WILD.search(pattern) is not None


@lru_cache(maxsize=65536)
def compile_pattern(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A regex that matches exactly the strings ``pattern`` matches."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Whether the literal ``value`` is matched by ``pattern``."""
    if not has_wildcard(pattern):
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return compile_pattern(pattern, ignore_case).fullmatch(value) is not None


@lru_cache(maxsize=65536)
def overlap(a: str, b: str) -> bool:
    """Whether some string is matched by both wildcard patterns ``a`` and ``b``.

    Used to decide whether a policy resource such as ``arn:aws:s3:::backup-*`` reaches a tier
    resource such as ``arn:aws:s3:::backup-bj/*``; either side may hold wildcards.
    """
    la, lb = len(a), len(b)
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == la and j == lb:
            result = True
        elif i < la and a[i] == "*":
            result = go(i + 1, j) or (j < lb and go(i, j + 1))
        elif j < lb and b[j] == "*":
            result = go(i, j + 1) or (i < la and go(i + 1, j))
        elif i < la and j < lb and (a[i] == b[j] or a[i] == "?" or b[j] == "?"):
            result = go(i + 1, j + 1)
        else:
            result = False
        memo[key] = result
        return result

    return go(0, 0)
