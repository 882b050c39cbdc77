"""Numbers that could switch a guardrail off are refused everywhere they are read (issue 24.5,
issue 13.7): config keys, [schedule] and [approval] numbers, ledger specs and command-line
options. NaN, infinities, booleans, huge integers and absurd values give exit 2 and one
line naming the file and key (or the option), never exit 70 and never "ok".
"""

from __future__ import annotations

import math
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drkit.errors import ConfigError, InputError
from drkit.ledger.spec import default_spec_text, parse_spec_text
from drkit.numbers import MAX_INTEGER, checked_integer, checked_number, number_problem

BASE = """\
[repository]
primary = "beijing"
pack_size_mib = 16

[regions.beijing]
url = "file:regions/bj"
lock_days = 7
retention_days = 30
max_lag_hours = 26

[regions.shanghai]
url = "file:regions/sh"
max_lag_hours = 26

[sources.shop]
type = "files"
path = "data"

[objectives]
rto_minutes = 240
rpo_hours = 26

[schedule]
misfire_grace_seconds = 3600

[schedule.webhook]
timeout_seconds = 10

[approval]
quorum = 2
expiry_hours = 72
max_skew_minutes = 5
"""

HUGE = "9" * 5000  # more digits than Python converts to text (4,300)
BIG = "1" + "0" * 40  # readable, but overflows every bound and would print as 41 digits

# (table, key) of every number in BASE: each is a guardrail or a limit someone relies on.
NUMERIC_KEYS = [
    ("repository", "pack_size_mib"),
    ("regions.beijing", "lock_days"),
    ("regions.beijing", "retention_days"),
    ("regions.beijing", "max_lag_hours"),
    ("regions.shanghai", "max_lag_hours"),
    ("objectives", "rto_minutes"),
    ("objectives", "rpo_hours"),
    ("schedule", "misfire_grace_seconds"),
    ("schedule.webhook", "timeout_seconds"),
    ("approval", "quorum"),
    ("approval", "expiry_hours"),
    ("approval", "max_skew_minutes"),
]
BAD_VALUES = ["nan", "inf", "-inf", "+nan", BIG, HUGE, f"-{HUGE}", "1e308", "-1", "true"]


def with_value(table: str, key: str, value: str) -> str:
    """BASE with ``key`` in ``[table]`` set to the TOML text ``value``."""
    out, current = [], ""
    for line in BASE.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif current == table and line.split(" = ")[0] == key:
            line = f"{key} = {value}"
        out.append(line)
    text = "\n".join(out) + "\n"
    assert text != BASE, (table, key)
    return text


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    return tmp_path


