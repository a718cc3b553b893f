-- Real libraries (issue #28): camera RAW files, videos, the files of one shutter press as one photo (a RAW+JPEG pair,
-- a Live Photo's still and clip: a stack), and what an editor wrote in XMP (a sidecar or embedded): rating, label,
-- keywords, title. Read from the user's files, never written to them.
--
-- A video is searched through its frames: each sampled frame is a row of its own (media_kind 'frame', frame_of the
-- video, frame_ms its moment), so every model (embedding, OCR, categories, faces) runs on it through the same jobs,
-- a new version re-embeds it like a photo, and disk accounting and pruning count it. Search folds a frame's hit
-- into its video ("at 0:12"); the grid lists the video.
ALTER TABLE photos
    ADD COLUMN media_kind       text NOT NULL DEFAULT 'image' CHECK (media_kind IN ('image', 'raw', 'video', 'frame')),
    ADD COLUMN stack_of         bigint REFERENCES photos (id) ON DELETE SET NULL, -- the member that stands for it
    ADD COLUMN frame_of         bigint REFERENCES photos (id) ON DELETE CASCADE,  -- a frame's video
    ADD COLUMN frame_ms         integer,                                          -- a frame's moment in its video
    ADD COLUMN duration_ms      integer,                                          -- a video's length
    ADD COLUMN rating           smallint CHECK (rating BETWEEN -1 AND 5),         -- -1: rejected
    ADD COLUMN label            text,
    ADD COLUMN tags             text[] NOT NULL DEFAULT '{}',
    ADD COLUMN title            text,
    ADD COLUMN sidecar_mtime_ns bigint;                                           -- the XMP sidecar read (NULL: none)
CREATE INDEX photos_stack_of_idx ON photos (stack_of) WHERE stack_of IS NOT NULL;
CREATE INDEX photos_frame_of_idx ON photos (frame_of) WHERE frame_of IS NOT NULL;
CREATE INDEX photos_described_idx ON photos (id) WHERE tags <> '{}' OR title IS NOT NULL;  -- what a keyword search reads
