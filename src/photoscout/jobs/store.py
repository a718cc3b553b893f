"""The job tables. A job (kind, model, scope, status, counters) is split into units of photo ids; workers lease
units (``FOR UPDATE SKIP LOCKED``, so two workers never take the same one), heartbeat while they work, and complete
a unit in the same transaction that stores its outputs. A unit whose lease expired (its worker died) is taken again
by any worker. Progress is always derivable from these tables; nothing lives only in a worker's memory.

A unit that was taken ``max_attempts`` times without being completed - its worker died holding it (a photo that
crashes a model kills the process) or its processing raised each time - is not tried again as it is: a unit of
several photos is split into one unit per photo, and a single photo is recorded as failed (for the job and as the
model's outcome for that photo, so ``index`` does not retry it either), and the job goes on."""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from photoscout.common.errors import InvalidParameter, NotFound, PhotoscoutError
from photoscout.database import Database
from photoscout.database.schema import shown
from photoscout.jobs.states import HANDED_OUT, KIND_FOR_TYPE, JobKind, JobStatus, UnitState, finished, values
from photoscout.registry import lifecycle

_HANDED_OUT = values(HANDED_OUT)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Unit:
    id: int
    job_id: int
    seq: int
    photo_ids: list[int]
    attempts: int
    model_id: int


@dataclass(frozen=True)
class Plan:
    """What a job would cover: its model and the photo ids, before anything is created."""

    kind: str
    model: lifecycle.RegisteredModel
    photo_ids: list[int]
    scope: dict[str, Any]


