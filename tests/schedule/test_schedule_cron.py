"""Crontab meaning on APScheduler triggers, and fire times computed with an injected now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from drkit.schedule.cron import (
    CronSyntaxError,
    cron_trigger,
    expand_day_of_week,
    fire_times,
    next_fire_times,
    plan_runs,
)
from drkit.schedule.spec import drill_rotation

MON = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday


def test_zero_is_sunday_unlike_apscheduler_from_crontab() -> None:
    ours = cron_trigger("30 2 * * 0", UTC).get_next_fire_time(None, MON)
    theirs = CronTrigger.from_crontab("30 2 * * 0", timezone=UTC).get_next_fire_time(None, MON)
    assert ours == datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
    assert ours.strftime("%A") == "Sunday"
    assert theirs.strftime("%A") == "Monday"  # the pitfall the translation exists for
    for spelling in ("7", "sun", "SUN", "Sunday"):
        t = cron_trigger(f"30 2 * * {spelling}", UTC)
        assert t.get_next_fire_time(None, MON) == ours


@pytest.mark.parametrize(("field", "days"), [
    ("*", {0, 1, 2, 3, 4, 5, 6}),
    ("1-5", {1, 2, 3, 4, 5}),
    ("mon-fri", {1, 2, 3, 4, 5}),
    ("5-7", {5, 6, 0}),
    ("*/2", {0, 2, 4, 6}),
    ("1-5/2", {1, 3, 5}),
    ("0,6", {0, 6}),
    ("sat,7", {6, 0}),
])
def test_day_of_week_expansion(field: str, days: set[int]) -> None:
    assert expand_day_of_week(field) == days


def test_step_over_all_days_keeps_cron_meaning() -> None:
    # crontab "*/2" = Sun, Tue, Thu, Sat; APScheduler's own "*/2" would be Mon, Wed, ...
    t = cron_trigger("0 12 * * */2", UTC)
    got = {d.strftime("%a") for d in fire_times(t, MON, MON + timedelta(days=7))}
    assert got == {"Sun", "Tue", "Thu", "Sat"}


@pytest.mark.parametrize("bad", ["0 2 * *", "0 2 * * 8", "0 2 * * funday", "61 * * * *",
                                 "0 2 * * 5-1", "0 2 32 * *", "x y z w v"])
def test_bad_expressions_are_refused(bad: str) -> None:
    with pytest.raises(CronSyntaxError):
        cron_trigger(bad, UTC)


def test_day_of_month_or_day_of_week_like_cron() -> None:
    # crontab fires when EITHER restricted day field matches.
    t = cron_trigger("0 0 1 * mon", UTC)
    got = fire_times(t, datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 12, 15, tzinfo=UTC))
    assert [d.day for d in got] == [30, 1, 7, 14]


def test_hourly_verify_across_a_day_boundary() -> None:
    t = cron_trigger("15 * * * *", UTC)
    got = fire_times(t, datetime(2026, 11, 23, 22, 0, tzinfo=UTC),
                     datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    assert [d.strftime("%d %H:%M") for d in got] == ["23 22:15", "23 23:15", "24 00:15",
                                                     "24 01:15"]


def test_weekly_job_across_a_week_boundary() -> None:
    t = cron_trigger("0 9 * * sun", UTC)
    got = fire_times(t, datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC))
    assert got == [datetime(2026, 11, 29, 9, tzinfo=UTC), datetime(2026, 12, 6, 9, tzinfo=UTC)]


def test_monthly_and_quarterly_drills_across_month_and_year_boundaries() -> None:
    monthly = cron_trigger("0 6 1 * *", UTC)
    got = fire_times(monthly, datetime(2026, 11, 30, tzinfo=UTC),
                     datetime(2027, 2, 2, tzinfo=UTC))
    assert [d.strftime("%Y-%m-%d %H") for d in got] == ["2026-12-01 06", "2027-01-01 06",
                                                        "2027-02-01 06"]
    quarterly = cron_trigger("0 8 15 1,4,7,10 *", UTC)
    assert [d.month for d in next_fire_times(quarterly, MON, 4)] == [1, 4, 7, 10]
    # the 31st only exists in some months
    end = cron_trigger("0 0 31 * *", UTC)
    assert [d.month for d in next_fire_times(end, MON, 3)] == [12, 1, 3]


def test_time_zone_of_the_schedule() -> None:
    t = cron_trigger("0 2 * * *", ZoneInfo("Asia/Shanghai"))
    nxt = t.get_next_fire_time(None, MON)
    assert nxt.astimezone(UTC) == datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def test_missed_runs_are_coalesced_into_one() -> None:
    daily = cron_trigger("0 2 * * *", UTC)
    was_due = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # the daemon was down for three days
    plan = plan_runs(daily, was_due, now, timedelta(hours=6))
    assert plan.run_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert [d.day for d in plan.missed] == [20, 21, 22]
    assert plan.next_run_time == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    # without coalescing every missed run would start
    plan = plan_runs(daily, was_due, now, None, coalesce=False)
    assert plan.run_at == was_due and not plan.missed


def test_a_run_later_than_the_grace_time_is_missed_not_run() -> None:
    daily = cron_trigger("0 2 * * *", UTC)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    plan = plan_runs(daily, datetime(2026, 11, 23, 2, 0, tzinfo=UTC), now, timedelta(hours=6))
    assert plan.run_at is None
    assert plan.missed == (datetime(2026, 11, 23, 2, 0, tzinfo=UTC),)
    assert plan_runs(daily, plan.next_run_time, now, timedelta(hours=6)).run_at is None


def test_plan_matches_apscheduler_job_run_times() -> None:
    # The model agrees with APScheduler's own computation of due run times.
    from apscheduler.job import Job
    from apscheduler.schedulers.background import BackgroundScheduler

    trigger = cron_trigger("*/20 * * * *", UTC)
    sched = BackgroundScheduler(timezone=UTC)
    job = Job(sched, id="x", func=print, trigger=trigger, args=(), kwargs={}, name="x",
              misfire_grace_time=None, coalesce=True, max_instances=1,
              next_run_time=datetime(2026, 11, 23, 0, 0, tzinfo=UTC), executor="default")
    now = datetime(2026, 11, 23, 1, 5, tzinfo=UTC)
    theirs = job._get_run_times(now)
    plan = plan_runs(trigger, datetime(2026, 11, 23, 0, 0, tzinfo=UTC), now, None)
    assert [plan.run_at] == theirs[-1:]
    assert list(plan.missed) == theirs[:-1]


def test_drill_rotation_takes_the_least_recently_drilled_region() -> None:
    regions = ("beijing", "nanjing", "shanghai")
    assert drill_rotation(regions, {}, 4) == ["beijing", "nanjing", "shanghai", "beijing"]
    last = {"beijing": datetime(2026, 10, 1, tzinfo=UTC),
            "nanjing": datetime(2026, 8, 1, tzinfo=UTC),
            "shanghai": datetime(2026, 9, 1, tzinfo=UTC)}
    assert drill_rotation(regions, last, 4) == ["nanjing", "shanghai", "beijing", "nanjing"]
    last["shanghai"] = None  # a newly added region goes first
    assert drill_rotation(regions, last, 1) == ["shanghai"]
    assert drill_rotation((), {}, 3) == []
