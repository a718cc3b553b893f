"""Settings: one typed class; environment variables (PHOTOSCOUT_*) override ``<home>/config.toml``.

The home directory holds everything photoscout writes::

    <home>/config.toml      settings (optional)
    <home>/data/            database (embedded PostgreSQL), thumbnails, logs, decision log
    <home>/models/          model artifacts, one folder per name/version
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from photoscout.common.errors import EnvironmentProblem, PhotoscoutError

CONFIG_FILE_NAME = "config.toml"
# What a NAS owner sets for the always-on service (the service page and `photoscout config set` show and change them).
SERVICE_SETTINGS = ("watch", "rescan_minutes", "full_scan_at", "quiet_hours", "threads", "scan_workers",
                    "background_nice", "settle_seconds", "missing_guard_share", "missing_guard_min")


def default_home() -> Path:
    """``$PHOTOSCOUT_HOME``, else ``$XDG_DATA_HOME/photoscout``, else ``~/.local/share/photoscout``."""
    env = os.environ.get("PHOTOSCOUT_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "photoscout"


class Settings(BaseSettings):
    """All of photoscout's settings. Every field can be set in ``config.toml`` or as ``PHOTOSCOUT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PHOTOSCOUT_", extra="forbid", validate_default=True)

    home: Path = Field(default_factory=default_home, description="Directory holding data/ and models/.")
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL with pgvector >= 0.7 (e.g. on a NAS). Empty: the embedded server under data/.",
    )
    embedded_port: int | None = Field(
        default=None, ge=1024, le=65535,
        description="Also listen on 127.0.0.1:PORT (embedded server only); default: Unix socket only.",
    )
    embedded_keep_running: bool = Field(
        default=False, description="Leave the embedded server running after a command ends (faster next start)."
    )
    embedded_shared_buffers: str = Field(
        default="auto", pattern=r"^(auto|[1-9]\d*(kB|MB|GB))$",
        description="Memory the embedded server keeps pages in (e.g. '2GB'; applies from its next start); auto: a "
                    "quarter of the machine's (or container's) memory, 128MB to 8GB.")
    pool_max_size: int = Field(default=8, ge=2, description="Largest number of pooled database connections (a scan "
                                                          "holds one for its lock and writes with another).")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where models run (auto: a CUDA GPU "
                                                                               "when present, else the CPU).")
    ocr: Literal["auto", "always", "off"] = Field(
        default="auto", description="OCR on photos that probably show text (auto), on every photo (always), or not "
                                    "when indexing (off; a job still runs it when asked).")
    vector_storage: Literal["halfvec", "vector"] = Field(
        default="halfvec", description="How embedding versions installed or registered from now on store their "
                                       "vectors (unless a version's config says): half precision (half the bytes, "
                                       "same recall) or full precision.")
    batch_size: int = Field(default=32, ge=1, description="Images per model batch.")
    threads: int = Field(default=0, ge=0, description="Inference threads; 0 = all cores.")
    scan_workers: int = Field(default=0, ge=0, description="Processes that read images during a scan; 0 = all cores.")
    scan_batch_size: int = Field(default=64, ge=1, description="Photos written to the database per transaction.")
    thumbnail_size: int = Field(default=384, ge=32, le=2048,
                                description="Longest side of thumbnails in pixels (models read them if large enough).")
    broker_url: str | None = Field(
        default=None, description="Celery broker for distributed jobs (redis://... or amqp://...); empty: local only."
    )
    job_unit_size: int = Field(default=32, ge=1, le=1000, description="Photos per unit of work in a job.")
    lease_seconds: int = Field(default=60, ge=5, description="A unit not heartbeated for this long is reclaimed.")
    unit_max_attempts: int = Field(
        default=3, ge=1, le=100, description="A job unit taken this many times without completing (its worker died or "
                                             "it failed) is split into single photos; a single photo is then "
                                             "recorded as failed and the job goes on.")
    path_map: list[str] = Field(
        default_factory=list,
        description="Photo path prefixes to rewrite on this machine, 'FROM=TO' (e.g. a NAS share mounted elsewhere).",
    )
    video_frame_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="A video is searched through one frame every this many seconds (a "
                                                "search hit says at which second).")
    video_max_frames: int = Field(
        default=24, ge=1, le=1000, description="At most this many frames of one video (a longer clip: spread "
                                               "evenly over it).")
    settle_seconds: float = Field(
        default=5.0, ge=0, le=3600, description="A file modified less than this many seconds ago that cannot be "
                                                "decoded yet (a copy in flight) is taken by a later scan, not "
                                                "recorded as corrupt.")
    missing_guard_share: float = Field(
        default=0.5, gt=0, le=1, description="A scan that finds more than this share of a root's photos gone at "
                                             "once (an unmounted share?) marks none missing until confirmed.")
    missing_guard_min: int = Field(
        default=10, ge=1, description="The share rule applies from this many photos gone (a root that is gone "
                                      "or empty is held back whatever its size).")
    watch: bool = Field(default=True, description="serve and run watch the library's roots for new, changed, moved "
                                                  "and deleted photos (inotify where the file system sends events).")
    rescan_minutes: float = Field(
        default=60, ge=0, description="serve and run rescan every root this often, events or not (network mounts "
                                      "often send none); 0: never.")
    full_scan_at: str = Field(
        default="03:00", pattern=r"^$|^([01]\d|2[0-3]):[0-5]\d$",
        description="Local time of the nightly full pass (thumbnails repaired, every photo's missing model outputs "
                    "computed); empty: none.")
    quiet_hours: str = Field(
        default="", pattern=r"^$|^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
        description="'HH:MM-HH:MM' (local time): background model work waits during this window; scans and "
                    "searches go on. Empty: none.")
    background_nice: int = Field(
        default=10, ge=0, le=19, description="Niceness of the service's background work (scans, model jobs): "
                                             "searches keep the CPU first.")
    upgrade_backups: int = Field(
        default=3, ge=0, le=100, description="Before a newer photoscout migrates an existing library it dumps the "
                                             "database under data/backups/; this many are kept (0: no dump).")
    max_image_pixels: int = Field(
        default=178_956_970, ge=1, description="Images with more pixels are refused as decompression bombs."
    )

    promotion_max_drop: dict[str, float] = Field(
        default_factory=lambda: {"map": 0.02, "ndcg": 0.02, "precision": 0.05, "recall": 0.05},
        description="Promotion gate: the largest drop of each metric (precision, recall, map, ndcg) allowed on any "
                    "evaluation set against the active model.",
    )
    promotion_max_latency_ratio: float = Field(
        default=1.5, gt=0, description="Promotion gate: the largest search p95 allowed, as a multiple of the active "
                                       "model's (differences under 10 ms never count).",
    )

    @field_validator("promotion_max_drop", mode="after")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"precision", "recall", "map", "ndcg"}
        if unknown:
            raise ValueError(f"promotion_max_drop: unknown metric(s) {', '.join(sorted(unknown))}")
        return value

    @field_validator("path_map", mode="after")
    @classmethod
    def _path_rules(cls, value: list[str]) -> list[str]:
        bad = [rule for rule in value if not rule.partition("=")[0] or not rule.partition("=")[2]]
        if bad:
            raise ValueError(f"path_map: rules look like 'FROM=TO', not {', '.join(map(repr, bad))}")
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("database_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # config.toml values are passed in by load_settings() below the environment.
        return (init_settings, env_settings)

    # Paths under home -------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_FILE_NAME

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def thumbnails_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def uses_embedded_db(self) -> bool:
        return self.database_url is None

    def ensure_dirs(self) -> None:
        """Create the home's folders. The home is private to its owner (0700): it holds the library's database
        and the password to it. Folders outside the home are never touched beyond creating missing parents."""
        try:
            if not self.home.exists():
                self.home.mkdir(parents=True, mode=0o700)
            if self.home.stat().st_mode & 0o077:
                self.home.chmod(0o700)
            for d in (self.data_dir, self.models_dir, self.thumbnails_dir, self.logs_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot set up the photoscout home {self.home}: {exc.strerror or exc}"
                                     + (f" ({exc.filename})" if exc.filename else "")) from exc

    def map_path(self, path_raw: bytes) -> bytes:
        """A stored photo path as this machine sees it (``path_map``)."""
        for rule in self.path_map:
            src, sep, dst = rule.partition("=")
            if sep and path_raw.startswith(os.fsencode(src)):
                return os.fsencode(dst) + path_raw[len(os.fsencode(src)):]
        return path_raw

    def effective_workers(self) -> int:
        return self.scan_workers or os.cpu_count() or 1


def hide_password(url: str) -> str:
    """A URL safe to show: its password (``scheme://user:password@host``) replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def load_settings(home: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings: explicit arguments > ``PHOTOSCOUT_*`` environment > ``<home>/config.toml`` > defaults."""
    import tomllib

    home_path = Path(home).expanduser() if home is not None else default_home()
    if home_path.exists() and not home_path.is_dir():
        raise PhotoscoutError(f"{home_path}: the photoscout home must be a folder, and this is a file")
    file_values: dict[str, Any] = {}
    cfg = home_path / CONFIG_FILE_NAME
    if cfg.exists():
        if not cfg.is_file():
            raise PhotoscoutError(f"{cfg}: the settings file is a folder, not a file")
        try:
            file_values = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PhotoscoutError(f"{cfg}: not valid TOML ({exc})") from exc
        except OSError as exc:
            raise EnvironmentProblem(f"{cfg}: cannot read the settings file ({exc.strerror})") from exc
        unknown = set(file_values) - set(Settings.model_fields)
        if unknown:
            raise PhotoscoutError(f"{cfg}: unknown setting(s) {', '.join(sorted(unknown))}")
    # Values from the file apply only where the environment does not set them.
    merged = {k: v for k, v in file_values.items() if f"PHOTOSCOUT_{k.upper()}" not in os.environ}
    merged.update(overrides)
    merged["home"] = home_path
    try:
        return Settings(**merged)
    except ValueError as exc:
        raise PhotoscoutError(f"invalid settings: {exc}") from exc


def save_settings(settings: Settings, values: dict[str, Any]) -> Settings:
    """Write ``values`` into the home's ``config.toml`` (kept as it was for every other setting) and return the
    settings they make. Checked before anything is written: an unknown name or a bad value changes nothing, and a
    setting an environment variable overrides is refused (the file would not apply)."""
    import tomllib

    import tomli_w

    unknown = sorted(set(values) - set(Settings.model_fields) | ({"home"} & set(values)))
    if unknown:
        raise PhotoscoutError(f"no setting {', '.join(unknown)} (see 'photoscout config')")
    shadowed = [k for k in values if f"PHOTOSCOUT_{k.upper()}" in os.environ]
    if shadowed:
        raise PhotoscoutError(f"{', '.join(shadowed)}: set by the environment (PHOTOSCOUT_{shadowed[0].upper()}); "
                              "change it there")
    cfg = settings.config_file
    try:
        current = tomllib.loads(cfg.read_text(encoding="utf-8")) if cfg.is_file() else {}
    except (OSError, ValueError) as exc:
        raise PhotoscoutError(f"{cfg}: cannot read the settings file ({exc})") from exc
    merged = {**current, **values}
    try:
        fresh = Settings(**{**settings.model_dump(), **values})
    except ValueError as exc:
        raise PhotoscoutError(f"invalid settings: {exc}") from exc
    kept = {k: v for k, v in fresh.model_dump(mode="json").items() if k in merged and v is not None}
    tmp = cfg.with_name(f".{cfg.name}.{os.getpid()}")
    try:
        settings.ensure_dirs()
        tmp.write_text(tomli_w.dumps(kept), encoding="utf-8")
        os.replace(tmp, cfg)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EnvironmentProblem(f"cannot write {cfg}: {exc.strerror or exc}") from exc
    return fresh
