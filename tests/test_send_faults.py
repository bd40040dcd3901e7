"""Crash injections around SMTP (the fast version of the fault suite): a send worker process is killed with
SIGKILL before DATA, after DATA before the reply and after the 250 before its commit, on SQLite and
PostgreSQL, against a real aiosmtpd and a real Dovecot Sent folder; two workers share one PostgreSQL outbox."""

from __future__ import annotations

from evals.faults_send import CASES, run_send_faults


def test_every_crash_injection_ends_sent_once_or_unknown_and_nothing_is_sent_twice() -> None:
    rows = run_send_faults(rounds=len(CASES))  # one injection per case and database
    assert len(rows) == 2 * len(CASES) + 1
    for row in rows:
        assert row["double_sends"] == 0, row
        assert row["lost"] == 0, row
        assert row[str(row["expected"])] == row["runs"], row  # every uncertain case `unknown`, the rest `sent`
    unknown = [row["case"] for row in rows if row["expected"] == "unknown"]
    assert unknown and all("provider files Sent" not in str(case) for case in unknown)
    two_workers = rows[-1]
    assert two_workers["case"] == "two workers, one outbox · postgresql" and two_workers["sent"] == 12
    assert sum(int(n) for n in str(two_workers["per_worker"]).split("+")) == 12
