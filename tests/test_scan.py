"""Scanning a folder into the photos table: incremental, moves, missing files, formats, EXIF."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from photoscout.config import Settings
from photoscout.database import Database
from photoscout.library import catalog, scanner
from tests.conftest import copy_sample


def _count(db: Database, status: str = "ok") -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM photos WHERE status = %s", (status,)).fetchone()
    assert row is not None
    return int(row[0])


def _photo(db: Database, path: Path) -> dict:
    return catalog.get_photo(db, str(path))


@pytest.mark.parametrize("backend", ["embedded", "external"], indirect=True)
def test_scan_is_incremental_and_follows_moves(backend: str, db: Database, settings: Settings, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    files = copy_sample(lib, per_category=3)
    first = scanner.scan(db, settings, [lib])
    assert first.new == len(files) == first.found
    assert first.errors == 0 and first.ok
    assert _count(db) == len(files)
    for f in files:  # thumbnails exist, keyed by content
        assert (settings.thumbnails_dir / _photo(db, f)["thumbnail"]).is_file()

    second = scanner.scan(db, settings, [lib])
    assert (second.unchanged, second.new, second.updated, second.processed) == (len(files), 0, 0, 0)

    # A moved and renamed file keeps its identity (id, hence everything computed for it).
    moved_from = files[0]
    before = _photo(db, moved_from)
    moved_to = lib / "elsewhere" / "renamed.jpg"
    moved_to.parent.mkdir()
    shutil.move(moved_from, moved_to)
    # A deleted file is marked missing, not purged.
    deleted = files[1]
    deleted_id = _photo(db, deleted)["id"]
    deleted.unlink()
    # An edited file is re-read.
    edited = files[2]
    with Image.open(edited) as im:
        im.convert("RGB").rotate(90, expand=True).save(edited, "JPEG")
    third = scanner.scan(db, settings, [lib])
    assert (third.moved, third.missing, third.updated, third.new) == (1, 1, 1, 0)
    after = _photo(db, moved_to)
    assert after["id"] == before["id"] and after["content_hash"] == before["content_hash"]
    assert after["status"] == "ok"
    missing = catalog.get_photo(db, deleted_id)
    assert missing["status"] == "missing" and missing["missing_since"]
    assert _photo(db, edited)["content_hash"] != before["content_hash"]
    assert _count(db) == len(files) - 1
    with db.connection() as conn:
        dupes = conn.execute("SELECT count(*) FROM photos GROUP BY path_raw HAVING count(*) > 1").fetchall()
    assert dupes == []

    # Other bytes at the deleted photo's path: a new photo there; the missing one stays missing (kept).
    with Image.open(moved_to) as im:
        im.save(deleted, "JPEG", quality=50)
    fourth = scanner.scan(db, settings, [lib])
    assert (fourth.new, fourth.updated) == (0, 1)  # same path as the stored (missing) row: that row is reused
    assert catalog.get_photo(db, deleted_id)["status"] == "ok"


def test_missing_photo_that_returns_is_restored(db: Database, settings: Settings, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    files = copy_sample(lib, per_category=1)
    scanner.scan(db, settings, [lib])
    hidden = tmp_path / "away.jpg"
    shutil.move(files[0], hidden)
    assert scanner.scan(db, settings, [lib]).missing == 1
    shutil.move(hidden, files[0])  # same bytes, same mtime (move keeps it)
    back = scanner.scan(db, settings, [lib])
    assert back.restored == 1 and back.processed == 0
    assert _photo(db, files[0])["status"] == "ok"


def test_all_supported_formats_and_exif(db: Database, settings: Settings, tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    lib = tmp_path / "formats"
    lib.mkdir()
    base = Image.new("RGB", (320, 200), (200, 40, 40))
    for x in range(0, 320, 20):
        base.paste((20, 20, 200), (x, 0, x + 10, 200))
    exif = Image.Exif()
    exif[0x010F] = "Acme"
    exif[0x0110] = "Shooter 3000"
    exif[0x0112] = 6  # rotate 90 CW to display
    exif.get_ifd(0x8769)[0x9003] = "2019:07:14 16:05:09"
    base.save(lib / "camera.jpg", "JPEG", exif=exif)
    base.save(lib / "plain.png", "PNG")
    base.save(lib / "web.webp", "WEBP")
    base.save(lib / "scan.tiff", "TIFF")
    base.convert("P").save(lib / "anim.gif", "GIF")
    base.save(lib / "old.bmp", "BMP")
    base.save(lib / "phone.heic", "HEIF")
    base.save(lib / "wrong-extension.jpg", "PNG")  # mislabelled but a fine image
    summary = scanner.scan(db, settings, [lib])
    assert summary.errors == 0 and summary.new == 8
    formats = {Path(r["path"]).name: r["format"] for r in catalog.list_photos(db)}
    assert formats == {"camera.jpg": "JPEG", "plain.png": "PNG", "web.webp": "WEBP", "scan.tiff": "TIFF",
                       "anim.gif": "GIF", "old.bmp": "BMP", "phone.heic": "HEIF", "wrong-extension.jpg": "PNG"}
    cam = _photo(db, lib / "camera.jpg")
    assert cam["taken_at"] == datetime(2019, 7, 14, 16, 5, 9).isoformat()
    assert cam["taken_at_source"] == "exif"
    assert (cam["camera_make"], cam["camera_model"], cam["orientation"]) == ("Acme", "Shooter 3000", 6)
    assert (cam["width"], cam["height"]) == (320, 200)
    with Image.open(settings.thumbnails_dir / cam["thumbnail"]) as thumb:
        assert thumb.width < thumb.height  # the thumbnail is shown upright
    png = _photo(db, lib / "plain.png")
    assert png["taken_at_source"] == "file"
    mtime = datetime.fromtimestamp(os.stat(lib / "plain.png").st_mtime)
    assert abs((datetime.fromisoformat(png["taken_at"]) - mtime).total_seconds()) < 1


def test_data_dir_inside_scanned_folder_is_skipped(tmp_path: Path, pg_server: object, db: Database,
                                                    settings: Settings) -> None:
    # Thumbnails live under data/; scanning the home itself must not index them.
    copy_sample(settings.home / "photos", per_category=1)
    first = scanner.scan(db, settings, [settings.home])
    assert first.new == 8
    again = scanner.scan(db, settings, [settings.home])
    assert again.found == 8 and again.new == 0


def test_unknown_root_is_a_clear_error(db: Database, settings: Settings, tmp_path: Path) -> None:
    from photoscout.common.errors import PhotoscoutError

    with pytest.raises(PhotoscoutError, match="no such file or folder"):
        scanner.scan(db, settings, [tmp_path / "nope"])
