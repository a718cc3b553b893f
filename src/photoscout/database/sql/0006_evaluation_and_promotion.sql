-- Evaluation and promotion.
-- Each embedding version keeps its own categories per photo (computed from its own category scores), so a version
-- under evaluation is measured with its own categories, and promotion switches photos.categories in the same
-- transaction as the registry.
ALTER TABLE photo_analysis ADD COLUMN categories text[];

-- One evaluation (a set file run against one model version) is a session: one eval_runs row per set in the file
-- plus one row for the whole file (set_name = '*overall*').
ALTER TABLE eval_runs ADD COLUMN session text NOT NULL DEFAULT '';
ALTER TABLE eval_runs ADD COLUMN suite text NOT NULL DEFAULT '';      -- the set file's name
ALTER TABLE eval_runs ADD COLUMN coverage real NOT NULL DEFAULT 1;    -- share of photos the version had embedded
CREATE INDEX eval_runs_model_idx ON eval_runs (model_id, set_digest, created_at DESC);
