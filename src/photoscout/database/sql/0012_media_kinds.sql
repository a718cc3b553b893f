-- Real libraries (issue #28): camera RAW files, the files of one shutter press as one photo (a RAW+JPEG pair, a Live
-- Photo's still and clip: a stack), and what an editor wrote in XMP (a sidecar or embedded): rating, label, keywords,
-- title. Read from the user's files, never written to them.
ALTER TABLE photos
    ADD COLUMN media_kind       text NOT NULL DEFAULT 'image' CHECK (media_kind IN ('image', 'raw', 'video')),
    ADD COLUMN stack_of         bigint REFERENCES photos (id) ON DELETE SET NULL, -- the member that stands for it
    ADD COLUMN rating           smallint CHECK (rating BETWEEN -1 AND 5),         -- -1: rejected
    ADD COLUMN label            text,
    ADD COLUMN tags             text[] NOT NULL DEFAULT '{}',
    ADD COLUMN title            text,
    ADD COLUMN sidecar_mtime_ns bigint;                                           -- the XMP sidecar read (NULL: none)
CREATE INDEX photos_stack_of_idx ON photos (stack_of) WHERE stack_of IS NOT NULL;
CREATE INDEX photos_described_idx ON photos (id) WHERE tags <> '{}' OR title IS NOT NULL;  -- the few a keyword search reads
