-- Restartable background jobs (progress lives here, never only in a worker) and evaluation results.
CREATE TABLE jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL,                 -- embed, detect, ocr, caption, categorize
    model_id     integer REFERENCES model_registry (id) ON DELETE CASCADE,
    scope        jsonb NOT NULL DEFAULT '{}',   -- all / missing-only / sample {count|fraction, seed}
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled')),
    total_items  integer NOT NULL DEFAULT 0,
    done_items   integer NOT NULL DEFAULT 0,
    failed_items integer NOT NULL DEFAULT 0,
    params       jsonb NOT NULL DEFAULT '{}',
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_status_idx ON jobs (status);

CREATE TABLE job_units (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id           bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq              integer NOT NULL,
    photo_ids        bigint[] NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    heartbeat_at     timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    error            text,
    UNIQUE (job_id, seq)
);
CREATE INDEX job_units_claim_idx ON job_units (job_id, state, seq);

CREATE TABLE job_item_failures (
    job_id   bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    photo_id bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    error    text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, photo_id)
);

CREATE TABLE eval_runs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id   integer NOT NULL REFERENCES model_registry (id) ON DELETE CASCADE,
    set_name   text NOT NULL,
    set_digest text NOT NULL,                   -- sha256 of the evaluation set file, to compare like with like
    k          integer NOT NULL,
    metrics    jsonb NOT NULL,                  -- recall@k, precision@k, mAP, nDCG (overall)
    latency    jsonb NOT NULL DEFAULT '{}',     -- search p50/p95 in ms
    resources  jsonb NOT NULL DEFAULT '{}',     -- throughput, peak memory, index and embedding bytes
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE eval_query_results (
    run_id  bigint NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    query   text NOT NULL,
    metrics jsonb NOT NULL,
    PRIMARY KEY (run_id, query)
);