def plan_job(db: Database, *, kind: str, model_ref: str, missing_only: bool = False,
             sample_count: int | None = None, sample_fraction: float | None = None, seed: int = 0,
             new_only: bool = False, by: str | None = None) -> Plan:
    """Check a job's request and choose its photos (all, those missing the model's output, or a seeded sample;
    ``new_only``: those the model never ran on, failures not retried - what the always-on service gives it;
    ``by``: who made the job, kept in its scope)."""
    if sample_count is not None and sample_count < 1:
        raise InvalidParameter("a sample needs at least 1 photo", "sample_count")
    if sample_fraction is not None and not 0 < sample_fraction <= 1:
        raise InvalidParameter("a sample fraction must be in (0, 1]", "sample_fraction")
    model = lifecycle.get(db, model_ref)
    expected = KIND_FOR_TYPE[model.type]
    if kind not in set(JobKind):
        raise InvalidParameter(f"no job kind {kind!r}; one of: {', '.join(JobKind)}", "kind")
    if kind != expected:
        raise PhotoscoutError(f"{model.ref} is a {model.type} model: its job kind is '{expected}', not '{kind}'")
    if model.status == "disabled":
        raise PhotoscoutError(f"{model.ref} is disabled")
    scope: dict[str, Any] = {"missing_only": missing_only, "sample_count": sample_count,
                             "sample_fraction": sample_fraction, "seed": seed}
    if new_only or by:
        scope.update(new_only=new_only, by=by)
    sql = f"SELECT p.id FROM photos p WHERE {shown()}"
    if new_only:
        sql += " AND NOT EXISTS (SELECT 1 FROM photo_model_runs r WHERE r.photo_id = p.id AND r.model_id = %(m)s)"
    elif missing_only:
        sql += (" AND NOT EXISTS (SELECT 1 FROM photo_model_runs r WHERE r.photo_id = p.id AND r.model_id = %(m)s "
                "AND r.outcome <> 'failed')")
    with db.connection() as conn:
        ids = [r[0] for r in conn.execute(sql + " ORDER BY p.id", {"m": model.id})]
    if sample_count is not None or sample_fraction is not None:  # seeded, reproducible subset
        ids.sort(key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
        n = sample_count if sample_count is not None else max(1, round(len(ids) * (sample_fraction or 1)))
        ids = sorted(ids[:n])
    return Plan(kind, model, ids, scope)


def create_job(db: Database, *, kind: str, model_ref: str, missing_only: bool = False,
               sample_count: int | None = None, sample_fraction: float | None = None, seed: int = 0,
               unit_size: int = 32, new_only: bool = False, by: str | None = None) -> dict[str, Any]:
    plan = plan_job(db, kind=kind, model_ref=model_ref, missing_only=missing_only, sample_count=sample_count,
                    sample_fraction=sample_fraction, seed=seed, new_only=new_only, by=by)
    ids = plan.photo_ids
    with db.connection() as conn:
        row = conn.execute(
            "INSERT INTO jobs (kind, model_id, scope, status, total_items, params) VALUES (%s, %s, %s, %s, %s, %s) "
            "RETURNING id", (kind, plan.model.id, Jsonb(plan.scope), JobStatus.PENDING.value, len(ids),
                             Jsonb({"unit_size": unit_size})),
        ).fetchone()
        assert row is not None
        job_id = int(row[0])
        units = [(job_id, n, ids[i: i + unit_size]) for n, i in enumerate(range(0, len(ids), unit_size))]
        conn.cursor().executemany("INSERT INTO job_units (job_id, seq, photo_ids) VALUES (%s, %s, %s)", units)
        if not ids:
            conn.execute("UPDATE jobs SET status = 'completed', finished_at = now() WHERE id = %s", (job_id,))
    return get_job(db, job_id)


def measured_rate(db: Database, model: lifecycle.RegisteredModel) -> tuple[float, str] | None:
    """Photos per second of the most recent completed job of this version, else of the same backend and type (on
    this machine's database: where the work really ran)."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT (j.done_items + j.failed_items) "
            "/ greatest(extract(epoch FROM j.finished_at - j.started_at), 0.001), m.name || '@' || m.version "
            "FROM jobs j JOIN model_registry m ON m.id = j.model_id "
            "WHERE j.status = 'completed' AND j.started_at IS NOT NULL AND j.done_items >= 8 "
            "AND (m.id = %s OR (m.backend = %s AND m.type = %s)) ORDER BY (m.id = %s) DESC, j.finished_at DESC "
            "LIMIT 1", (model.id, model.backend, model.type, model.id)).fetchone()
    return (float(row[0]), f"job of {row[1]}") if row else None


def claim(db: Database, owner: str, lease_seconds: int, job_id: int | None = None,
          max_attempts: int = 3) -> Unit | None:
    """Lease the next unit of a pending/running job (or of ``job_id``): a pending unit, or one whose lease expired.
    Units abandoned ``max_attempts`` times are isolated first (split, or their photo failed)."""
    with db.connection() as conn:
        _isolate_abandoned(conn, job_id, max_attempts)
        row = conn.execute(
            """
            UPDATE job_units u SET state = 'leased', lease_owner = %(owner)s, attempts = u.attempts + 1,
                   lease_expires_at = now() + make_interval(secs => %(lease)s), heartbeat_at = now(),
                   started_at = coalesce(u.started_at, now())
            WHERE u.id = (
                SELECT c.id FROM job_units c JOIN jobs j ON j.id = c.job_id
                WHERE j.status = ANY(%(handed_out)s) AND (%(job)s::bigint IS NULL OR j.id = %(job)s)
                  AND (c.state = 'pending' OR (c.state = 'leased' AND c.lease_expires_at < now()))
                ORDER BY c.job_id, c.seq FOR UPDATE OF c SKIP LOCKED LIMIT 1)
            RETURNING u.id, u.job_id, u.seq, u.photo_ids, u.attempts,
                      (SELECT model_id FROM jobs WHERE id = u.job_id)
            """, {"owner": owner, "lease": lease_seconds, "job": job_id, "handed_out": _HANDED_OUT}).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE jobs SET status = %s, started_at = coalesce(started_at, now()), updated_at = now() "
                     "WHERE id = %s AND status = %s", (JobStatus.RUNNING.value, row[1], JobStatus.PENDING.value))
    return Unit(row[0], row[1], row[2], list(row[3]), row[4], row[5])


def heartbeat(db: Database, unit: Unit, owner: str, lease_seconds: int) -> bool:
    """Extend the lease; False when the unit is no longer ours (it expired and another worker took it)."""
    with db.connection() as conn:
        cur = conn.execute("UPDATE job_units SET heartbeat_at = now(), lease_expires_at = now() + "
                           "make_interval(secs => %s) WHERE id = %s AND lease_owner = %s AND state = 'leased'",
                           (lease_seconds, unit.id, owner))
        return cur.rowcount == 1


def complete_in(cur: Any, unit: Unit, owner: str, failures: list[tuple[int, str]]) -> None:
    """Mark a unit done inside the transaction that stored its outputs; update the job's counters and status."""
    cur.execute("UPDATE job_units SET state = 'done', finished_at = now(), lease_expires_at = NULL, error = %s "
                "WHERE id = %s AND lease_owner = %s AND state = 'leased'",
                (f"{len(failures)} photo(s) failed" if failures else None, unit.id, owner))
    if cur.rowcount != 1:
        return  # the lease was lost: another worker owns it now; outputs were idempotent upserts anyway
    failed_ids = {pid for pid, _ in failures}
    for pid, why in failures:
        cur.execute("INSERT INTO job_item_failures (job_id, photo_id, error) VALUES (%s, %s, %s) "
                    "ON CONFLICT (job_id, photo_id) DO UPDATE SET error = EXCLUDED.error, at = now()",
                    (unit.job_id, pid, why))
    cur.execute("UPDATE jobs SET done_items = done_items + %s, failed_items = failed_items + %s, updated_at = now() "
                "WHERE id = %s", (len(unit.photo_ids) - len(failed_ids), len(failed_ids), unit.job_id))
    _complete_job_if_done(cur, unit.job_id)


def fail_unit(db: Database, unit: Unit, owner: str, error: str, max_attempts: int = 3) -> None:
    """A unit whose processing raised: back to pending (retried with the next claim); after ``max_attempts`` it is
    isolated (split into single photos, or its photo recorded as failed) and the job goes on."""
    with db.connection() as conn:
        conn.execute("UPDATE job_units SET state = 'pending', error = %s, lease_owner = NULL, lease_expires_at = NULL "
                     "WHERE id = %s AND lease_owner = %s", (error[:2000], unit.id, owner))
        conn.execute("UPDATE jobs SET last_error = %s, updated_at = now() WHERE id = %s", (error[:2000], unit.job_id))
        if unit.attempts >= max_attempts:
            _isolate(conn, unit.id, unit.job_id, unit.photo_ids, unit.attempts,
                     f"failed {unit.attempts} times: {error}")


def release(db: Database, unit: Unit, owner: str) -> None:
    """Give a unit back untried (the machine, not the work, failed: a full disk): pending again, the attempt not
    counted."""
    with db.connection() as conn:
        conn.execute("UPDATE job_units SET state = 'pending', attempts = greatest(attempts - 1, 0), "
                     "lease_owner = NULL, lease_expires_at = NULL WHERE id = %s AND lease_owner = %s "
                     "AND state = 'leased'", (unit.id, owner))


def _isolate_abandoned(conn: Any, job_id: int | None, max_attempts: int) -> None:
    """Units whose lease expired after ``max_attempts`` claims: their workers died holding them."""
    for unit_id, unit_job, photo_ids, attempts in conn.execute(
        "SELECT u.id, u.job_id, u.photo_ids, u.attempts FROM job_units u JOIN jobs j ON j.id = u.job_id "
        "WHERE j.status = ANY(%(handed_out)s) AND (%(job)s::bigint IS NULL OR j.id = %(job)s) "
        "AND u.state = 'leased' AND u.lease_expires_at < now() AND u.attempts >= %(max)s "
        "FOR UPDATE OF u SKIP LOCKED", {"job": job_id, "max": max_attempts, "handed_out": _HANDED_OUT}).fetchall():
        _isolate(conn, unit_id, unit_job, list(photo_ids), attempts,
                 f"the worker process died {attempts} times while working on it (the model crashed?)")


def _isolate(conn: Any, unit_id: int, job_id: int, photo_ids: list[int], attempts: int, why: str) -> None:
    """Split a unit of several photos into one unit per photo; record a single photo as failed."""
    if len(photo_ids) > 1:
        seq = conn.execute("SELECT coalesce(max(seq), -1) + 1 FROM job_units WHERE job_id = %s", (job_id,)).fetchone()
        conn.execute("DELETE FROM job_units WHERE id = %s", (unit_id,))
        conn.cursor().executemany("INSERT INTO job_units (job_id, seq, photo_ids) VALUES (%s, %s, %s)",
                                  [(job_id, seq[0] + i, [pid]) for i, pid in enumerate(photo_ids)])
        return
    (photo_id,) = photo_ids
    reason = f"photo {photo_id}: {why}"[:2000]
    conn.execute("UPDATE job_units SET state = 'done', finished_at = now(), lease_owner = NULL, "
                 "lease_expires_at = NULL, error = %s WHERE id = %s", (reason, unit_id))
    conn.execute("INSERT INTO job_item_failures (job_id, photo_id, error) VALUES (%s, %s, %s) "
                 "ON CONFLICT (job_id, photo_id) DO UPDATE SET error = EXCLUDED.error, at = now()",
                 (job_id, photo_id, reason))
    conn.execute("INSERT INTO photo_model_runs (photo_id, model_id, outcome, detail) "
                 "SELECT %s, model_id, 'failed', %s FROM jobs WHERE id = %s AND model_id IS NOT NULL "
                 "AND EXISTS (SELECT 1 FROM photos WHERE id = %s) "
                 "ON CONFLICT (photo_id, model_id) DO UPDATE SET outcome = 'failed', detail = EXCLUDED.detail, "
                 "at = now()",
                 (photo_id, reason, job_id, photo_id))
    conn.execute("UPDATE jobs SET failed_items = failed_items + 1, last_error = %s, updated_at = now() WHERE id = %s",
                 (reason, job_id))
    _complete_job_if_done(conn, job_id)


def _complete_job_if_done(cur: Any, job_id: int) -> None:
    cur.execute("UPDATE jobs SET status = %s, finished_at = now() WHERE id = %s AND status = %s "
                "AND NOT EXISTS (SELECT 1 FROM job_units WHERE job_id = %s AND state IN ('pending', 'leased'))",
                (JobStatus.COMPLETED.value, job_id, JobStatus.RUNNING.value, job_id))


def reclaim_dead(db: Database, job_id: int | None = None) -> tuple[int, int]:
    """Expire at once the leases of workers on this host whose process is gone; return (reclaimed, still leased)."""
    import psutil

    host = socket.gethostname()
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT u.id, u.lease_owner FROM job_units u JOIN jobs j ON j.id = u.job_id WHERE u.state = 'leased' "
            "AND j.status = ANY(%s) AND (%s::bigint IS NULL OR u.job_id = %s)", (_HANDED_OUT, job_id, job_id)
        ).fetchall()
        dead = []
        for unit_id, owner in rows:
            owner_host, _, pid = (owner or "").rpartition(":")
            if owner_host == host and pid.isdigit() and not psutil.pid_exists(int(pid)):
                dead.append(unit_id)
        if dead:
            conn.execute("UPDATE job_units SET lease_expires_at = now() - interval '1 second' WHERE id = ANY(%s) "
                         "AND state = 'leased'", (dead,))
    return len(dead), len(rows) - len(dead)


