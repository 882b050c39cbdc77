"""IAM/CAM wildcard patterns: ``*`` matches any run of characters, ``?`` exactly one.

Unlike :mod:`fnmatch`, brackets are literal (IAM has no character classes), so matching is
done here, without regular expressions: patterns come from the files being linted, and a
backtracking regex lets a pattern of many stars stall the run. Overlap tests are cached
because the same few patterns recur across thousands of policy files.
"""

from __future__ import annotations

import re
from functools import lru_cache

_STARS = re.compile(r"\*{2,}")


def has_wildcard(pattern: str) -> bool:
    # Two substring tests cost a quarter of a regex search; this runs for every pattern.
    return "*" in pattern or "?" in pattern


def collapse_stars(pattern: str) -> str:
    """``pattern`` with every run of ``*`` made one ``*`` (they match the same strings)."""
    return _STARS.sub("*", pattern) if "**" in pattern else pattern


def wildcard_match(pattern: str, value: str) -> bool:
    """Whether ``value`` is matched by ``pattern``, in O(len(pattern) * len(value)) at worst.

    The greedy two-pointer algorithm: on a mismatch after a ``*``, only the most recent
    ``*`` is retried one character further, so a hostile pattern such as
    ``s3:*a*a*a*...*x`` costs at most the product of the lengths, never exponential time.
    """
    p = v = 0
    star = -1
    mark = 0
    lp, lv = len(pattern), len(value)
    while v < lv:
        if p < lp and (pattern[p] == "?" or pattern[p] == value[v]):
            p += 1
            v += 1
        elif p < lp and pattern[p] == "*":
            star = p
            mark = v
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            v = mark
        else:
            return False
    while p < lp and pattern[p] == "*":
        p += 1
    return p == lp


def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Whether the literal ``value`` is matched by ``pattern``."""
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if not has_wildcard(pattern):
        return pattern == value
    return wildcard_match(pattern, value)


@lru_cache(maxsize=65536)
def overlap(a: str, b: str) -> bool:
    """Whether some string is matched by both wildcard patterns ``a`` and ``b``.

    Used to decide whether a policy resource such as ``arn:aws:s3:::backup-*`` reaches a tier
    resource such as ``arn:aws:s3:::backup-bj/*``; either side may hold wildcards.
    Computed bottom-up over (i, j) suffix pairs, so a long pattern costs
    O(len(a) * len(b)) time and no recursion depth.
    """
    a, b = collapse_stars(a), collapse_stars(b)
    la, lb = len(a), len(b)
    # row[j] holds go(i + 1, j) while row i is computed; go(i, j): suffixes a[i:], b[j:].
    below = [False] * (lb + 1)
    below[lb] = True  # go(la, lb)
    for j in range(lb - 1, -1, -1):  # go(la, j): only stars left in b can match nothing
        below[j] = b[j] == "*" and below[j + 1]
    for i in range(la - 1, -1, -1):
        row = [False] * (lb + 1)
        row[lb] = a[i] == "*" and below[lb]
        for j in range(lb - 1, -1, -1):
            if a[i] == "*":
                row[j] = below[j] or row[j + 1]
            elif b[j] == "*":
                row[j] = row[j + 1] or below[j]
            else:
                row[j] = (a[i] == b[j] or a[i] == "?" or b[j] == "?") and below[j + 1]
        below = row
    return below[0]


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
