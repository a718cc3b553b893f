"""The web UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
``photoscout serve`` on a real library: search, more results on scroll, a photo and its neighbours by keyboard,
marks, the side-by-side comparison, a job watched live, the gate's verdict, a forced promotion and rollback, a
phone's width. Screenshots are kept in ``test-artifacts/`` (grid of "food", the comparison, ...)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from photoscout.database.embedded import EmbeddedServer
from tests.conftest import PHOTOSCOUT, REPO, _free_port, clone_library

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("PHOTOSCOUT_TEST_ARTIFACTS", REPO / "test-artifacts"))
RANDOM = "random-vectors@v0.1.0"
V1 = "conse-effnetl0-minilm@v4.1.0"  # the default for new installs

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                "(scripts/test.sh installs it)")


@pytest.fixture(scope="module")
def server(library_template: tuple[Path, str], pg_server: EmbeddedServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = clone_library(library_template, pg_server, Path(tmp_path_factory.mktemp("browser")))
    with serving(home) as url:
        yield url, home


@contextmanager
def serving(home: Path) -> Iterator[str]:
    """``photoscout serve`` of ``home`` on a free port, until the block ends; its URL."""
    port = _free_port()
    proc = subprocess.Popen([PHOTOSCOUT, "serve", "--port", str(port)], env={**os.environ, "PHOTOSCOUT_HOME":
                            str(home)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (home / "data" / "server.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"photoscout serve did not start: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    expected = "status of 409 (Conflict)"  # the gate's refusal is an answer the page shows, not a fault
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and expected not in msg.text
          else None)
    yield pg
    context.close()
    assert not errors, f"errors in the page: {errors}"


def _loaded(page: object, selector: str = "#grid .card img") -> int:
    """Wait until every thumbnail in view has loaded; how many cards there are."""
    page.wait_for_selector(selector)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "sel => Array.from(document.querySelectorAll(sel)).slice(0, 12).every(i => i.complete && i.naturalWidth > 0)",
        arg=selector)
    return int(page.locator(selector).count())  # type: ignore[attr-defined]


def test_search_grid_scroll_photo_and_keyboard(server: tuple[str, Path], page: object) -> None:
    url, _home = server
    page.goto(f"{url}/?q=food")  # type: ignore[attr-defined]
    cards = _loaded(page)
    paths = page.locator("#grid .card").evaluate_all("els => els.map(e => e.dataset.path)")  # type: ignore
    assert cards >= 5 and sum("/food/" in p for p in paths[:5]) >= 4, paths[:5]
    page.screenshot(path=str(ARTIFACTS / "search-food.png"))  # type: ignore[attr-defined]
    # more results as the grid's end comes into view
    served = page.request.get(f"{url}/?q=food&n=12").text()  # type: ignore[attr-defined]
    assert served.count('<figure class="card') == 12  # the first page comes in the HTML
    page.goto(f"{url}/?q=food&n=12")  # type: ignore[attr-defined]
    _loaded(page)
    page.mouse.wheel(0, 5000)  # type: ignore[attr-defined]
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length >= 24")  # type: ignore
    # a photo, larger, with its metadata; the arrow keys walk the search, Escape goes back
    page.locator("#grid .card a").nth(1).click()  # type: ignore[attr-defined]
    page.wait_for_selector("img.preview")  # type: ignore[attr-defined]
    assert "rank=1" in page.url and "Categories" in page.content()  # type: ignore[attr-defined]
    page.wait_for_function("() => document.querySelector('img.preview').naturalWidth > 0")  # type: ignore
    page.screenshot(path=str(ARTIFACTS / "photo.png"))  # type: ignore[attr-defined]
    page.keyboard.press("ArrowRight")  # type: ignore[attr-defined]
    page.wait_for_url("**rank=2**")  # type: ignore[attr-defined]
    page.keyboard.press("ArrowLeft")  # type: ignore[attr-defined]
    page.wait_for_url("**rank=1**")  # type: ignore[attr-defined]
    page.keyboard.press("Escape")  # type: ignore[attr-defined]
    page.wait_for_url(f"{url}/?q=food")  # type: ignore[attr-defined]


def test_marks_and_a_class_example(server: tuple[str, Path], page: object) -> None:
    url, home = server
    page.goto(f"{url}/?q=pizza")  # type: ignore[attr-defined]
    _loaded(page)
    first = page.locator("#grid .card").first  # type: ignore[attr-defined]
    first.locator("button.mark[data-relevant=true]").click()
    page.wait_for_selector("#grid .card.relevant")  # type: ignore[attr-defined]
    page.locator("#grid .card").nth(1).locator("button.mark[data-relevant=false]").click()  # type: ignore
    page.wait_for_selector("#grid .card.not_relevant")  # type: ignore[attr-defined]
    assert 'text = "pizza"' in (home / "evalsets" / "marked.toml").read_text()
    page.reload()  # type: ignore[attr-defined]
    assert page.locator("#grid .card.relevant").count() == 1  # type: ignore[attr-defined]
    first = page.locator("#grid .card").first  # type: ignore[attr-defined]
    first.locator("a").click()
    page.fill("form.example input[name=name]", "my pizza")  # type: ignore[attr-defined]
    page.click("form.example button")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.getElementById('toast').textContent.includes('an example of my pizza')")


def test_compare_job_gate_promote_and_rollback(server: tuple[str, Path], page: object) -> None:
    url, _home = server
    # a job for the staging version, started and watched on the jobs page
    page.goto(f"{url}/jobs")  # type: ignore[attr-defined]
    page.select_option("form.newjob select[name=model]", RANDOM)  # type: ignore[attr-defined]
    page.click("form.newjob button")  # type: ignore[attr-defined]
    page.wait_for_selector("#jobs tr[data-job]")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.querySelector('#jobs tr[data-job] .status').textContent === 'completed'", timeout=120_000)
    assert page.locator("#jobs tr[data-job] .count").first.text_content() == "40/40"  # type: ignore
    page.screenshot(path=str(ARTIFACTS / "jobs.png"))  # type: ignore[attr-defined]
    # side by side: the results only one version shows are marked
    page.goto(f"{url}/compare?q=food&right={RANDOM}")  # type: ignore[attr-defined]
    _loaded(page, ".sides .card img")
    assert page.locator(".sides .card.differs").count() > 0  # type: ignore[attr-defined]
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)  # type: ignore[attr-defined]
    # the gate says no (not evaluated); forced with a reason, it is promoted; rollback in one click
    page.goto(f"{url}/models")  # type: ignore[attr-defined]
    row = page.locator(f"tr[data-model='{RANDOM}']")  # type: ignore[attr-defined]
    row.locator("form.promote button").click()
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.querySelector('output.verdict').textContent.includes('gate refused')")
    page.screenshot(path=str(ARTIFACTS / "gate-refused.png"))  # type: ignore[attr-defined]
    row.locator("input[name=force]").check()
    row.locator("input[name=reason]").fill("browser test")
    row.locator("form.promote button").click()
    page.wait_for_selector(f"tr[data-model='{RANDOM}'].status-active")  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    page.click("text=Roll back the search model")  # type: ignore[attr-defined]
    page.wait_for_selector(f"tr[data-model='{V1}'].status-active")  # type: ignore[attr-defined]
    assert "browser test" in page.locator("pre.log").text_content()  # type: ignore[attr-defined]


def test_disk_health_and_a_phone_screen(server: tuple[str, Path], browser: object) -> None:
    url, _home = server
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore
    page = context.new_page()
    page.goto(f"{url}/?q=food")
    _loaded(page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
    page.screenshot(path=str(ARTIFACTS / "phone-search.png"))
    page.goto(f"{url}/disk")
    assert page.locator("h1").first.text_content().startswith("Health")
    assert page.locator("table").nth(1).locator("tbody tr").count() >= 2  # a row per model version
    context.close()


def test_a_video_opens_at_the_second_that_matched(server: tuple[str, Path], page: object,
                                                  tmp_path: Path) -> None:
    """A clip indexed into the server's home is found at the second its receipt shows, and opens there. (Last in
    this file: the clip adds photos that the job counts of the tests above do not expect.)"""
    from tests.media_files import write_clip

    url, home = server
    dataset = REPO.parent / "shared" / "datasets" / "photos-dev"
    receipt = dataset / "documents" / "receipt_00715.jpg"  # "MONGOLIA CHICKEN" is printed on it
    food = sorted((dataset / "food").glob("*.jpg"))[5]
    write_clip(tmp_path / "clips" / "dinner.mp4", [(food, 2.0), (receipt, 2.0), (food, 1.0)], size=(1280, 960))
    subprocess.run([PHOTOSCOUT, "index", str(tmp_path / "clips")], env={**os.environ, "PHOTOSCOUT_HOME": str(home)},
                   check=True, capture_output=True, timeout=300)
    page.goto(f'{url}/?q="mongolia chicken" dinner')  # type: ignore[attr-defined]
    card = page.locator("#grid .card", has=page.locator("span.play")).first  # type: ignore[attr-defined]
    card.wait_for()
    assert card.locator("span.play").inner_text().strip().endswith("0:02")  # a play badge at the moment
    card.locator("a").click()
    page.wait_for_selector("video#video")  # type: ignore[attr-defined]
    assert page.locator("video#video").get_attribute("src").endswith("#t=2.0")  # type: ignore[attr-defined]
    # the browser itself opens the clip there: the poster, then the frame at 0:02
    page.wait_for_function("() => document.querySelector('video#video').readyState >= 1")  # type: ignore
    state = page.evaluate("() => { const v = document.querySelector('video#video'); "  # type: ignore
                          "return {t: v.currentTime, d: v.duration, error: v.error && v.error.code}; }")
    assert state["error"] is None and 4.5 < state["d"] < 5.5 and abs(state["t"] - 2.0) < 0.5, state
    page.screenshot(path=str(ARTIFACTS / "video.png"))  # type: ignore[attr-defined]