def assert_one_line_error(stderr: str, *parts: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    assert any(all(p in line for p in parts) for line in lines), stderr


def test_base_config_is_clean(drkit, project: Path) -> None:
    (project / "drkit.toml").write_text(BASE)
    res = drkit("config", "check")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith(": ok")


@pytest.mark.parametrize(("table", "key"), NUMERIC_KEYS)
@pytest.mark.parametrize("value", ["nan", "inf", BIG, HUGE], ids=["nan", "inf", "big", "huge"])
def test_config_check_refuses_bad_number(drkit, project: Path, table: str, key: str,
                                         value: str) -> None:
    (project / "drkit.toml").write_text(with_value(table, key, value))
    res = drkit("config", "check")
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "internal error" not in res.stderr
    if value == HUGE:
        # tomllib itself cannot read it; the message still names the key and line.
        assert f"not usable TOML: {table}.{key} (line " in res.stdout, res.stdout
        assert "an integer of 5000 digits" in res.stdout
    else:
        assert f"drkit.toml: {table}.{key}: " in res.stdout, res.stdout
    if value == BIG:
        assert "an integer of about 41 digits" in res.stdout


@pytest.mark.parametrize(("table", "key"), [k for k in NUMERIC_KEYS
                                            if not k[0].startswith("approval")])
def test_status_refuses_nan_instead_of_reporting_ok(drkit, project: Path, table: str,
                                                   key: str) -> None:
    # NaN made every lag/RTO/RPO comparison false: status said "ok" or ended in exit 70.
    (project / "drkit.toml").write_text(with_value(table, key, "nan"))
    res = drkit("status")
    assert res.exit_code == 2, res.stdout + res.stderr
    assert_one_line_error(res.stderr, "drkit: error:", f"{table}.{key}", "nan")
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize("value", BAD_VALUES, ids=lambda v: v if len(v) < 20 else "huge")
def test_every_bad_value_of_rpo_is_refused(drkit, project: Path, value: str) -> None:
    (project / "drkit.toml").write_text(with_value("objectives", "rpo_hours", value))
    res = drkit("config", "check", "--json")
    assert res.exit_code == 2
    assert "objectives.rpo_hours" in res.stdout and "internal error" not in res.stderr


def test_absurd_but_finite_values_are_refused(drkit, project: Path) -> None:
    # A lag allowance of a century is an alarm switched off without saying so.
    (project / "drkit.toml").write_text(with_value("regions.shanghai", "max_lag_hours",
                                                   "876000"))
    res = drkit("config", "check")
    assert res.exit_code == 2
    assert "regions.shanghai.max_lag_hours: must be between 0 and 8784" in res.stdout


def test_huge_integer_in_toml_is_a_config_error(drkit, project: Path) -> None:
    # Beyond tomllib's own limit the integer never reaches drkit's checks.
    (project / "drkit.toml").write_text(BASE + f"\n[cloud]\nx = {'1' * 5000}\n")
    res = drkit("config", "check")
    assert res.exit_code == 2 and "not usable TOML" in res.stdout
    assert_one_line_error(drkit("status").stderr, "drkit: error:", "not usable TOML")


@pytest.mark.parametrize(("args", "option"), [
    (["prune", "--older-than-days", "nan"], "--older-than-days"),
    (["prune", "--older-than-days", "inf"], "--older-than-days"),
    (["prune", "--older-than-days", "1e400"], "--older-than-days"),
    pytest.param(["prune", "--older-than-days", HUGE], "--older-than-days", id="days-huge"),
    pytest.param(["prune", "--keep-last", HUGE], "--keep-last", id="keep-huge"),
    (["request", "prune", "--older-than-days", "-inf", "--reason", "r"], "--older-than-days"),
    (["request", "prune", "--keep-last", "1.5", "--reason", "r"], "--keep-last"),
    (["drill", "--region", "beijing", "--thaw-timeout", "nan"], "--thaw-timeout"),
    (["drill", "--region", "beijing", "--thaw-timeout", "inf"], "--thaw-timeout"),
])
def test_number_options_refuse_non_finite(drkit, project: Path, args: list[str],
                                          option: str) -> None:
    (project / "drkit.toml").write_text(BASE)
    res = drkit(*args)
    assert res.exit_code == 2, res.stdout + res.stderr
    assert f"Invalid value for '{option}'" in res.stderr
    assert "internal error" not in res.stderr and HUGE not in res.stderr


def test_ledger_spec_huge_integer_is_refused() -> None:
    text = default_spec_text().replace("cap_fen = ", f"cap_fen = 1{'0' * 30} # ", 1)
    assert text != default_spec_text()
    with pytest.raises(ConfigError, match="provision.cap_fen: must be between 0 and"):
        parse_spec_text(text, source="spec.toml")
    with pytest.raises(ConfigError, match="not usable TOML"):
        parse_spec_text(default_spec_text() + f"\nx = {'7' * 5000}\n", source="spec.toml")


@pytest.mark.parametrize(("value", "reason"), [
    (math.nan, "finite"), (math.inf, "finite"), (-math.inf, "finite"), (True, "got bool"),
    ("3", "got str"), (None, "got NoneType"),
    pytest.param(10**5000, "about 5001 digits", id="huge-int"),
    (-1, "between 0 and 10"), (11, "between 0 and 10"),
])
def test_number_problem_reasons(value: object, reason: str) -> None:
    problem = number_problem(value, minimum=0, maximum=10)
    assert problem is not None and reason in problem
    with pytest.raises(InputError, match=r"^where: "):
        checked_number(value, where="where", minimum=0, maximum=10)


def test_good_numbers_pass() -> None:
    assert checked_number(2.5, where="w", minimum=0, maximum=10) == 2.5
    assert checked_integer(MAX_INTEGER, where="w", minimum=0) == MAX_INTEGER
    assert number_problem(0, minimum=0, maximum=1, exclusive_minimum=True) is not None
    assert number_problem(1.5, minimum=0, maximum=10, integer=True) is not None


# --- Property-based fuzzing: mutated configs and command arguments never give exit 70 -----

_SCALARS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
        if math.isinf(f) else repr(f)),
    st.integers().map(str),
    st.sampled_from([HUGE, f"-{HUGE}", str(2**64), str(-(2**63)), "0", "-0", "1e999",
                     "true", "false", "[]", "{}", "[1, [2]]", '"file:../../etc"', '"s3://"',
                     '"cos://x/y"', '"s3://b/p?credentials=AKIA:x"', '"\\u0000"', '""',
                     '"\\u00e9\\u6c34\\U0001f600"', "1979-05-27T07:32:00Z"]),
    st.text(alphabet=string.printable + "é水😀", max_size=12).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"')
        .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        .replace("\x0b", "\\u000b").replace("\x0c", "\\f") + '"'),
)
# One region: a valid config makes status list each region in a child process (~1 s).
_LINES = BASE.replace('[regions.shanghai]\nurl = "file:regions/sh"\nmax_lag_hours = 26\n',
                      "").splitlines()
_MUTATION = st.tuples(st.sampled_from(["set", "delete", "duplicate", "rename"]),
                      st.integers(0, len(_LINES) - 1), _SCALARS)


