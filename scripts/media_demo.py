"""Make a folder that holds what a real library holds, from photos-dev (no camera file ships with the test data):

* DNGs with and without an embedded preview (tests/media_files.py writes them with tifffile);
* a RAW+JPEG pair (IMG_0042.dng + IMG_0042.JPG) and a Live Photo (IMG_0100.HEIC + IMG_0100.MOV);
* two videos: trip.mp4 shows a receipt with "MONGOLIA CHICKEN" printed on it from 0:02 to 0:04;
* XMP: a sidecar (rating 4, tags holiday + Beach), a sidecar of a RAW, XMP embedded in a JPEG;
* and, in a folder of its own beside it, truncated copies of each kind.

Usage (from the repository root, after ``scripts/setup.sh --test``):

    .venv/bin/python scripts/media_demo.py DIR
    .venv/bin/photoscout index DIR/library          # exit 0
    .venv/bin/photoscout status
    .venv/bin/photoscout search '"mongolia chicken"'  # trip.mp4, at 0:02
    .venv/bin/photoscout search 'tag:holiday rating>=4'
    .venv/bin/photoscout index DIR/truncated        # each bad copy with its reason (exit 1)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.media_files import jpeg_with_xmp, truncated_copy, write_clip, write_dng, xmp_packet  # noqa: E402

DATASET = REPO.parent / "shared" / "datasets" / "photos-dev"


def _source(category: str, n: int = 0) -> Path:
    return sorted((DATASET / category).glob("*.jpg"))[n]


def make(root: Path) -> dict[str, Path]:
    lib, bad = root / "library", root / "truncated"
    for folder in (lib, bad):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    made = {
        "dng_preview": write_dng(lib / "DSC_0001.dng", _source("vehicles", 3), preview=True, width=2000),
        "dng_plain": write_dng(lib / "DSC_0002.dng", _source("animals", 5), preview=False, width=1200),
        "pair_raw": write_dng(lib / "IMG_0042.dng", _source("food", 1), preview=True, width=1600),
        "pair_jpg": Path(shutil.copy2(_source("food", 1), lib / "IMG_0042.JPG")),
    }
    (lib / "IMG_0042.dng.xmp").write_text(xmp_packet(rating=3, tags=("dinner",)))
    from pillow_heif import register_heif_opener

    register_heif_opener()  # Pillow writes HEIC through pillow-heif
    with Image.open(_source("people", 2)) as im:
        im.convert("RGB").save(lib / "IMG_0100.HEIC")
    made["live_still"] = lib / "IMG_0100.HEIC"
    made["live_clip"] = write_clip(lib / "IMG_0100.MOV", [(_source("people", 2), 1.5)], size=(640, 480))
    receipt = DATASET / "documents" / "receipt_00715.jpg"  # "MONGOLIA CHICKEN" is printed on it
    made["trip"] = write_clip(lib / "trip.mp4", [(_source("food", 5), 2.0), (receipt, 2.0),
                                                 (_source("vehicles", 6), 2.0)], size=(1280, 960))
    made["dog_clip"] = write_clip(lib / "dog.mov", [(_source("animals", 6), 3.0)], size=(640, 480))
    made["beach"] = Path(shutil.copy2(_source("animals", 3), lib / "DSC_0003.jpg"))
    (lib / "DSC_0003.xmp").write_text(xmp_packet(rating=4, label="Red", tags=("holiday", "Beach"),
                                                 title="Dog on the beach"))
    made["embedded"] = jpeg_with_xmp(_source("animals", 4), lib / "DSC_0004.jpg",
                                     xmp_packet(rating=1, tags=("holiday",)))
    for key in ("dng_preview", "dng_plain", "trip", "live_still", "pair_jpg"):
        truncated_copy(made[key], bad / f"cut_{made[key].name}", keep=0.4)
    return made


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    out = Path(sys.argv[1]).resolve()
    for name, path in make(out).items():
        print(f"{name:12} {path}")
    print(f"truncated copies in {out / 'truncated'}")