def get_job(db: Database, job_id: int) -> dict[str, Any]:
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT j.*, m.name || '@' || m.version AS model,
                 (SELECT count(*) FROM job_units u WHERE u.job_id = j.id) AS units,
                 (SELECT count(*) FROM job_units u WHERE u.job_id = j.id AND u.state = 'done') AS units_done,
                 (SELECT count(*) FROM job_units u WHERE u.job_id = j.id AND u.state = 'leased') AS units_leased,
                 (SELECT count(*) FROM job_units u WHERE u.job_id = j.id AND u.state = 'failed') AS units_failed,
                 (SELECT coalesce(sum(u.attempts - 1) FILTER (WHERE u.attempts > 1), 0) FROM job_units u
                    WHERE u.job_id = j.id) AS retried_units
               FROM jobs j LEFT JOIN model_registry m ON m.id = j.model_id WHERE j.id = %s""", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"no job {job_id}")
    out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
    out["progress"] = _progress(row)
    out["finished"] = finished(out["status"])  # the one test of "over" every face and loop uses
    return out


def _progress(row: dict[str, Any]) -> dict[str, Any]:
    done = row["done_items"] + row["failed_items"]
    total = row["total_items"]
    started, updated = row["started_at"], row["updated_at"]
    rate = eta = None
    if started and done:
        end = row["finished_at"] or updated
        secs = max((end - started).total_seconds(), 1e-3)
        rate = done / secs
        eta = (total - done) / rate if rate else None
    return {"done": done, "total": total, "fraction": done / total if total else 1.0,
            "rate_per_s": round(rate, 2) if rate else None, "eta_s": round(eta, 1) if eta is not None else None}


def list_jobs(db: Database, *, limit: int = 50) -> list[dict[str, Any]]:
    with db.connection() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY id DESC LIMIT %s", (limit,))]
    return [get_job(db, i) for i in ids]


def to_resume(db: Database, by: str) -> list[int]:
    """Jobs an always-on service (``by``) picks up at start and between passes: any job a worker had begun
    (running; its worker may be gone with the process that ran it) and its own jobs not begun yet; oldest first.
    A job someone created and left pending, or paused, waits for them."""
    with db.connection() as conn:
        return [r[0] for r in conn.execute(
            "SELECT id FROM jobs WHERE status = %s OR (status = %s AND scope->>'by' = %s) ORDER BY id",
            (JobStatus.RUNNING.value, JobStatus.PENDING.value, by))]


def set_status(db: Database, job_id: int, status: str) -> dict[str, Any]:
    job = get_job(db, job_id)
    with db.connection() as conn:
        if status == JobStatus.CANCELLED:
            if job["status"] in (JobStatus.COMPLETED, JobStatus.CANCELLED):
                raise PhotoscoutError(f"job {job_id} is already {job['status']}")
            conn.execute("UPDATE jobs SET status = %s, finished_at = now(), updated_at = now() WHERE id = %s",
                         (JobStatus.CANCELLED.value, job_id))
        elif status == "resume":
            if job["status"] == JobStatus.COMPLETED:
                raise PhotoscoutError(f"job {job_id} is completed; nothing to resume")
            conn.execute("UPDATE job_units SET state = %s, lease_owner = NULL, lease_expires_at = NULL "
                         "WHERE job_id = %s AND (state = %s OR (state = 'leased' AND lease_expires_at < now()))",
                         (UnitState.PENDING.value, job_id, UnitState.FAILED.value))
            conn.execute("UPDATE jobs SET status = 'pending', finished_at = NULL, updated_at = now() WHERE id = %s",
                         (job_id,))
    return get_job(db, job_id)


def note_error(db: Database, job_id: int, message: str) -> None:
    """Keep why a run of the job stopped (its ``last_error``: every face shows it); the job keeps its status and
    what it finished, and can be resumed."""
    with db.connection() as conn:
        conn.execute("UPDATE jobs SET last_error = %s, updated_at = now() WHERE id = %s", (message[:2000], job_id))


def retry_failed(db: Database, job_id: int) -> dict[str, Any]:
    """Put the photos that failed back into the job as a new unit (e.g. after fixing a file or a mount)."""
    get_job(db, job_id)  # NotFound for an unknown job
    with db.connection() as conn:
        ids = [r[0] for r in conn.execute("DELETE FROM job_item_failures WHERE job_id = %s RETURNING photo_id",
                                          (job_id,))]
        if not ids:
            raise PhotoscoutError(f"job {job_id} has no failed photos")
        seq = conn.execute("SELECT coalesce(max(seq), -1) + 1 FROM job_units WHERE job_id = %s", (job_id,)).fetchone()
        assert seq is not None
        conn.execute("INSERT INTO job_units (job_id, seq, photo_ids) VALUES (%s, %s, %s)", (job_id, seq[0], ids))
        conn.execute("UPDATE jobs SET failed_items = failed_items - %s, status = 'pending', finished_at = NULL, "
                     "updated_at = now() WHERE id = %s", (len(ids), job_id))
    return get_job(db, job_id)


def candidate_model_ids(db: Database) -> list[int]:
    """Staging embedding versions with a completed job over the whole library (awaiting evaluation/promotion)."""
    with db.connection() as conn:
        return [r[0] for r in conn.execute(
            "SELECT DISTINCT j.model_id FROM jobs j JOIN model_registry m ON m.id = j.model_id "
            "WHERE m.status = 'staging' AND m.type = 'embedding' AND j.status = 'completed' "
            "AND (j.scope->>'sample_count') IS NULL AND (j.scope->>'sample_fraction') IS NULL")]


def running_model_ids(db: Database) -> list[int]:
    """Models with a pending/running job over the whole library (not a sample): new photos get their outputs too."""
    with db.connection() as conn:
        return [r[0] for r in conn.execute(
            "SELECT DISTINCT model_id FROM jobs WHERE status = ANY(%s) AND model_id IS NOT NULL "
            "AND (scope->>'sample_count') IS NULL AND (scope->>'sample_fraction') IS NULL", (_HANDED_OUT,))]
