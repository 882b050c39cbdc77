"""One validator for every number drkit reads: config keys, CLI options, specs, policies.

A guardrail number that is NaN switches its alarm off (every comparison with NaN is false),
an infinite one turns "alarm after N hours" into "never", and a huge integer ends in
``OverflowError`` or ``ValueError`` far from where it was read. So every number passes
through :func:`number_problem` (for readers that collect problems, such as
``drkit config check``), :func:`checked_number` (for readers that stop at the first), or
the :class:`Number` click parameter type (for command-line options). Each refuses
non-finite values, booleans, and values outside the bounds the caller gives.
"""

from __future__ import annotations

import math
import re
from typing import Any

import click

from drkit.errors import InputError

#: The largest integer a JSON consumer with doubles (jq, JavaScript) reads exactly. No
#: count, size or amount drkit reads comes near it; anything beyond is a mistake or an
#: attack, and refusing it early keeps int->float and int->str conversions safe.
MAX_INTEGER = 2**53 - 1


def show_number(value: Any) -> str:
    """``value`` for an error message, without ever converting a huge int to text.

    Python refuses to turn an integer of more than 4,300 digits into a string (ValueError),
    so a message that echoed it would itself crash.
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    return repr(value)


def number_problem(value: Any, *, minimum: float, maximum: float, integer: bool = False,
                   exclusive_minimum: bool = False) -> str | None:
    """Why ``value`` is not an acceptable number, or None when it is."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be {kind}, got {type(value).__name__}"
    if integer and not isinstance(value, int):
        return f"must be {kind}, got {show_number(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    low_ok = value > minimum if exclusive_minimum else value >= minimum
    if not low_ok or value > maximum:
        above = " (exclusive)" if exclusive_minimum else ""
        return (f"must be between {minimum:g}{above} and {maximum:g}, "
                f"got {show_number(value)}")
    return None


def checked_number(value: Any, *, where: str, minimum: float, maximum: float,
                   integer: bool = False, exclusive_minimum: bool = False) -> float:
    """``value`` as a float, or InputError (exit 2) naming ``where`` (file: key, option)."""
    problem = number_problem(value, minimum=minimum, maximum=maximum, integer=integer,
                             exclusive_minimum=exclusive_minimum)
    if problem:
        raise InputError(f"{where}: {problem}")
    return float(value)


def checked_integer(value: Any, *, where: str, minimum: int, maximum: int = MAX_INTEGER
                    ) -> int:
    """``value`` as an int, or InputError naming ``where``."""
    checked_number(value, where=where, minimum=minimum, maximum=maximum, integer=True)
    return int(value)


_LONG_DIGITS = re.compile(r"[0-9_]{4300,}")


def overlong_integer(text: str) -> str:
    """Where in TOML ``text`` an integer too long for Python to read is, as "KEY (line N):
    an integer of D digits".

    tomllib lets int()'s 4,300-digit ValueError escape without a position; this finds the
    first such run of digits so the message can still name the key.
    """
    m = _LONG_DIGITS.search(text)
    if m is None:
        return "an integer too long to read"
    line_no = text.count("\n", 0, m.start()) + 1
    table = ""
    for line in text[:m.start()].splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and "]" in stripped:
            table = stripped.strip("[]").strip()
    line = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
    key = line.split("=", 1)[0].strip() if "=" in line else ""
    where = ".".join(p for p in (table, key) if p) or "value"
    digits = len(m.group().replace("_", ""))
    return f"{where} (line {line_no}): an integer of {digits} digits"


class Number(click.ParamType):
    """A click option type: a finite number within bounds (an integer if ``integer``).

    ``click.FloatRange`` accepts ``nan`` (every comparison is false, so the range check
    passes) and ``type=float`` accepts ``inf``; this type refuses both with exit 2.
    """

    def __init__(self, minimum: float, maximum: float, *, integer: bool = False,
                 exclusive_minimum: bool = False) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.integer = integer
        self.exclusive_minimum = exclusive_minimum
        self.name = "integer" if integer else "number"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number: Any = value
        else:
            text = str(value).strip()
            try:
                # Length first: int() of a 5,000-digit string raises its own ValueError.
                if len(text) > 40:
                    raise ValueError
                number = int(text) if self.integer else float(text)
            except ValueError:
                kind = "a whole number" if self.integer else "a number"
                self.fail(f"must be {kind}, got {show_number(text)}", param, ctx)
        problem = number_problem(number, minimum=self.minimum, maximum=self.maximum,
                                 integer=self.integer,
                                 exclusive_minimum=self.exclusive_minimum)
        if problem:
            self.fail(problem, param, ctx)
        return number

    def __repr__(self) -> str:
        return f"Number({self.minimum:g}..{self.maximum:g})"


#: Option types shared by the commands that read the same quantity. ``--keep-last`` keeps
#: its own "at least 1" message in drkit.approval.operations, so only the top is bounded.
KEEP_LAST = Number(-MAX_INTEGER, 1_000_000, integer=True)
AGE_DAYS = Number(0, 36500)
THAW_SECONDS = Number(0, 30 * 86400)


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``: a number with its noun in the right form."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
