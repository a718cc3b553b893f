-- What an embedding model saw in a photo besides its vector (best labels, category scores, text likelihood), plus
-- model-free cues (flat colours, screen-like size); few-shot classes (prototypes the user builds from examples).
DROP TABLE photo_category_scores;

CREATE TABLE photo_analysis (
    photo_id        bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id        integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    labels          jsonb NOT NULL DEFAULT '[]',   -- [[label, probability], ...] best first
    category_scores jsonb NOT NULL DEFAULT '{}',   -- {category: score}
    text_likelihood real NOT NULL DEFAULT 0,
    cues            jsonb NOT NULL DEFAULT '{}',   -- {flat_fraction, saturation, ...}
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_id)
);

-- A photo's outputs per model are "done" even when empty (no face, no text): this records that the model ran.
CREATE TABLE photo_model_runs (
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    outcome    text NOT NULL CHECK (outcome IN ('done', 'skipped', 'failed')),
    detail     text,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_id)
);

CREATE TABLE fewshot_classes (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    model_id    integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    prototype   vector NOT NULL,
    threshold   real NOT NULL,
    example_ids bigint[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, model_id)
);

CREATE TABLE photo_features (
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,
    features   vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_id)
);
