"""The systemd unit that runs the service at boot as the library owner's user (``photoscout service install``).

``Restart=on-failure`` brings it back after a crash or a kill; ``KillSignal=SIGTERM`` with a stop timeout lets the
unit of work in flight be committed (the embedded PostgreSQL is then stopped cleanly, as its last user leaves).
Check one with ``systemd-analyze verify``."""

from __future__ import annotations

import getpass
import os
import shlex
import sys
from pathlib import Path

from photoscout.common.errors import PhotoscoutError

UNIT_NAME = "photoscout.service"


def executable() -> str:
    """The ``photoscout`` command of this installation (beside the running Python)."""
    found = Path(sys.executable).with_name("photoscout")
    return str(found if found.exists() else Path(sys.argv[0]).absolute())


def render(home: Path, *, mode: str = "serve", user: str | None = None, host: str = "127.0.0.1",
           port: int = 8765, system: bool = True) -> str:
    """The unit's text: ``serve`` (web UI + service) or ``run`` (headless), as ``user`` (a system unit) or as the
    user whose systemd runs it (``system=False``: ``systemctl --user``)."""
    if mode not in ("serve", "run"):
        raise PhotoscoutError(f"a service runs 'serve' or 'run', not {mode!r}")
    command = [executable(), "--home", str(home), mode]
    if mode == "serve":
        command += ["--host", host, "--port", str(port)]
    lines = ["[Unit]", "Description=photoscout photo library service (" + ("web UI and " if mode == "serve" else "")
             + "library watch)", "Documentation=https://github.com/photoscout/photoscout#run-it-as-a-service",
             "After=network-online.target local-fs.target remote-fs.target", "Wants=network-online.target", "",
             "[Service]", "Type=simple"]
    if system:
        lines.append(f"User={user or getpass.getuser()}")
    lines += [f"Environment=PHOTOSCOUT_HOME={home}",
              f"ExecStart={' '.join(shlex.quote(c) for c in command)}",
              "Restart=on-failure", "RestartSec=5", "KillSignal=SIGTERM", "TimeoutStopSec=90",
              "# searches are answered first; background model work is niced by photoscout itself",
              "[Install]", f"WantedBy={'multi-user.target' if system else 'default.target'}", ""]
    return "\n".join(lines)


def default_path(system: bool) -> Path:
    if system:
        return Path("/etc/systemd/system") / UNIT_NAME
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "systemd" / "user" / UNIT_NAME
