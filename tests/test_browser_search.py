"""The searches of issue #29 in a real headless Chromium against a real ``photoscout serve``: the grid scrolls past
the 500th result, the order toggle keeps the matches newest first and counts them, a negative filter from the query
and from the filter panel, a smart album saved from a search and listed with its count. The library is the small
real one plus copies of its rows (same vectors and thumbnails, paths outside every root) to pass 500 photos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from photoscout.database.embedded import EmbeddedServer
from tests.conftest import clone_library
from tests.test_browser import ARTIFACTS, CHROMIUM, serving

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                "(scripts/test.sh installs it)")
COPIES = 15


def _add_copies(home: Path) -> int:
    """Each readable photo copied ``COPIES`` times (its row, categories, thumbnail and vectors), under /copies/."""
    url = (home / "config.toml").read_text().split('"')[1]
    with psycopg.connect(url, autocommit=True) as conn:
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'photos' AND column_name NOT IN "
            "('id', 'path', 'path_raw') AND is_generated = 'NEVER' ORDER BY ordinal_position")]
        listed = ", ".join(cols)
        conn.execute(
            f"INSERT INTO photos ({listed}, path, path_raw) SELECT {listed}, '/copies/' || g || '/' || id || '.jpg', "
            f"convert_to('/copies/' || g || '/' || id || '.jpg', 'UTF8') FROM photos, generate_series(1, %s) g "
            f"WHERE status = 'ok' AND media_kind = 'image'", (COPIES,))
        conn.execute(
            "INSERT INTO photo_embeddings (photo_id, model_id, embedding_model, embedding_version, embedding, "
            "embedding_half) SELECT c.id, e.model_id, e.embedding_model, e.embedding_version, e.embedding, "
            "e.embedding_half FROM photos c JOIN photos o ON c.path LIKE '/copies/%%/' || o.id || '.jpg' "
            "JOIN photo_embeddings e ON e.photo_id = o.id")
        row = conn.execute("SELECT count(*) FROM photos WHERE status = 'ok' AND media_kind = 'image'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def server(library_template: tuple[Path, str], pg_server: EmbeddedServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    home = clone_library(library_template, pg_server, Path(tmp_path_factory.mktemp("browser-search")))
    photos = _add_copies(home)
    with serving(home) as url:
        yield url, home, photos


@pytest.fixture
def page(server: tuple[str, Path, int]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        yield pg
        browser.close()


def _cards(page: object) -> list[str]:
    return page.eval_on_selector_all("#grid .card", "els => els.map(e => e.dataset.photo)")  # type: ignore


def test_the_grid_scrolls_past_500_results(server: tuple[str, Path, int], page: object) -> None:
    """Before: the next page stopped at the 500th result. Now scrolling reaches every photo of the library."""
    url, _home, photos = server
    assert photos > 500
    page.goto(f"{url}/?q=a+photo&n=200")  # type: ignore[attr-defined]
    for _ in range(10):
        if len(_cards(page)) >= photos:
            break
        page.locator("#grid .card").last.scroll_into_view_if_needed()  # type: ignore[attr-defined]
        page.wait_for_timeout(1500)  # type: ignore[attr-defined]
    shown = _cards(page)
    assert len(shown) == len(set(shown)) == photos
    assert page.locator("#more").count() == 0  # type: ignore[attr-defined]


def test_matches_by_date_a_negative_filter_and_a_smart_album(server: tuple[str, Path, int], page: object) -> None:
    url, _home, photos = server
    page.goto(f"{url}/?q=food")  # type: ignore[attr-defined]
    page.click("#sort a[data-sort=date]")  # type: ignore[attr-defined]
    page.wait_for_selector("#matches")  # type: ignore[attr-defined]
    matches = int(page.text_content("#matches"))  # type: ignore[attr-defined]
    assert 0 < matches < photos and "newest first" in page.text_content("#summary")  # type: ignore[attr-defined]
    page.screenshot(path=str(ARTIFACTS / "matches-by-date.png"))  # type: ignore[attr-defined]
    # a negative filter in the query, then in the filter panel
    page.goto(f"{url}/?q=a+photo+-food&n=500")  # type: ignore[attr-defined]
    paths = page.eval_on_selector_all("#grid .card", "els => els.map(e => e.dataset.path)")  # type: ignore
    assert paths and not any("/food/" in p for p in paths)
    page.goto(f"{url}/?q=a+photo&n=500")  # type: ignore[attr-defined]
    page.click("form.search details summary")  # type: ignore[attr-defined]
    page.select_option("select[name=not_category]", ["food", "animals"])  # type: ignore[attr-defined]
    page.click("form.search button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url("**not_category=animals**")  # type: ignore[attr-defined]
    paths = page.eval_on_selector_all("#grid .card", "els => els.map(e => e.dataset.path)")  # type: ignore
    assert paths and not any("/food/" in p or "/animals/" in p for p in paths)
    # a smart album from the sorted search: saved, opened, listed with its count
    page.goto(f"{url}/?q=food&sort=date")  # type: ignore[attr-defined]
    page.fill("#save-album input[name=name]", "Food, newest")  # type: ignore[attr-defined]
    page.click("#save-album button")  # type: ignore[attr-defined]
    page.wait_for_selector("#album-title")  # type: ignore[attr-defined]
    assert int(page.text_content("#album-count")) == matches  # type: ignore[attr-defined]
    page.goto(f"{url}/albums")  # type: ignore[attr-defined]
    row = page.locator("#albums tr[data-album='Food, newest']")  # type: ignore[attr-defined]
    assert row.locator(".count").text_content().strip() == str(matches)
    page.screenshot(path=str(ARTIFACTS / "albums.png"))  # type: ignore[attr-defined]
    row.locator("button.delete-album").click()
    page.wait_for_selector("#albums tr[data-album='Food, newest']", state="detached")  # type: ignore