def mutate(mutations: list[tuple[str, int, str]]) -> str:
    lines = list(_LINES)
    for op, index, value in mutations:
        index %= len(lines)
        line = lines[index]
        if op == "set" and " = " in line:
            lines[index] = f"{line.split(' = ')[0]} = {value}"
        elif op == "delete":
            del lines[index]
        elif op == "duplicate":
            lines.insert(index, line)
        elif op == "rename" and " = " in line:
            lines[index] = f"k\u00e9y{index} = {value}"
        if not lines:
            lines = ["[repository]"]
    return "\n".join(lines) + "\n"


def run_in(project: Path, drkit, *args: str) -> int:
    res = drkit(*args)
    assert res.exit_code in (0, 1, 2, 3), (args, res.exit_code, res.stderr)
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    return res.exit_code


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_MUTATION, min_size=1, max_size=4))
def test_fuzz_mutated_configs_never_crash(drkit, project: Path,
                                          mutations: list[tuple[str, int, str]]) -> None:
    text = mutate(mutations)
    (project / "drkit.toml").write_text(text, encoding="utf-8")
    check = run_in(project, drkit, "config", "check")
    status = run_in(project, drkit, "status")
    if check == 0:
        # A config that config check passes is one status can use.
        assert status in (0, 1), (text, status)


_ARG = st.one_of(_SCALARS, st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e400",
                                            HUGE, "0x10", "1_000", "", " ", "½", "٣"]))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([("prune", "--older-than-days"), ("prune", "--keep-last"),
                        ("drill", "--thaw-timeout"), ("ledger", "show"),
                        ("ledger", "--limit"), ("verify", "--read-data"),
                        ("check", "--read-data-subset"), ("schedule", "--count")]), _ARG)
def test_fuzz_number_arguments_never_crash(drkit, project: Path, command: tuple[str, str],
                                           value: str) -> None:
    (project / "drkit.toml").write_text(BASE)
    name, option = command
    if name == "ledger":
        (project / "l.json").write_text("{}")
        args = (["ledger", "show", "l.json", "--merchant", value] if option == "show"
                else ["ledger", "reconcile", "l.json", "l.json", "--limit", value])
    elif name == "schedule":
        args = ["schedule", "show", option, value]
    elif name == "drill":
        args = ["drill", "--region", "nowhere", option, value]
    else:
        args = [name, option, value]
    os.environ.pop("DRKIT_CONFIG", None)
    run_in(project, drkit, *args)


@pytest.mark.parametrize(("table", "key"), [("repository", "cache"), ("sources.shop", "path")])
def test_nul_in_a_path_is_a_config_error(drkit, project: Path, table: str, key: str) -> None:
    # A NUL makes every later file operation raise ValueError (exit 70); refuse it up front.
    text = BASE.replace(f"[{table}]\n", f"[{table}]\n{key} = \"x\\u0000y\"\n", 1)
    text = text.replace('path = "data"\n', "", 1) if key == "path" else text
    (project / "drkit.toml").write_text(text)
    res = drkit("config", "check")
    assert res.exit_code == 2
    assert f"{table}.{key}: must not contain a NUL character" in res.stdout
    assert len(res.stdout.strip().splitlines()) == 2  # the problem and the count
    assert_one_line_error(drkit("status").stderr, "drkit: error:", f"{table}.{key}")


@pytest.mark.parametrize("expr", ["0 2 * * \u00b2", "0 2 * * */\u00b2", "0 2 * * " + "9" * 5000,
                                  "0 2 * * */" + "1" * 5000, "0 " + "1" * 5000 + " * * *"],
                         ids=["superscript-day", "superscript-step", "huge-day", "huge-step",
                              "huge-hour"])
def test_crontab_numbers_are_config_errors(drkit, project: Path, expr: str) -> None:
    # "\u00b2".isdigit() is true but int() refuses it; int() refuses 5,000 digits too.
    (project / "drkit.toml").write_text(BASE.replace(
        "[schedule]\n", f'[schedule]\nsnapshot = "{expr}"\n', 1))
    res = drkit("config", "check")
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "schedule.snapshot: " in res.stdout and "internal error" not in res.stderr


def test_stored_ledger_with_huge_amount_is_refused(tmp_path: Path) -> None:
    # A ledger document signed by a compromised writer: a 40-digit amount is refused when
    # read, instead of crashing every later report that prints it.
    from drkit.ledger import Ledger

    doc = {"format": "drkit-ledger/1", "entries": [{
        "merchant_id": 1, "industry": "retail", "plan": "cash", "compensation": "cash",
        "margin": "0.1", "baseline_orders": 1, "baseline_revenue_fen": 1,
        "cash_fen": 10**40, "impressions": 0, "extension_months": 0, "member_count": 0,
        "balance_total_fen": 0}]}
    from drkit.ledger.model import LedgerEntry

    with pytest.raises(InputError, match=r"e\.cash_fen: must be between .* about 41 digits"):
        LedgerEntry.from_dict(doc["entries"][0], where="e")
    with pytest.raises(InputError, match="not valid ledger JSON"):
        Ledger.from_json('{"format": "drkit-ledger/1", "x": ' + "1" * 5000 + "}")
