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


def _segments(value: str) -> list[str] | None:
    parts = value.split(":", 5)
    return parts if len(parts) == 6 and parts[0] in ("arn", "qcs") else None


def resource_overlap(a: str, b: str) -> bool:
    """:func:`overlap` per ARN/qcs segment (partition, service, region, account, resource).

    A ``*`` in a policy's region segment stands for a region, not for "anything including
    another bucket's name", so segments are compared one by one; ``*`` alone matches all.
    """
    sa, sb = _segments(a), _segments(b)
    if sa is None or sb is None:
        return overlap(a, b)
    return all(overlap(x, y) for x, y in zip(sa, sb, strict=True))


def resource_matches(pattern: str, value: str) -> bool:
    """:func:`matches` per ARN/qcs segment (see :func:`resource_overlap`)."""
    sp, sv = _segments(pattern), _segments(value)
    if sp is None or sv is None:
        return matches(pattern, value)
    return all(matches(x, y) for x, y in zip(sp, sv, strict=True))
