-- The folders the library is made of (every root an index was given), so an always-on service knows what to watch
-- and a scan can tell an unmounted share from deleted photos: a root that held photos and is now gone, empty, or
-- lost more than a set share of them at once is "held back" (nothing is marked missing) until the owner confirms.
CREATE TABLE library_roots (
    path          text PRIMARY KEY,          -- as the user gave it (display form)
    path_raw      bytea NOT NULL,            -- the bytes of that path (any file name)
    added_at      timestamptz NOT NULL DEFAULT now(),
    last_scan_at  timestamptz,
    photos_seen   integer NOT NULL DEFAULT 0, -- photos found under it by its last scan that marked nothing held back
    held_back     text,                      -- why its last scan marked nothing missing (NULL: it looked whole)
    held_back_at  timestamptz,
    would_mark    integer NOT NULL DEFAULT 0  -- photos that scan would have marked missing
);
