-- The version of the category rules (analysis/categories.py RULES_VERSION) the stored categories were computed
-- with. When the rules change, the next index recomputes every photo's categories from its stored outputs
-- (version 1: the rules before documents got their kinds, receipts and pages). A library without photos has no
-- row: its first index records the rules it categorised with, and recomputes nothing.
CREATE TABLE category_rules (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version integer NOT NULL
);
INSERT INTO category_rules (version) SELECT 1 WHERE EXISTS (SELECT 1 FROM photos);
