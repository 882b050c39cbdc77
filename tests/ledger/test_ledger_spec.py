"""Spec validation: every error names the file and the key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from drkit.errors import ConfigError
from drkit.ledger import default_spec, load_spec, parse_spec
from drkit.ledger.spec import DEFAULT_SPEC_NAME, default_spec_text


def test_default_spec_has_the_published_terms() -> None:
    spec = default_spec()
    assert spec.incident == "2020-02 production data deletion"
    assert spec.time_zone == "Asia/Shanghai"
    assert spec.baseline.start == datetime(2020, 2, 17, 11, tzinfo=UTC)
    assert spec.baseline.end == datetime(2020, 2, 23, 11, tzinfo=UTC)
    assert spec.outage.start == datetime(2020, 2, 23, 11, tzinfo=UTC)
    assert spec.outage.end == datetime(2020, 3, 3, 1, tzinfo=UTC)
    assert spec.cap_fen == 150_000_000 * 100 and spec.currency == "CNY"
    traffic = spec.plans["traffic"]
    assert (traffic.compensation, traffic.impressions, traffic.extension_months) == (
        "traffic", 50_000, 2)
    assert spec.plans["cash"].compensation == "cash"
    assert spec.counted_statuses == ("paid",)
    assert all(isinstance(rate, Decimal) and 0 < rate < 1 for rate in spec.margins.values())
    assert "official industry reference values replace them" in default_spec_text()
    assert spec.source == DEFAULT_SPEC_NAME


def test_spec_round_trips_through_its_normal_form() -> None:
    spec = default_spec()
    again = parse_spec(spec.to_dict(), source="copy")
    assert again == spec and again.sha256 == spec.sha256


def test_spec_with_explicit_offsets_is_the_same_instant(spec_data) -> None:
    spec_data["baseline"]["start"] = "2020-02-17T11:00:00Z"
    spec = parse_spec(spec_data)
    assert spec.baseline.start == default_spec().baseline.start
    # ...but it is written differently, so it is a different spec document.
    assert spec.sha256 != default_spec().sha256


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "incident.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("old, new, key, reason", [
    ('catering = "0.18"', "catering = 0.18", "margins.catering", "not a float"),
    ('catering = "0.18"', 'catering = "lots"', "margins.catering", "not a decimal number"),
    ('catering = "0.18"', 'catering = "1.5"', "margins.catering", "between 0 and 1"),
    ('time_zone = "Asia/Shanghai"', 'time_zone = "Asia/Atlantis"', "incident.time_zone",
     "unknown IANA time zone"),
    ("end = 2020-03-03T09:00:00", "end = 2020-02-20T09:00:00", "outage.end",
     "must be after outage.start"),
    ("end = 2020-03-03T09:00:00", 'end = "soon"', "outage.end", "not an ISO 8601"),
    ('compensation = "cash"', 'compensation = "vouchers"', "plans.cash.compensation",
     "must be one of cash, traffic"),
    ("impressions = 50_000", 'impressions = "many"', "plans.traffic.impressions",
     "must be a whole number"),
    ("extension_months = 2", "extension_months = -2", "plans.traffic.extension_months",
     "must be between 0 and"),
    ("cap_fen = 15_000_000_000", "cap_fen = 1.5e10", "provision.cap_fen",
     "must be a whole number"),
    ('counted_statuses = ["paid"]', "counted_statuses = []", "revenue.counted_statuses",
     "non-empty list"),
    ('format = "drkit-ledger-spec/1"', 'format = "drkit-ledger-spec/9"', "format",
     "must be 'drkit-ledger-spec/1'"),
    ("[provision]", "[provision]\nrounding = \"down\"", "provision.rounding", "unknown key"),
    ('orders = "SELECT', 'invoices = "SELECT', "queries.invoices",
     "unknown key (and 1 more: queries.orders)"),
])
def test_spec_errors_name_file_and_key(tmp_path, old, new, key, reason) -> None:
    text = default_spec_text()
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert reason in str(info.value)
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_every_problem_is_counted(tmp_path) -> None:
    text = (default_spec_text().replace('catering = "0.18"', "catering = 0.18")
            .replace('retail = "0.12"', "retail = 0.12")
            .replace("[queries]", "[queries]\ntimeout = 5"))
    with pytest.raises(ConfigError, match=r"margins.catering: .* \(and 2 more: "
                                          r"margins.retail, queries.timeout\)"):
        load_spec(write(tmp_path, text))


def test_missing_file_and_bad_toml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="nope.toml: ledger spec not found"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="incident.toml: not valid TOML"):
        load_spec(write(tmp_path, "[incident\n"))
    with pytest.raises(ConfigError, match="incident.toml: incident: missing table"):
        load_spec(write(tmp_path, 'format = "drkit-ledger-spec/1"\n'))


@pytest.mark.parametrize("local, reason", [
    ("2021-11-07T01:30:00", "ambiguous"),       # clocks go back: 01:30 happens twice
    ("2021-03-14T02:30:00", "ambiguous or does not exist"),  # clocks go forward
])
def test_local_times_a_dst_change_makes_unclear_are_refused(spec_data, local,
                                                            reason) -> None:
    spec_data["incident"]["time_zone"] = "America/New_York"
    spec_data["baseline"]["start"] = local
    spec_data["baseline"]["end"] = "2021-12-01T00:00:00"
    with pytest.raises(ConfigError, match=f"baseline.start: local time {local} is {reason}"):
        parse_spec(spec_data, source="ny.toml")
