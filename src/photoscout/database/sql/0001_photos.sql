-- Photos found by scanning, and the scans themselves.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE photos (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path            text NOT NULL,               -- for display and prefix filters; invalid UTF-8 shown as \xNN
    path_raw        bytea NOT NULL UNIQUE,       -- exact file-system bytes of the absolute path
    folder          text NOT NULL,               -- parent directory (display form)
    status          text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'missing', 'error')),
    error           text,                        -- why the file could not be read (status = 'error')
    content_hash    text,                        -- sha256 of the file's bytes, hex
    size_bytes      bigint,
    mtime_ns        bigint,
    format          text,                        -- JPEG, PNG, WEBP, TIFF, GIF, BMP, HEIF
    width           integer,
    height          integer,
    orientation     smallint,                    -- EXIF orientation 1..8
    taken_at        timestamp,                   -- EXIF DateTimeOriginal (camera local time), else file mtime
    taken_at_source text CHECK (taken_at_source IN ('exif', 'file')),
    camera_make     text,
    camera_model    text,
    categories      text[] NOT NULL DEFAULT '{}',
    thumbnail       text,                        -- relative to data/thumbnails
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    missing_since   timestamptz
);
CREATE INDEX photos_content_hash_idx ON photos (content_hash);
CREATE INDEX photos_status_idx ON photos (status);
CREATE INDEX photos_taken_at_idx ON photos (taken_at);
CREATE INDEX photos_path_prefix_idx ON photos (path text_pattern_ops);
CREATE INDEX photos_categories_idx ON photos USING gin (categories);

CREATE TABLE scans (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    roots       text[] NOT NULL,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    counts      jsonb NOT NULL DEFAULT '{}'
);
