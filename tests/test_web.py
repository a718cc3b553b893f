"""The HTTP API and pages of ``photoscout serve`` (issue 13), through the app client against the real embedded
PostgreSQL and the real built-in models: search with filters and pages, photo files by id only, marks that build an
evaluation set, jobs, the side-by-side comparison, the gate and rollback; and the guard (loopback or token,
same-origin writes, bounded bodies, no path from a request reaching the file system)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from photoscout.app import Photoscout
from photoscout.database.embedded import EmbeddedServer
from photoscout.evaluation import sets
from photoscout.web import create_app
from tests.conftest import PHOTOSCOUT, _free_port, clone_library

V1 = "conse-effnetl0-minilm@v4.1.0"  # the default for new installs
RANDOM = "random-vectors@v0.1.0"
WRITE = {"X-Photoscout-Request": "1"}


@pytest.fixture(scope="module")
def home(library_template: tuple[Path, str], pg_server: EmbeddedServer,
         tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clone_library(library_template, pg_server, Path(tmp_path_factory.mktemp("web")))


@pytest.fixture(scope="module")
def core(home: Path) -> Iterator[Photoscout]:
    with Photoscout.open(home) as ps:
        yield ps


@pytest.fixture(scope="module")
def client(core: Photoscout) -> Iterator[TestClient]:
    app = create_app(core)
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        yield c


def _names(results: list[dict[str, Any]]) -> list[str]:
    return [Path(r["path"]).parent.name for r in results]


def test_search_answers_with_pages_and_filters(client: TestClient) -> None:
    r = client.get("/api/v1/search", params={"q": "food", "limit": 5})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["model"] == V1 and len(first["results"]) == 5 and first["next_offset"] == 5
    assert _names(first["results"]).count("food") >= 4
    second = client.get("/api/v1/search", params={"q": "food", "limit": 5, "offset": 5}).json()
    assert not {h["photo_id"] for h in first["results"]} & {h["photo_id"] for h in second["results"]}
    only = client.get("/api/v1/search", params={"q": "photo", "category": "documents", "limit": 20}).json()
    assert only["results"] and all("documents" in h["categories"] for h in only["results"])
    like = client.get("/api/v1/search", params={"similar_to": first["results"][0]["photo_id"], "limit": 3}).json()
    assert like["results"][0]["photo_id"] == first["results"][0]["photo_id"]  # a photo is most like itself


def test_quoted_words_in_the_query_must_be_printed(client: TestClient, core: Photoscout) -> None:
    r = client.get("/api/v1/search", params={"q": '"total"', "limit": 20})
    assert r.status_code == 200, r.text
    found = r.json()["results"]
    assert found and all("total" in (core.photo(h["photo_id"])["ocr_text"] or "").lower() for h in found)
    assert _names(found).count("documents") == len(found)
    bad = client.get("/api/v1/search", params={"q": 'a receipt "..."'})
    assert bad.status_code == 400 and "no letters or digits" in bad.json()["error"], bad.text
    page = client.get("/", params={"q": 'a receipt "total"'})
    assert page.status_code == 200 and 'value="a receipt &#34;total&#34;"' in page.text


def test_search_with_an_uploaded_photo(client: TestClient) -> None:
    any_food = client.get("/api/v1/search", params={"q": "pizza", "limit": 1}).json()["results"][0]
    data = Path(any_food["path"]).read_bytes()
    r = client.post("/api/v1/search/image", files={"file": ("x.jpg", data, "image/jpeg")}, headers=WRITE)
    assert r.status_code == 200, r.text
    assert any_food["photo_id"] in [h["photo_id"] for h in r.json()["results"][:3]]
    bad = client.post("/api/v1/search/image", files={"file": ("x.jpg", b"not an image", "image/jpeg")},
                      headers=WRITE)
    assert bad.status_code == 400 and "cannot read the query image" in bad.json()["error"]


def test_errors_are_json_with_the_right_status_and_no_traceback(client: TestClient) -> None:
    cases = [
        (client.get("/api/v1/search", params={"q": "x", "limit": 0}), 422, "limit"),
        (client.get("/api/v1/search"), 400, "give a text query"),
        (client.get("/api/v1/search", params={"q": "x", "after": "2024-02-01", "before": "2024-01-01"}), 400,
         "'after' date must be before"),
        (client.get("/api/v1/search", params={"q": "x", "model": "nope@v9.0.0"}), 404, "nope"),
        (client.get("/api/v1/photos/999999"), 404, "no photo 999999"),
        (client.get("/api/v1/models/not-a-ref"), 404, "nothing at"),
        (client.get("/api/v1/jobs", params={"limit": "many"}), 422, "limit"),
        (client.get("/api/v1/jobs/424242"), 404, "no job 424242"),
        (client.get("/api/v1/nothing-here"), 404, "nothing at"),
        (client.get("/api/v1/evaluations", params={"model": "a\x00b@v1.0.0"}), 400, "refused by the database"),
        (client.post("/api/v1/models/" + RANDOM + "/promote", json={"force": True}, headers=WRITE), 400, "reason"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (response.request.url, response.text)
        body = response.json()
        assert words in body["error"], body
        assert "Traceback" not in response.text


def test_files_by_photo_id_only_with_caching(client: TestClient, core: Photoscout, home: Path) -> None:
    pid = client.get("/api/v1/photos", params={"limit": 1}).json()[0]["id"]
    r = client.get(f"/api/v1/photos/{pid}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "immutable" in r.headers["cache-control"] and r.headers["etag"]
    again = client.get(f"/api/v1/photos/{pid}/thumbnail", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    preview = client.get(f"/api/v1/photos/{pid}/preview", params={"size": 720})
    assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
    assert list((home / "data" / "previews").rglob("*-720.jpg"))
    original = client.get(f"/api/v1/photos/{pid}/original")
    photo = core.photo(pid)
    assert original.status_code == 200 and original.content == Path(photo["path"]).read_bytes()
    for hostile in ("/api/v1/photos/..%2F..%2Fetc%2Fpasswd/original", "/api/v1/photos/-1/thumbnail",
                    "/api/v1/photos/1e3/original", "/api/v1/photos/%2Fetc%2Fpasswd/thumbnail",
                    "/api/v1/photos/..%252F..%252Fetc%252Fpasswd/original", "/api/v1/photos/%2e%2e/original",
                    "/api/v1/photos/../../../etc/passwd", "/api/v1/photos/999999/original",
                    "/api/v1/photos/999999/thumbnail", "/api/v1/photos/999999/preview",
                    "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/static/%2e%2e/%2e%2e/web/api.py"):
        answer = client.get(hostile)
        assert answer.status_code == 404 and b"root:" not in answer.content, (hostile, answer.text)
        assert "error" in answer.json()


def _pool_requests(core: Photoscout) -> int:
    assert core.db.pool is not None
    return int(core.db.pool.get_stats().get("requests_num", 0))


def test_warm_paths_spare_the_pool(client: TestClient, core: Photoscout, home: Path) -> None:
    """The warm server's hot paths (#13 speed): a search, a category-naming one included, asks the pool for at most
    two connections (the model's lookup and one for all its queries), and a thumbnail asked for again is answered
    without the database, until its file is gone (then 404, never a 500 or a stale file)."""
    client.get("/api/v1/search", params={"q": "food", "limit": 5})  # the query embedding and estimates warm
    for q in ("food", "a receipt", "a beach", 'a receipt "total"'):
        before = _pool_requests(core)
        r = client.get("/api/v1/search", params={"q": q, "limit": 20})
        assert r.status_code == 200 and r.json()["results"], r.text
        assert _pool_requests(core) - before <= 2, q
    pid = client.get("/api/v1/search", params={"q": "a dog", "limit": 1}).json()["results"][0]["photo_id"]
    first = client.get(f"/api/v1/photos/{pid}/thumbnail")
    assert first.status_code == 200
    before = _pool_requests(core)
    again = client.get(f"/api/v1/photos/{pid}/thumbnail")
    assert again.status_code == 200 and again.content == first.content and _pool_requests(core) == before
    thumb = core.settings.thumbnails_dir / core.photo(pid)["thumbnail"]
    assert thumb.is_file()
    moved = thumb.with_suffix(".away")
    thumb.rename(moved)
    try:
        gone = client.get(f"/api/v1/photos/{pid}/thumbnail")
        assert gone.status_code == 404 and "is gone" in gone.json()["error"]
    finally:
        moved.rename(thumb)
    assert client.get(f"/api/v1/photos/{pid}/thumbnail").status_code == 200


def test_a_swapped_original_is_not_served(client: TestClient, core: Photoscout, tmp_path: Path) -> None:
    """A symbolic link put where a scanned photo was is not followed out of the library."""
    pid = client.get("/api/v1/photos", params={"limit": 1, "offset": 3}).json()[0]["id"]
    path = Path(core.photo(pid)["path"])
    saved = tmp_path / "saved"
    path.rename(saved)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    try:
        path.symlink_to(secret)
        r = client.get(f"/api/v1/photos/{pid}/original")
        assert r.status_code == 404 and "no longer the file that was scanned" in r.json()["error"]
        assert b"not for the web" not in r.content
    finally:
        path.unlink()
        saved.rename(path)
    assert client.get(f"/api/v1/photos/{pid}/original").status_code == 200


def test_marks_build_an_evaluation_set_the_gate_uses(client: TestClient, core: Photoscout, home: Path) -> None:
    hits = client.get("/api/v1/search", params={"q": "pizza", "limit": 4}).json()["results"]
    for h in hits[:2]:
        r = client.post("/api/v1/marks", json={"query": "pizza", "photo_id": h["photo_id"], "relevant": True},
                        headers=WRITE)
        assert r.status_code == 200, r.text
    client.post("/api/v1/marks", json={"query": "pizza", "photo_id": hits[3]["photo_id"], "relevant": False},
                headers=WRITE)
    again = client.post("/api/v1/marks", json={"query": "pizza", "photo_id": hits[0]["photo_id"],
                                               "relevant": True}, headers=WRITE).json()
    assert again["relevant"] == 2 and again["not_relevant"] == 1  # a mark given twice is kept once
    set_file = home / "evalsets" / "marked.toml"
    assert again["set_file"] == str(set_file) and set_file in sets.default_files(core.settings)
    suite = sets.resolve(core.db, sets.load(set_file))
    assert suite.sets[0].queries[0].relevant == {hits[0]["photo_id"], hits[1]["photo_id"]}
    assert client.get("/api/v1/marks", params={"q": "pizza"}).json()["not_relevant"] == [hits[3]["path"]]
    # the page shows the marks on the results
    page = client.get("/", params={"q": "pizza"}, headers={"Accept": "text/html"}).text
    assert page.count('class="card relevant"') == 2 and page.count('class="card not_relevant"') == 1
    runs = client.post("/api/v1/evaluations", json={"model": V1, "compare_active": False}, headers=WRITE)
    assert runs.status_code == 200, runs.text
    assert [r["suite"] for r in runs.json()] == ["marked"]


def test_a_job_runs_in_the_server_with_progress(client: TestClient) -> None:
    plan = client.post("/api/v1/jobs", json={"kind": "embed", "model": RANDOM, "dry_run": True}, headers=WRITE)
    assert plan.status_code == 200 and plan.json()["photos"] == 40 and "estimate" in plan.json()
    job = client.post("/api/v1/jobs", json={"kind": "embed", "model": RANDOM}, headers=WRITE).json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"/api/v1/jobs/{job['id']}").json()
        if state["status"] not in ("pending", "running"):
            break
        time.sleep(0.3)
    assert state["status"] == "completed", state
    assert state["progress"]["done"] == 40 and state["progress"]["rate_per_s"] and state["last_error"] is None
    with client.stream("GET", f"/api/v1/jobs/{job['id']}/events") as events:
        lines = [line for line in events.iter_lines() if line.startswith("data: ")]
    assert len(lines) == 1 and '"completed"' in lines[0]  # an ended job: one event, then the stream ends


def test_a_paused_job_is_followed_alike_by_every_face(client: TestClient, core: Photoscout, home: Path) -> None:
    """#26: a paused job is not over. The core says so once (``finished``); the events stream of the web page
    goes on for it as ``jobs status --watch`` does (before, the stream ended on "paused" while --watch kept
    polling), and the CLI's --json of a job is the API's, field for field."""
    import json

    job = client.post("/api/v1/jobs", json={"kind": "embed", "model": RANDOM, "missing_only": True},
                      headers=WRITE).json()
    with core.db.connection() as conn:
        conn.execute("UPDATE jobs SET status = 'paused', finished_at = NULL WHERE id = %s", (job["id"],))
    try:
        state = client.get(f"/api/v1/jobs/{job['id']}").json()
        assert state["status"] == "paused" and state["finished"] is False
        events = []
        with client.stream("GET", f"/api/v1/jobs/{job['id']}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                if len(events) == 2:
                    break
        assert [e["finished"] for e in events] == [False, False]  # still followed, a second later
        cli = subprocess.run([PHOTOSCOUT, "jobs", "status", str(job["id"]), "--json"], capture_output=True,
                             text=True, env={**os.environ, "PHOTOSCOUT_HOME": str(home)}, timeout=120)
        assert cli.returncode == 0, cli.stderr
        assert set(json.loads(cli.stdout)) == set(state) and json.loads(cli.stdout)["finished"] is False
    finally:
        with core.db.connection() as conn:
            conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = %s", (job["id"],))
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["finished"] is True


def test_the_api_gate_refuses_exactly_as_the_cli_does(client: TestClient, core: Photoscout, home: Path) -> None:
    """Same gate, same record: evaluated on the user's marked set, the random version is worse; the API and the
    CLI refuse it with the same verdict, and each refusal is in the decision log."""
    runs = client.post("/api/v1/evaluations", json={"model": RANDOM, "compare_active": True}, headers=WRITE)
    assert runs.status_code == 200, runs.text
    api = client.post(f"/api/v1/models/{RANDOM}/promote", json={}, headers=WRITE)
    assert api.status_code == 409, api.text
    api_gate = api.json()["gate"]
    assert api_gate["regressions"] and not api_gate["passed"]
    cli = subprocess.run([PHOTOSCOUT, "models", "promote", RANDOM, "--json"], capture_output=True, text=True,
                         env={**os.environ, "PHOTOSCOUT_HOME": str(home)}, timeout=300)
    assert cli.returncode == 4, cli.stderr
    import json

    cli_body = json.loads(cli.stdout)
    cli_gate = cli_body["gate"]
    for key in ("passed", "problems", "regressions", "compared", "sessions", "active", "candidate", "summary"):
        assert api_gate[key] == cli_gate[key], key
    # one result shape (#26): the CLI's --json refusal is the API's 409 body, field for field
    assert set(cli_body) == set(api.json()) == {"error", "promoted", "model", "gate"} and set(cli_gate) == set(api_gate)
    assert cli_body["promoted"] is api.json()["promoted"] is False
    dry = subprocess.run([PHOTOSCOUT, "models", "promote", RANDOM, "--dry-run", "--json"], capture_output=True,
                         text=True, env={**os.environ, "PHOTOSCOUT_HOME": str(home)}, timeout=300)
    assert set(json.loads(dry.stdout)) == set(client.get(f"/api/v1/models/{RANDOM}/gate").json())
    log = core.decision_log()
    assert log.count(f"promotion of {RANDOM} refused") >= 2


def test_a_bad_filter_reads_the_same_in_every_face(client: TestClient, home: Path) -> None:
    """#26: one filter parser: the API, the page (asked for as JSON) and the CLI refuse a bad date with the same
    words, each naming the parameter its own way."""
    api = client.get("/api/v1/search", params={"q": "food", "after": "2024-13-01"})
    assert api.status_code == 400 and api.json()["params"] == ["after"]
    page = client.get("/", params={"q": "food", "after": "2024-13-01"}, headers={"Accept": "application/json"})
    assert page.status_code == 400 and page.json()["error"] == api.json()["error"]
    assert "is not a date" in api.json()["error"]
    cli = subprocess.run([PHOTOSCOUT, "search", "food", "--after", "2024-13-01", "--no-server"], capture_output=True,
                         text=True, env={**os.environ, "PHOTOSCOUT_HOME": str(home)}, timeout=120)
    assert cli.returncode == 2 and api.json()["error"] in cli.stderr and "--after" in cli.stderr


def test_every_page_answers_json_from_the_same_view(client: TestClient) -> None:
    """#26, datasette's way: each page's handler answers JSON (``Accept: application/json`` or ``?format=json``)
    with the data its template renders; a search page's next page is in it, as the API pages."""
    as_json = {"Accept": "application/json"}
    first = client.get("/", params={"q": "food", "n": 5}, headers=as_json).json()
    api = client.get("/api/v1/search", params={"q": "food", "limit": 5}).json()
    assert [h["photo_id"] for h in first["result"]["results"]] == [h["photo_id"] for h in api["results"]]
    assert first["result"]["next_offset"] == api["next_offset"] == 5 and "offset=5" in first["next_url"]
    second = client.get(first["next_url"], headers=as_json).json()
    assert second["result"]["offset"] == 5 and second["result"]["results"][0]["photo_id"] not in \
        {h["photo_id"] for h in first["result"]["results"]}
    browse = client.get("/", params={"format": "json", "n": 7}).json()
    assert browse["result"]["model"] is None and len(browse["result"]["results"]) == 7
    models = client.get("/models", headers=as_json).json()["models"]
    assert all(set(m["actions"]) == {"job", "evaluate", "compare", "promote", "activate", "rollback"} for m in models)
    assert {m["ref"]: m["actions"]["job"] for m in models}[V1] == "embed"
    jobs = client.get("/jobs", params={"format": "json"}).json()
    assert {m["ref"] for m in jobs["candidates"]} == {m["ref"] for m in models if m["actions"]["job"]}
    assert set(client.get("/disk", headers=as_json).json()) == {"disk", "findings", "healthy"}
    pid = api["results"][1]["photo_id"]
    photo = client.get(f"/photos/{pid}", params={"q": "food", "rank": 1}, headers=as_json).json()
    assert photo["photo"]["id"] == pid and photo["neighbours"]["previous"] == {
        "photo_id": api["results"][0]["photo_id"], "rank": 0}
    assert photo["neighbours"]["next"] == {"photo_id": api["results"][2]["photo_id"], "rank": 2}
    missing = client.get("/photos/999999", params={"format": "json"}, headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "no photo 999999" in missing.json()["error"]  # asked as JSON, even an error


def test_compare_promote_and_rollback(client: TestClient) -> None:
    side = client.get("/api/v1/compare", params={"q": "food", "right": RANDOM, "limit": 20})
    assert side.status_code == 200, side.text
    body = side.json()
    assert body["left"]["model"] == V1 and body["right"]["model"] == RANDOM
    assert body["only_left"] == sum(r["differs"] for r in body["left"]["results"]) > 0
    page = client.get("/compare", params={"q": "food", "right": RANDOM}, headers={"Accept": "text/html"}).text
    assert page.count("only here") == body["only_left"] + body["only_right"]
    refused = client.post(f"/api/v1/models/{RANDOM}/promote", json={}, headers=WRITE)
    assert refused.status_code == 409 and refused.json()["gate"]["passed"] is False
    assert "gate refused" in refused.json()["gate"]["summary"]
    forced = client.post(f"/api/v1/models/{RANDOM}/promote", json={"force": True, "reason": "web test"},
                         headers=WRITE)
    assert forced.status_code == 200 and forced.json()["model"]["status"] == "active", forced.text
    assert forced.json()["promoted"] is True and forced.json()["model"]["ref"] == RANDOM
    assert client.get("/api/v1/search", params={"q": "food", "limit": 1}).json()["model"] == RANDOM
    back = client.post("/api/v1/models/rollback", json={"type": "embedding"}, headers=WRITE)
    assert back.json()["active"]["ref"] == V1 and back.json()["replaced"]["ref"] == RANDOM
    history = client.get("/api/v1/history", params={"model": RANDOM}).json()
    reasons = [h["reason"] for h in history][-2:]
    assert "forced past the gate: web test" in reasons[0] and "rollback from the web UI" in reasons[1], reasons


def test_pages_render_on_the_server(client: TestClient) -> None:
    html = {"Accept": "text/html"}
    page = client.get("/", params={"q": "food", "category": "food"}, headers=html)
    assert page.status_code == 200 and page.text.count('class="card') >= 5
    assert "/api/v1/photos/" in page.text and "Content-Security-Policy".lower() in page.headers
    pid = client.get("/api/v1/search", params={"q": "food", "limit": 2}).json()["results"][1]["photo_id"]
    detail = client.get(f"/photos/{pid}", params={"q": "food", "rank": 1}, headers=html)
    assert detail.status_code == 200 and 'id="prev"' in detail.text and 'id="next"' in detail.text
    assert "More like this" in detail.text
    for path in ("/models", "/jobs", "/disk", "/compare"):
        assert client.get(path, headers=html).status_code == 200, path
    missing = client.get("/photos/999999", headers=html)
    assert missing.status_code == 404 and "no photo 999999" in missing.text and "<html" in missing.text
    bad = client.get("/", params={"q": "x", "after": "yesterday"}, headers=html)
    assert bad.status_code == 400 and "is not a date" in bad.text


def test_the_guard_on_loopback(client: TestClient) -> None:
    # a write from another site (no header, a foreign or no Origin) is refused
    for headers in ({}, {"Origin": "http://evil.example"}):
        r = client.post("/api/v1/models/rollback", json={}, headers=headers)
        assert r.status_code == 403 and "another site" in r.json()["error"]
    same = client.post("/api/v1/marks", json={"query": "x", "photo_id": 999999, "relevant": True},
                       headers={"Origin": "http://127.0.0.1:8765"})
    assert same.status_code == 404  # passed the guard, then: no such photo
    rebinding = client.get("/api/v1/status", headers={"Host": "attacker.example:8765"})
    assert rebinding.status_code == 421
    big = client.post("/api/v1/marks", content=b"x" * (26 * 2**20), headers={**WRITE, "Content-Type":
                                                                              "application/json"})
    assert big.status_code == 413
    assert client.get("/api/v1/health").headers["x-content-type-options"] == "nosniff"


def test_a_token_is_needed_everywhere_when_given(core: Photoscout) -> None:
    token = "t" * 32
    with TestClient(create_app(core, token=token, host="0.0.0.0", warm=False),
                    base_url="http://nas.local:8765") as c:
        assert c.get("/api/v1/status").status_code == 401
        assert c.get("/api/v1/status", headers={"X-Photoscout-Token": "wrong" * 8}).status_code == 401
        assert c.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        page = c.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert c.post("/login", data={"token": "nope"}, headers={"Origin": "http://nas.local:8765"}).status_code \
            == 401
        login = c.post("/login", data={"token": token}, headers={"Origin": "http://nas.local:8765"},
                       follow_redirects=False)
        cookie = login.headers["set-cookie"]
        assert login.status_code == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert c.get("/", headers={"Accept": "text/html"}).status_code == 200  # the cookie now
        cross_site = c.post("/api/v1/models/rollback", json={}, headers={"Origin": "http://evil.example"})
        assert cross_site.status_code == 403  # the cookie alone does not make a write from another site
        c.cookies.clear()
        c.headers["X-Photoscout-Token"] = token
        assert c.get("/api/v1/photos", params={"limit": 1}).status_code == 200


def test_cli_search_uses_a_running_server_and_version_stays_light(home: Path) -> None:
    light = subprocess.run([sys.executable, "-c", "import sys, photoscout.cli; print(sorted(m for m in "
                            "('numpy', 'psycopg', 'onnxruntime', 'photoscout.app', 'fastapi') if m in sys.modules))"],
                           capture_output=True, text=True, check=True)
    assert light.stdout.strip() == "[]"
    port = _free_port()
    env = {**os.environ, "PHOTOSCOUT_HOME": str(home)}
    server = subprocess.Popen([PHOTOSCOUT, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (home / "data" / "server.json").exists():
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.stdout \
                else ""
            time.sleep(0.2)
        found = subprocess.run([PHOTOSCOUT, "search", "food", "--json", "-n", "3"], env=env, capture_output=True,
                               text=True, timeout=60)
        assert found.returncode == 0, found.stderr
        import json

        answer = json.loads(found.stdout)
        assert f"asked the running server at http://127.0.0.1:{port}" in found.stderr and len(answer["results"]) == 3
        local = subprocess.run([PHOTOSCOUT, "search", "food", "--json", "-n", "3", "--no-server"], env=env,
                               capture_output=True, text=True, timeout=120)
        alone = json.loads(local.stdout)
        assert [r["photo_id"] for r in alone["results"]] == [r["photo_id"] for r in answer["results"]]
        # one result shape: through the server or not, the CLI's --json has the API's fields, nothing added
        assert set(alone) == set(answer) and set(alone["results"][0]) == set(answer["results"][0])
        assert alone["next_offset"] == answer["next_offset"] == 3 and alone["limit"] == 3
        announced = (home / "data" / "server.json").read_text()
        # one service per library: a second serve on this home is refused, names the first, and orphans nothing
        second = subprocess.run([PHOTOSCOUT, "serve", "--port", str(_free_port())], env=env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2 and f"pid {server.pid} at http://127.0.0.1:{port}" in second.stderr, \
            second.stderr
        assert (home / "data" / "server.json").read_text() == announced
        # another library on the same port: refused before anything is opened
        other = subprocess.run([PHOTOSCOUT, "--home", str(home.parent / "other-home"), "serve", "--port", str(port)],
                               env=env, capture_output=True, text=True, timeout=60)
        assert other.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in other.stderr, other.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (home / "data" / "server.json").exists()
