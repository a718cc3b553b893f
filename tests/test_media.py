"""Real libraries (issue #28): camera RAW through LibRaw, RAW+JPEG pairs as one photo, XMP sidecars and embedded XMP
as filters and words. Against the real embedded PostgreSQL and the built-in models; the RAW files are DNGs written
here (tests/media_files.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from photoscout.app import Photoscout
from photoscout.common.imaging import load_rgb
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.database.embedded import EmbeddedServer
from photoscout.library import catalog, scanner
from photoscout.search.filters import Filters
from tests.conftest import clone_library, run_cli
from tests.media_files import jpeg_with_xmp, truncated_copy, write_clip, write_dng, xmp_packet

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "photos-dev"


def _source(category: str, n: int = 0) -> Path:
    return sorted((DATASET / category).glob("*.jpg"))[n]


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_raw_files_are_photos_and_bad_ones_say_why(db: Database, settings: Settings, tmp_path: Path) -> None:
    lib = tmp_path / "raw"
    src = _source("food")
    with_preview = write_dng(lib / "with_preview.dng", src, preview=True, orientation=6)
    no_preview = write_dng(lib / "no_preview.DNG", src, preview=False, width=900, orientation=6)
    truncated_copy(with_preview, lib / "cut.dng", keep=0.6)  # the mosaic cut off
    truncated_copy(with_preview, lib / "short.dng", keep=0.9)
    (lib / "fake.nef").write_bytes(b"this is not a raw file at all" * 100)
    summary = scanner.scan(db, settings, [lib])
    assert summary.new == 2 and summary.errors == 3, summary.as_dict()
    reasons = {Path(e["path"]).name: e["reason"] for e in summary.error_files}
    assert reasons["cut.dng"].startswith("corrupt: DNG file: starts like a RAW file but LibRaw cannot read it"), reasons
    assert reasons["short.dng"].startswith("truncated: DNG file: the RAW data ends early"), reasons
    assert reasons["fake.nef"].startswith("unsupported: NEF file"), reasons
    for path in (with_preview, no_preview):
        photo = catalog.get_photo(db, str(path))
        assert photo["format"] == "DNG" and photo["media_kind"] == "raw"
        assert (photo["camera_make"], photo["camera_model"]) == ("Canon", "Canon EOS 5D Mark IV")
        assert photo["taken_at"].startswith("2021-07-04T10:11:12") and photo["taken_at_source"] == "exif"
        assert photo["orientation"] == 6
        with Image.open(settings.thumbnails_dir / photo["thumbnail"]) as thumb:
            assert thumb.height > thumb.width  # turned upright (the source is landscape, orientation 6)
            thumb_px = thumb.convert("RGB").resize((8, 8)).get_flattened_data()
        # the models and previews get the same picture the thumbnail was made from
        model_view = load_rgb(os.fsencode(path), max_side=640)
        assert model_view.height > model_view.width
        diff = [abs(a - b) for pa, pb in zip(thumb_px, model_view.resize((8, 8)).get_flattened_data(), strict=True)
                for a, b in zip(pa, pb, strict=True)]
        assert sum(diff) / len(diff) < 12, sum(diff) / len(diff)
    status = catalog.status(db)
    assert status["raw"] == 2 and status["photos"] == 2 and status["errors"] == 3
    # the preview is what the camera rendered; the mosaic demosaiced at half size is close to it
    with Image.open(settings.thumbnails_dir / catalog.get_photo(db, str(no_preview))["thumbnail"]) as a, \
            Image.open(settings.thumbnails_dir / catalog.get_photo(db, str(with_preview))["thumbnail"]) as b:
        pa = a.convert("RGB").resize((8, 8)).get_flattened_data()
        pb = b.convert("RGB").resize((8, 8)).get_flattened_data()
        diff = [abs(x - y) for p, q in zip(pa, pb, strict=True) for x, y in zip(p, q, strict=True)]
    assert sum(diff) / len(diff) < 30, sum(diff) / len(diff)


def test_pairs_are_one_photo_and_sidecars_are_read(db: Database, settings: Settings, tmp_path: Path) -> None:
    lib = tmp_path / "card"
    lib.mkdir()
    pair_jpg = lib / "IMG_0042.JPG"
    shutil.copy2(_source("food", 1), pair_jpg)
    pair_raw = write_dng(lib / "IMG_0042.dng", _source("food", 1), preview=True)
    rated = lib / "IMG_0050.jpg"
    shutil.copy2(_source("animals"), rated)
    sidecar = lib / "IMG_0050.xmp"
    sidecar.write_text(xmp_packet(rating=4, label="Red", tags=("holiday", "Beach"), title="Dog on the beach",
                                  hierarchical=("Places|Spain|Cadiz",)))
    embedded = jpeg_with_xmp(_source("electronics"), lib / "IMG_0051.jpg", xmp_packet(rating=2, tags=("work",)))
    broken = lib / "IMG_0052.jpg"
    shutil.copy2(_source("vehicles"), broken)
    (lib / "IMG_0052.jpg.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><unclosed>")

    first = scanner.scan(db, settings, [lib])
    assert first.new == 5 and first.errors == 0, first.as_dict()
    assert [i["message"] for i in first.issues] == ["sidecar IMG_0052.jpg.xmp: the XMP packet is cut off"]
    status = catalog.status(db)
    assert (status["photos"], status["files"], status["raw"], status["stacks"]) == (4, 5, 1, 1), status
    jpg = catalog.get_photo(db, str(pair_jpg))
    raw = catalog.get_photo(db, str(pair_raw))
    assert jpg["stack_of"] is None and raw["stack_of"] == jpg["id"]  # the rendered JPEG stands for the pair
    assert [m["path"] for m in jpg["stack"]] == [str(pair_jpg), str(pair_raw)] == [m["path"] for m in raw["stack"]]
    dog = catalog.get_photo(db, str(rated))
    assert (dog["rating"], dog["label"], dog["title"]) == (4, "Red", "Dog on the beach")
    assert dog["tags"] == ["holiday", "Beach", "Cadiz"]
    inside = catalog.get_photo(db, str(embedded))
    assert (inside["rating"], inside["tags"]) == (2, ["work"])
    assert catalog.get_photo(db, str(broken))["status"] == "ok"  # a bad sidecar does not make a bad photo
    shown = {p["id"] for p in catalog.list_photos(db, shown_only=True)}
    assert shown == {jpg["id"], dog["id"], inside["id"], catalog.get_photo(db, str(broken))["id"]}

    # a sidecar that changes is picked up by the next scan; the photo's own file was never written to
    before = rated.read_bytes()
    sidecar.write_text(xmp_packet(rating=5, tags=("holiday",)))
    _touch_later(sidecar)
    again = scanner.scan(db, settings, [lib])
    assert again.updated == 1 and again.unchanged == 4, again.as_dict()
    assert catalog.get_photo(db, str(rated))["rating"] == 5 and rated.read_bytes() == before
    assert catalog.get_photo(db, str(rated))["id"] == dog["id"]
    assert scanner.scan(db, settings, [lib]).unchanged == 5

    # the JPEG of the pair goes: the RAW stands for itself again
    pair_jpg.unlink()
    scanner.scan(db, settings, [lib])
    assert catalog.get_photo(db, str(pair_raw))["stack_of"] is None
    assert catalog.status(db)["stacks"] == 0


@pytest.fixture
def library(library_template: tuple[Path, str], pg_server: EmbeddedServer, tmp_path: Path) -> Path:
    return clone_library(library_template, pg_server, tmp_path)


def test_search_shows_a_pair_once_and_filters_by_rating_and_tag(library: Path, tmp_path: Path) -> None:
    lib = tmp_path / "shoot"
    lib.mkdir()
    shutil.copy2(_source("vehicles", 3), lib / "DSC_0001.jpg")
    write_dng(lib / "DSC_0001.dng", _source("vehicles", 3), preview=True)
    write_dng(lib / "DSC_0002.dng", _source("vehicles", 4), preview=False, width=800)  # a RAW alone
    shutil.copy2(_source("animals", 3), lib / "DSC_0003.jpg")
    (lib / "DSC_0003.xmp").write_text(xmp_packet(rating=4, tags=("holiday", "Dolomites")))
    jpeg_with_xmp(_source("animals", 4), lib / "DSC_0004.jpg", xmp_packet(rating=1, tags=("holiday",)))
    with Photoscout.open(library) as core:
        scan, _enriched = core.index([lib])
        assert scan.new == 5 and scan.errors == 0
        ids = {Path(p["path"]).name: p["id"] for p in core.photos(folder=str(lib), limit=10)}
        found = [h.photo_id for h in core.search("a car", limit=60).hits]
        assert ids["DSC_0001.jpg"] in found and ids["DSC_0001.dng"] not in found  # the pair: once
        assert ids["DSC_0002.dng"] in found  # a RAW on its own is searched like any photo
        with core.db.connection() as conn:  # the models ran on the pair's JPEG only
            runs = conn.execute("SELECT count(*) FROM photo_model_runs WHERE photo_id = %s",
                                (ids["DSC_0001.dng"],)).fetchone()[0]
        assert runs == 0

        tagged = core.search("tag:holiday", limit=10)
        assert {h.photo_id for h in tagged.hits} == {ids["DSC_0003.jpg"], ids["DSC_0004.jpg"]}
        assert tagged.model is None  # nothing to rank by: listed newest first
        rated = core.search("tag:holiday rating>=4", limit=10)
        assert [h.photo_id for h in rated.hits] == [ids["DSC_0003.jpg"]]
        words = core.search("dolomites", limit=20)  # a keyword is a word a text search matches
        assert words.hits[0].photo_id == ids["DSC_0003.jpg"] and any("tagged" in w for w in words.hits[0].why)
        details = core.photo(ids["DSC_0001.dng"])
        assert [m["id"] for m in details["stack"]] == [ids["DSC_0001.jpg"], ids["DSC_0001.dng"]]

    cli = run_cli("search", "a dog", "--tag", "Holiday", "--rating", "4", "--json", "--no-server", home=library,
                  check=True)
    assert [r["photo_id"] for r in json.loads(cli.stdout)["results"]] == [ids["DSC_0003.jpg"]]
    bad = run_cli("search", "a dog", "--rating", "9", home=library)
    assert bad.returncode == 2 and "rating" in bad.stderr
    status = json.loads(run_cli("status", "--json", home=library, check=True).stdout)
    assert status["raw"] == 2 and status["stacks"] == 1 and status["files"] == status["photos"] + 1


def test_a_video_is_found_at_the_second_that_matched(library: Path, tmp_path: Path) -> None:
    lib = tmp_path / "videos"
    receipt = DATASET / "documents" / "receipt_00715.jpg"  # "MONGOLIA CHICKEN" is printed on it
    clip = write_clip(lib / "trip.mp4", [(_source("food", 5), 2.0), (receipt, 2.0), (_source("vehicles", 6), 2.0)],
                      size=(1280, 960))
    write_clip(lib / "other.mov", [(_source("animals", 6), 3.0)], size=(640, 480), creation_time=None)
    truncated_copy(clip, lib / "cut.mp4", keep=0.3)
    (lib / "empty.mkv").write_bytes(b"")
    live = lib / "live"  # a Live Photo: the still and its clip are one photo, the clip's frames are not searched
    live.mkdir()
    with Image.open(_source("people", 2)) as im:
        im.convert("RGB").save(live / "IMG_0100.HEIC")
    write_clip(live / "IMG_0100.MOV", [(_source("people", 2), 1.5)], size=(640, 480))
    with Photoscout.open(library) as core:
        scan, _enriched = core.index([lib])
        reasons = {Path(e["path"]).name: e["reason"] for e in scan.error_files}
        assert scan.new == 4 and reasons.keys() == {"cut.mp4", "empty.mkv"}, scan.as_dict()
        assert reasons["cut.mp4"].startswith(("corrupt: MP4 video", "truncated: MP4 video")), reasons
        status = core.status()
        # trip.mp4 shows three pictures two seconds each: one frame a scene, not one a second
        assert (status["videos"], status["video_frames"], status["stacks"]) == (3, 3 + 1 + 1, 1), status
        trip = core.photo(str(clip))
        assert trip["media_kind"] == "video" and trip["format"] == "MP4" and 5900 <= trip["duration_ms"] <= 6100
        assert trip["taken_at"].startswith("2022-05-01") and trip["taken_at_source"] == "exif"

        printed = core.search('"mongolia chicken"', limit=10, filters=Filters(paths=(str(lib),)))
        assert printed.hits[0].path == str(clip) and printed.hits[0].at_seconds == 2.0, printed.hits[:2]
        assert printed.hits[0].why[0].startswith("at 0:0") and len(printed.hits) == 1
        cars = [h for h in core.search("an airplane", limit=60).hits if h.path == str(clip)]  # at 4 s: a plane
        assert len(cars) == 1 and cars[0].at_seconds is not None and cars[0].at_seconds >= 4.0, cars
        found = {h.path for h in core.search("a person", limit=100).hits}
        assert str(live / "IMG_0100.MOV") not in found and not any("#t=" in p for p in found)
        listed = {p["path"] for p in core.photos(folder=str(lib), limit=50)}
        assert str(clip) in listed and not any("#t=" in p for p in listed)
        assert core.preview(trip["id"], 720).path.is_file()  # the poster
        assert core.original(trip["id"]).media_type == "video/mp4"

        os.replace(clip, lib / "renamed.mp4")  # the clip moves: its row and its frames follow
        again, _ = core.index([lib])
        assert again.moved == 1, again.as_dict()
        moved = core.search('"mongolia chicken"', limit=5, filters=Filters(paths=(str(lib),))).hits[0]
        assert moved.photo_id == trip["id"] and moved.path == str(lib / "renamed.mp4")
        (lib / "renamed.mp4").unlink()
        core.index([lib])
        assert core.status()["video_frames"] == 1 + 1 \
            and not core.search('"mongolia chicken"', limit=5, filters=Filters(paths=(str(lib),))).hits
