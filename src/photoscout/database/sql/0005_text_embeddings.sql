-- OCR text embedded by an embedding model version's text side (the same space as its queries), so search can
-- match the meaning of the words in a photo, not only the words themselves.
CREATE TABLE photo_text_embeddings (
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,  -- the embedding version
    embedding  halfvec NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_id)
);
