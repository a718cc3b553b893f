"""What the search finds with the built-in models on real photos of kinds that ImageNet names badly (issue #14):
headphones (no ImageNet class: their photos look like microphones), mobile phones (remote controls, hand-helds),
beside cameras and laptops, which the same classifier puts in the electronics category more often."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from photoscout.app import Photoscout
from photoscout.common.errors import InvalidParameter
from photoscout.config import load_settings
from photoscout.evaluation.metrics import average_precision
from photoscout.search.filters import Filters
from photoscout.search.query import printed_phrases, squeeze
from tests.conftest import DATASET, _new_database, sample_rows

SAMPLE = {"headphone": 10, "cellphone": 10, "camera": 8, "laptop": 8, "pizza": 3, "receipt": 2, "other": 4}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, pg_server: object,
            builtin_wheels: Path) -> Iterator[tuple[Photoscout, dict[str, str]]]:
    root = Path(tmp_path_factory.mktemp("quality"))
    labels: dict[str, str] = {}
    for row in sample_rows(SAMPLE):
        target = root / "photos" / row["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATASET / row["file"], target)
        labels[str(target)] = row["label"]
    slip = root / "photos" / "scans" / "slip.png"  # print as OCR reads it: words run together
    slip.parent.mkdir(parents=True)
    page = Image.new("RGB", (1400, 900), "white")
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(("CORNER SHOP", "SUBTOTAL 12.50", "VAT 2.50", "AMOUNTDUE 15.00")):
        draw.text((80, 80 + 190 * i), line, fill="black", font=ImageFont.load_default(size=90))
    page.save(slip)
    labels[str(slip)] = "slip"
    settings = load_settings(root / "home", database_url=_new_database(pg_server))  # type: ignore[arg-type]
    with Photoscout.open(settings.home, database_url=settings.database_url) as core:
        core.install_builtin(wheels_dir=builtin_wheels)
        core.index([root / "photos"])
        yield core, labels


def _ap(core: Photoscout, labels: dict[str, str], query: str, *wanted: str) -> float:
    ranked = [h.path for h in core.search(query, limit=40).hits]
    return average_precision(ranked, {p for p, label in labels.items() if label in wanted}, 40)


def test_a_kind_of_electronics_is_not_buried_under_the_rest_of_the_category(
        library: tuple[Photoscout, dict[str, str]]) -> None:
    """Before: "headphones" named the electronics category, whose ranking put the phones and cameras the classifier
    calls electronics above the headphones it does not, and the first screen's look was not used (AP here:
    headphones 0.29, a mobile phone 0.58). A kind is now left to the image ranking and its look-alikes (0.48,
    0.86); the category's own name still ranks the whole category first."""
    core, labels = library
    assert _ap(core, labels, "headphones", "headphone") >= 0.4
    assert _ap(core, labels, "a mobile phone", "cellphone") >= 0.75
    assert _ap(core, labels, "a laptop computer", "laptop") >= 0.95
    assert _ap(core, labels, "a camera", "camera") >= 0.6
    assert _ap(core, labels, "electronics", "headphone", "cellphone", "camera", "laptop") >= 0.95


def test_the_first_screen_look_reaches_the_look_alikes(library: tuple[Photoscout, dict[str, str]]) -> None:
    """Pseudo-relevance feedback: the candidates are ranked again by how much they look like the first screen, and
    a result says so; a search for a photo (already by look) does not use it."""
    core, labels = library
    hits = core.search("headphones", limit=10).hits
    assert all(any(w.startswith("looks like the best matches (") for w in h.why) for h in hits)
    first = next(h for h in hits if labels[h.path] == "headphone")
    similar = core.search(similar_to=first.photo_id, limit=5).hits
    assert not any(w.startswith("looks like the best matches") for h in similar for w in h.why)


