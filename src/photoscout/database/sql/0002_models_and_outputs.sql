-- The model registry and everything models produce. Every output row names the model version that made it.
CREATE TABLE model_registry (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    type          text NOT NULL CHECK (type IN ('detector', 'embedding', 'captioning', 'ocr', 'few_shot')),
    purpose       text NOT NULL DEFAULT 'default',   -- a type with several roles keeps one active per role
    version       text NOT NULL CHECK (version ~ '^v[0-9]+\.[0-9]+\.[0-9]+$'),
    backend       text NOT NULL,
    artifact_path text,                              -- relative to models/
    config        jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'staging' CHECK (status IN ('staging', 'active', 'deprecated', 'disabled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    deprecated_at timestamptz,
    UNIQUE (name, version)
);
CREATE UNIQUE INDEX model_registry_one_active_idx ON model_registry (type, purpose) WHERE status = 'active';

CREATE TABLE model_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id    integer NOT NULL REFERENCES model_registry (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_status_history_model_idx ON model_status_history (model_id, at);

-- Untyped vector columns let versions of different dimensions live side by side; each version gets a partial
-- expression index ((embedding::vector(D)) ... WHERE model_id = N) when its job completes (see the pgvector FAQ).
CREATE TABLE photo_embeddings (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    photo_id          bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id          integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    embedding_model   text NOT NULL,
    embedding_version text NOT NULL,
    embedding         vector,
    embedding_half    halfvec,                   -- used instead of embedding for versions stored as halfvec
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((embedding IS NULL) <> (embedding_half IS NULL)),
    UNIQUE (photo_id, model_id)
);
CREATE INDEX photo_embeddings_model_idx ON photo_embeddings (model_id);

CREATE TABLE detections (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    label      text NOT NULL,
    score      real NOT NULL,
    box        real[] NOT NULL CHECK (array_length(box, 1) = 4),  -- x, y, w, h as fractions of the image
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX detections_photo_model_idx ON detections (photo_id, model_id);

CREATE TABLE region_embeddings (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    detection_id bigint NOT NULL REFERENCES detections (id) ON DELETE CASCADE,
    photo_id     bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id     integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    embedding    vector NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (detection_id, model_id)
);

CREATE TABLE photo_text (
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    text       text NOT NULL,
    confidence real,
    tsv        tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_id)
);
CREATE INDEX photo_text_tsv_idx ON photo_text USING gin (tsv);

CREATE TABLE photo_captions (
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    caption    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_id)
);

CREATE TABLE photo_category_scores (
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    category   text NOT NULL,
    score      real NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_id, category)
);
