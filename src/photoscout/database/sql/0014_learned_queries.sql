-- Marks that teach (issue #29): the photos a user marked relevant / not relevant for a query, made into a direction
-- in the few-shot model's feature space (search/learned.py); the next search for the query's words ranks by it.
CREATE TABLE learned_queries (
    query_key     text PRIMARY KEY,            -- the query's words, lower case, one space apart
    query         text NOT NULL,               -- as the user wrote it
    model_id      integer NOT NULL REFERENCES model_registry (id) ON DELETE RESTRICT,  -- the few-shot featurizer
    direction     vector NOT NULL,
    relevant      integer NOT NULL,
    not_relevant  integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