def test_ocr_text_is_found_where_words_run_together(library: tuple[Photoscout, dict[str, str]]) -> None:
    """OCR runs words together ("SUBTOTAL", "AMOUNTDUE"); full-text search finds neither "total" nor "amount due"
    in them. The query's longer words are also looked for inside the squeezed text, and a word's start finds its
    longer forms ("amount" finds "amounts")."""
    core, labels = library
    slip = next(p for p, label in labels.items() if label == "slip")
    for query in ("total", "amount due"):
        hits = core.search(query, limit=10, filters=Filters(has_text=True)).hits
        found = {h.path: h.why for h in hits}
        assert slip in found, (query, list(found))
        assert any(w.startswith("text in photo: ") for w in found[slip]), found[slip]


def test_quoted_words_must_be_printed_in_the_photo(library: tuple[Photoscout, dict[str, str]]) -> None:
    """A single printed word ("total") means little to the image rankings, which outvoted the OCR list: photos of
    gadgets whose stray OCR characters were "close" came before the slip that prints it. Quoted words are now a
    filter (the active OCR model read them, case and spacing ignored) and the OCR evidence leads."""
    core, labels = library
    slip = next(p for p, label in labels.items() if label == "slip")
    for query in ('"total"', '"amount due"', 'a shop slip "Amount-Due"'):
        hits = core.search(query, limit=20).hits
        assert slip in [h.path for h in hits], (query, [(h.path, h.why) for h in hits[:3]])
        for h in hits:
            text = squeeze(core.photo(h.photo_id)["ocr_text"] or "")
            assert squeeze(query.split('"')[1]) in text, (query, h.path, text[:200])
    assert core.search('"corner shop" "vat"', limit=5).hits[0].path == slip
    assert core.search('"total" "no such words here"', limit=5).hits == []
    unquoted = [h.path for h in core.search("total", limit=20).hits]
    assert any(labels[p] not in ("slip", "receipt") for p in unquoted)  # without quotes it is a search by meaning


def test_quoted_phrases_are_parsed_and_checked() -> None:
    assert printed_phrases('a receipt with "Total Due" and \u201ccash\u201d') == (
        "a receipt with Total Due and cash", ["Total Due", "cash"])
    assert printed_phrases("no quotes here") == ("no quotes here", [])
    assert squeeze("TOT AL: 12.50") == "total1250"
    with pytest.raises(InvalidParameter, match="no letters or digits"):
        printed_phrases('"..."')
    with pytest.raises(InvalidParameter, match="at most"):
        printed_phrases(" ".join(f'"w{i}"' for i in range(9)))
    with pytest.raises(InvalidParameter, match="no letters or digits"):
        Filters(printed=("  ",)).check()


def test_a_query_is_understood_once_whatever_its_punctuation() -> None:
    """#26: what a query means is worked out in one place with one tokenizer. Before, the engine split words on
    spaces to decide whether printed words lead ("receipts, please" did not: "receipts," is no concept), and the
    categories a query names were matched on the raw text ("screen-shot" named nothing)."""
    from photoscout.search import query

    assert query.words("Receipts, please!  TOT-AL") == ["receipts", "please", "tot", "al"]
    for text in ("receipts, from the hardware store", "a receipt.", "(receipt)", "RECEIPTS"):
        assert query.parse(text).printed_leads, text
    assert not query.parse("pizza, please").printed_leads
    assert query.parse('pizza "total"').printed_leads and query.parse('pizza "total"').printed == ("total",)
    assert query.named_categories("a screen-shot of the router settings") == ["screenshots"]
    assert query.named_categories("screenshots, please") == ["screenshots"]
    assert query.named_categories("receipt: hardware store") == ["receipts"]
    meaning = query.parse("  Receipt, from the hardware-store  ")
    assert meaning.terms[:3] == ("receipt", "hardware", "store") and "total" in meaning.terms
    assert meaning.categories == ("receipts",) and meaning.text == "Receipt, from the hardware-store"
    with pytest.raises(InvalidParameter, match="at most 1000"):
        query.parse("x" * 1001)


