"""The short soak of issue 27 (the long one is ``benchmarks/bench_service.py --soak-seconds``): photos arrive while
4 clients search and a re-embedding job runs; the server is SIGKILLed twice and the embedded PostgreSQL once, and a
supervisor (systemd's part) starts the server again. Nothing may be lost, duplicated or wrongly marked; every photo
ends embedded by every active model; searches fail only while something was down."""

from __future__ import annotations

from pathlib import Path

from benchmarks import soak


def test_photos_arrive_through_kills_and_nothing_is_lost(tmp_path: Path, builtin_wheels: Path) -> None:
    photos = soak.source_photos()
    home, root = tmp_path / "home", tmp_path / "library"
    soak.prepare(home, builtin_wheels, photos[:8], root)
    counts = soak.run(home, root, photos[100:160], seconds=40, clients=4, server_kills=2, database_kills=1,
                      settle_timeout=300, log=tmp_path / "server.log")
    report = counts.as_dict()
    print(report)
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert counts.arrived == 60 and counts.server_kills == 2 and counts.database_kills == 1, report
    assert counts.present == 60 and counts.lost == 0 and counts.duplicated == 0, (report, log[-3000:])
    assert counts.wrongly_marked == 0, report
    assert not any(counts.missing_models.values()), (report, log[-3000:])
    assert counts.reembed_job == "completed", (report, log[-3000:])
    assert counts.server_starts == 3
    assert counts.searches > 100 and counts.failed_searches < counts.searches / 2, report
    assert set(counts.failures_by_phase) <= {"server restart", "database restart"}, report
