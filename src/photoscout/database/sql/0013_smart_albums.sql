-- Smart albums (issue #29): a search saved under a name (its query, its filters as the API's parameters, its
-- order). What it holds is worked out when it is looked at, so it stays current as photos arrive and as the active
-- embedding version (and its calibrated cutoff of what matches) changes.
CREATE TABLE smart_albums (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    query       text NOT NULL DEFAULT '',
    filters     jsonb NOT NULL DEFAULT '{}'::jsonb,
    sort        text NOT NULL DEFAULT 'date' CHECK (sort IN ('relevance', 'date', '-date')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