def test_filters_are_read_by_one_parser() -> None:
    """#26: the CLI's options, the API's and the page's parameters go through ``Filters.parse`` (one date parser,
    the same errors) and come back out as the API's parameters (the CLI asking a running server)."""
    from datetime import date

    found = Filters.parse(category=" food ", after="2024-01-01", before="2024-02-01", folder="/photos/a",
                          camera="", has_text="on")
    assert found == Filters(categories=("food",), after=date(2024, 1, 1), before=date(2024, 2, 1),
                            paths=("/photos/a",), has_text=True)
    assert Filters.from_params(found.params()) == found
    assert Filters.from_params({"q": "x", "n": "3"}) == Filters() and not Filters.parse().active
    with pytest.raises(InvalidParameter, match="is not a date") as bad:
        Filters.parse(after="2024-13-01")
    assert bad.value.params == ("after",)
    with pytest.raises(InvalidParameter, match="before the 'before' date"):
        Filters.parse(after="2024-02-01", before="2024-01-01")
    # #29: several values, and what is left out, go out and come back the same way
    many = Filters.parse(category=["food", "animals"], folder=["/a", "/b"], camera=["Canon", "Nikon"],
                         tag=["x", "y"], not_category="screenshots", exclude=["total due"])
    assert many.categories == ("food", "animals") and many.category is None and many.not_words == ("total due",)
    assert Filters.from_params(many.params()) == many
    with pytest.raises(InvalidParameter, match="both asked for and left out"):
        Filters.parse(category="food", not_category="food")


def test_a_query_says_what_it_leaves_out() -> None:
    """#29: -screenshots and not:documents leave categories out, -"total due" and -word leave out what is printed
    in the photo or tagged; a hyphen inside a word is the word's; the rest of the query is what ranks."""
    from photoscout.search import query

    m = query.parse('a dog -screenshots not:my_class -"total due" -pizza t-shirt')
    assert m.text == "a dog t-shirt"
    assert m.not_categories == ("screenshots", "my_class") and m.not_words == ("total due", "pizza")
    assert query.parse("-documents").filters_only
    filters = Filters().with_query(m)
    assert filters.not_categories == ("screenshots", "my_class") and filters.not_words == ("total due", "pizza")


def test_quoted_words_are_squeezed_by_the_same_rule_as_the_stored_text(
        library: tuple[Photoscout, dict[str, str]]) -> None:
    """The stored OCR text is squeezed by PostgreSQL (``photo_text.squeezed``) and a quoted phrase was squeezed by
    Python: the two rules disagreed off ASCII (Python keeps "½" and "²", which the database drops; Python lowers a
    final capital sigma to "ς", the database to "σ"), so a phrase printed in the photo was not found. The phrase is
    now squeezed by the database's own rule. The text is stored through the same upsert an OCR job uses."""
    from photoscout.analysis.store import Outputs, store
    from photoscout.registry.lifecycle import active

    core, labels = library
    ocr = active(core.db, "ocr")
    assert ocr is not None
    photo = next(p for p, label in labels.items() if label == "pizza")
    photo_id = core.photo(photo)["id"]
    before = core.photo(photo_id)["ocr_text"]
    printed = "CRÈME BRÛLÉE ½ PRICE\nΟΔΟΣ ΣΤΑΔΙΟΥ 10m²"
    outputs = Outputs()
    outputs.add("text", photo_id, ocr.id, printed, 0.9)
    store(core.db, outputs)
    try:
        for phrase in ("crème brûlée", "ΟΔΟΣ", "οδος σταδιου", "10m²", "ΣΤΑΔΙΟΥ 10M²"):
            hits = core.search(f'"{phrase}"', limit=5).hits
            assert [h.path for h in hits] == [photo], (phrase, [h.path for h in hits])
        # "½" is no letter or digit to the database, in the stored text as in the phrase: "½ price" is "price" there
        assert photo in [h.path for h in core.search('"½ price"', limit=20).hits]
        assert core.search('"crème brûlées"', limit=5).hits == []
        assert core.search('"²"', limit=5).hits == []  # nothing the stored text keeps: found nowhere, not everywhere
    finally:
        with core.db.connection() as conn:
            if before is None:
                conn.execute("DELETE FROM photo_text WHERE photo_id = %s AND model_id = %s", (photo_id, ocr.id))
            else:
                conn.execute("UPDATE photo_text SET text = %s WHERE photo_id = %s AND model_id = %s",
                             (before, photo_id, ocr.id))
