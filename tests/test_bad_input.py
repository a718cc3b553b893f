"""Bad files: each is recorded with its reason, the scan carries on, nothing stored is harmed."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from PIL import Image

from photoscout.common.imaging import configure_pillow
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.library import catalog, scanner
from photoscout.library.imagefile import ImageFault, read_image
from tests.conftest import DATASET, copy_sample


def make_bad_folder(lib: Path) -> dict[str, str]:
    """Write bad inputs into ``lib``; return {file name: expected error kind}."""
    lib.mkdir(parents=True, exist_ok=True)
    good = (DATASET / "food" / "apple_pie_00000.jpg").read_bytes()
    (lib / "corrupt.jpg").write_bytes(good[:200] + os.urandom(4000))
    (lib / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (lib / "empty.jpg").write_bytes(b"")
    (lib / "notes.jpg").write_text("this is a text file with an image extension\n")
    (lib / "bomb.png").write_bytes(_bomb_png())
    (lib / "broken-link.jpg").symlink_to(lib / "does-not-exist.jpg")
    (lib / "loop-a.jpg").symlink_to(lib / "loop-b.jpg")
    (lib / "loop-b.jpg").symlink_to(lib / "loop-a.jpg")
    (lib / "sub").mkdir()
    (lib / "sub" / "back-to-top").symlink_to(lib, target_is_directory=True)  # a folder loop
    return {
        "corrupt.jpg": "corrupt",
        "truncated.jpg": "truncated",
        "empty.jpg": "empty",
        "notes.jpg": "not_image",
        "bomb.png": "too_large",
        "broken-link.jpg": "broken_symlink",
        "loop-a.jpg": "symlink_loop",
        "loop-b.jpg": "symlink_loop",
    }


_BOMB_CACHE: list[bytes] = []


def _bomb_png() -> bytes:
    """A 20000x20000 PNG of a few kilobytes: 400 megapixels, over twice Pillow's default limit."""
    if not _BOMB_CACHE:
        import io

        buf = io.BytesIO()
        Image.new("1", (20000, 20000)).save(buf, "PNG")
        _BOMB_CACHE.append(buf.getvalue())
    return _BOMB_CACHE[0]


def test_mixed_folder_keeps_good_photos_and_names_every_bad_file(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    lib = tmp_path / "mixed"
    good = copy_sample(lib / "good", per_category=2)
    expected = make_bad_folder(lib)
    # a good photo whose name is not valid UTF-8
    odd_name = os.fsencode(lib) + b"/caf\xe9-latin1.jpg"
    shutil.copy(DATASET / "food" / "pizza_00000.jpg" if (DATASET / "food" / "pizza_00000.jpg").exists()
                else good[0], odd_name)
    # a file that vanishes between the walk and the reading
    doomed = lib / "vanishing.jpg"
    shutil.copy(good[0], doomed)

    class DeleteWhenReadingStarts:
        def phase(self, name: str, total: int | None) -> None:
            if name == "reading photos":
                doomed.unlink()

        def advance(self, n: int = 1) -> None:
            pass

    summary = scanner.scan(db, settings, [lib], DeleteWhenReadingStarts())
    assert not summary.ok
    assert summary.new == len(good) + 1  # every good photo, the odd name included
    errors = {Path(e["path"]).name: e["reason"] for e in summary.error_files}
    for name, kind in expected.items():
        assert errors[name].startswith(kind + ":"), (name, errors[name])
    assert errors["vanishing.jpg"].startswith("vanished:")
    assert summary.errors == len(expected) + 1
    assert any("back-to-top" in i["path"] and "loop" in i["message"] for i in summary.issues)

    # queryable afterwards
    listed = {Path(r["path"]).name: r["error"] for r in catalog.list_photos(db, which="error", limit=100)}
    assert listed.keys() == errors.keys()
    status = catalog.status(db)
    assert status["photos"] == len(good) + 1 and status["errors"] == len(errors)
    assert status["errors_by_kind"]["symlink_loop"] == 2
    odd = [r for r in catalog.list_photos(db, limit=100) if "latin1" in r["path"]]
    assert odd and odd[0]["path"].endswith("caf\\xe9-latin1.jpg")

    # A re-scan does not re-read unchanged bad files, and the vanished one is no longer listed.
    again = scanner.scan(db, settings, [lib])
    assert again.processed == 0
    assert {Path(r["path"]).name for r in catalog.list_photos(db, which="error", limit=100)} == set(expected)


def test_photo_that_goes_bad_keeps_what_was_stored(db: Database, settings: Settings, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    files = copy_sample(lib, per_category=1)
    scanner.scan(db, settings, [lib])
    victim = files[0]
    before = catalog.get_photo(db, str(victim))
    victim.write_bytes(victim.read_bytes()[:300])  # truncated by a failing disk
    summary = scanner.scan(db, settings, [lib])
    assert summary.errors == 1
    after = catalog.get_photo(db, str(victim))
    assert after["id"] == before["id"] and after["status"] == "error"
    assert after["error"].startswith(("truncated:", "corrupt:"))
    for key in ("content_hash", "width", "height", "thumbnail", "first_seen_at"):
        assert after[key] == before[key]
    assert catalog.status(db)["photos"] == len(files) - 1


def test_unreadable_file_reports_permission(tmp_path: Path) -> None:
    target = tmp_path / "private.jpg"
    shutil.copy(DATASET / "food" / "apple_pie_00000.jpg", target)
    target.chmod(0)
    if os.geteuid() != 0:
        configure_pillow(10**8)
        fault = read_image(os.fsencode(target), str(tmp_path / "thumbs"), 128)
        assert isinstance(fault, ImageFault) and fault.kind == "permission"
        return
    # Root reads anything: read in a forked child that has dropped to an unprivileged user.
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_end)
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            configure_pillow(10**8)
            result = read_image(os.fsencode(target), str(tmp_path / "thumbs"), 128)
            text = f"{result.kind}|{result.message}" if isinstance(result, ImageFault) else "read it"
            os.write(write_end, text.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        answer = fh.read()
    os.waitpid(pid, 0)
    assert answer.startswith("permission|"), answer
