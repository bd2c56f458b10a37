"""Maintenance method pgbouncer: all or none across PgBouncers, checked with in-memory consoles
that answer like PgBouncer 1.18's admin console (the integration tests use real PgBouncers)."""

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.pgbouncer import (
    ConsoleError,
    ConsoleTimeout,
    Coordinator,
    PgBouncerError,
    parse_bouncers,
)


class FakeBouncer(object):
    def __init__(self, name, pool_mode=None, query_wait_timeout=120, blocked=False, refuse=None, unreachable=False):
        self.name = name
        self.paused = self.disabled = 0
        self.pool_mode = pool_mode
        self.query_wait_timeout = query_wait_timeout
        self.blocked = blocked
        self.refuse = refuse
        self.unreachable = unreachable
        self.commands = []


class FakeConsole(object):
    def __init__(self, bouncer):
        self.b = bouncer

    def execute(self, sql, timeout=None):
        b = self.b
        b.commands.append(sql)
        verb = sql.split()[0]
        if sql == "SHOW DATABASES":
            return [dict(name="cockpit", pool_mode=b.pool_mode, paused=b.paused, disabled=b.disabled)]
        if sql == "SHOW CONFIG":
            return [dict(key="pool_mode", value="transaction"),
                    dict(key="query_wait_timeout", value=str(b.query_wait_timeout))]
        if sql in ("SHOW SERVERS", "SHOW CLIENTS"):
            return [dict(database="cockpit", state="active", user="cockpit_app", remote_pid=42)] if b.blocked else []
        if b.refuse == verb:
            raise ConsoleError("ERROR: %s refused" % verb)
        if verb == "PAUSE":
            b.paused = 1
            if b.blocked:
                raise ConsoleTimeout()
        elif verb == "RESUME":
            b.paused = 0
        elif verb == "DISABLE":
            b.disabled = 1
        elif verb == "ENABLE":
            b.disabled = 0
        elif verb == "KILL":
            b.paused = 1
        return []

    def close(self):
        pass


def coordinator(fakes, **kwargs):
    by_name = dict((f.name, f) for f in fakes)
    bouncers = parse_bouncers(["%s:6432" % f.name for f in fakes], "cockpit")

    def open_console(bouncer):
        fake = by_name[bouncer["host"]]
        if fake.unreachable:
            raise ConsoleError("password authentication failed")
        return FakeConsole(fake)
    return Coordinator(open_console, bouncers, **kwargs)


def test_on_pauses_every_pgbouncer_and_off_resumes_them_once():
    fakes = [FakeBouncer("a"), FakeBouncer("b")]
    result = coordinator(fakes).on()
    assert result["changed"] and [f.paused for f in fakes] == [1, 1]
    assert [p["action"] for p in result["pgbouncers"]] == ["paused", "paused"]
    assert coordinator(fakes).on()["changed"] is False
    assert coordinator(fakes).off()["changed"] is True and [f.paused for f in fakes] == [0, 0]
    sent = [len(f.commands) for f in fakes]
    assert coordinator(fakes).off()["changed"] is False
    assert all(c == "SHOW DATABASES" for f, n in zip(fakes, sent) for c in f.commands[n:])


def test_on_and_off_report_when_this_run_switched_and_nothing_when_it_did_not():
    fakes = [FakeBouncer("a")]
    times = iter(["2026-12-03T07:00:00Z", "2026-12-03T07:05:00Z"])
    on = coordinator(fakes, now=lambda: next(times)).on()
    assert (on["enabled_at"], on["disabled_at"]) == ("2026-12-03T07:00:00Z", None)
    assert coordinator(fakes, now=lambda: "never").on()["enabled_at"] is None  # already on: unknown since when
    off = coordinator(fakes, now=lambda: next(times)).off()
    assert (off["enabled_at"], off["disabled_at"]) == (None, "2026-12-03T07:05:00Z")
    assert coordinator(fakes, now=lambda: "never").off()["disabled_at"] is None


def test_a_timeout_on_the_second_resumes_the_first_and_names_the_blocker():
    fakes = [FakeBouncer("a"), FakeBouncer("b", blocked=True)]
    with pytest.raises(PgBouncerError) as err:
        coordinator(fakes, pause_timeout=2, describe_backends=lambda pids: {42: "idle in transaction"}).on()
    assert [f.paused for f in fakes] == [0, 0]
    assert "b:6432: PAUSE cockpit did not finish within pause_timeout=2s" in err.value.msg
    assert "user cockpit_app on PostgreSQL pid 42 (idle in transaction)" in err.value.msg
    assert "resumed a:6432, b:6432" in err.value.msg
    assert err.value.result["state"] == "off"


def test_a_refused_pause_resumes_those_already_paused():
    fakes = [FakeBouncer("a"), FakeBouncer("b", refuse="PAUSE")]
    with pytest.raises(PgBouncerError, match="b:6432: PAUSE refused"):
        coordinator(fakes).on()
    assert [f.paused for f in fakes] == [0, 0]


def test_an_unreachable_pgbouncer_stops_on_before_any_pause():
    fakes = [FakeBouncer("a"), FakeBouncer("b", unreachable=True)]
    with pytest.raises(PgBouncerError, match="b:6432: cannot reach its admin console.*nothing was paused"):
        coordinator(fakes).on()
    assert not any(c.startswith("PAUSE") for c in fakes[0].commands)


def test_off_resumes_every_reachable_pgbouncer_and_names_the_others():
    fakes = [FakeBouncer("a", unreachable=True), FakeBouncer("b")]
    fakes[1].paused = 1
    with pytest.raises(PgBouncerError, match="a:6432: cannot reach"):
        coordinator(fakes).off()
    assert fakes[1].paused == 0


def test_session_pooling_is_refused_before_pausing():
    fakes = [FakeBouncer("a", pool_mode="session")]
    with pytest.raises(PgBouncerError, match="pools cockpit in session mode"):
        coordinator(fakes).on()
    assert fakes[0].paused == 0


def test_a_window_longer_than_query_wait_timeout_is_refused_before_pausing():
    fakes = [FakeBouncer("a"), FakeBouncer("b", query_wait_timeout=60)]
    with pytest.raises(PgBouncerError, match="b:6432 gives up on a waiting query after query_wait_timeout=60s"):
        coordinator(fakes, planned_window=90).on()
    assert [f.paused for f in fakes] == [0, 0]


def test_disable_mode_disables_and_kills_then_off_enables_and_resumes():
    fakes = [FakeBouncer("a")]
    assert coordinator(fakes, mode="disable").on()["changed"]
    assert (fakes[0].disabled, fakes[0].paused) == (1, 1)
    coordinator(fakes).off()
    assert (fakes[0].disabled, fakes[0].paused) == (0, 0)


def test_check_mode_sends_no_command_that_changes_anything():
    fakes = [FakeBouncer("a")]
    assert coordinator(fakes, check_mode=True).on()["changed"] is True
    assert all(c.startswith("SHOW") for c in fakes[0].commands) and fakes[0].paused == 0


@pytest.mark.parametrize("bouncers, message", [
    ([], "needs at least one PgBouncer"),
    ([{"port": 6432}], r"pgbouncers\[0\]: .* needs a host"),
    (["pgb:notaport"], "port 'notaport' of pgb is not a number"),
    (["pgb:70000"], "port 70000 of pgb is out of range"),
    (["pgb", "pgb:6432"], "pgb:6432 is listed twice"),
    ([{"host": "pgb", "database": "bad name"}], "'bad name' is not a PgBouncer database name"),
])
def test_bad_pgbouncer_lists_are_refused_naming_the_entry(bouncers, message):
    with pytest.raises(PgBouncerError, match=message):
        parse_bouncers(bouncers, "cockpit")


def test_bad_mode_and_timeouts_are_refused():
    with pytest.raises(PgBouncerError, match="pgbouncer_mode: 'stop'"):
        Coordinator(None, [], mode="stop")
    with pytest.raises(PgBouncerError, match="pause_timeout: -1 must be 0 or more"):
        Coordinator(None, [], pause_timeout=-1)
