-- One rule for squeezing OCR text, in one place: the stored column and a query's quoted phrases (search/query.py)
-- both call this function. Before, the query side was squeezed in Python, whose idea of a letter or a digit ("½",
-- "²", a final sigma) differs from the database's, so a phrase printed in a photo could go unfound. A final sigma
-- is written as a sigma: lower() leaves "ς" as typed and makes "σ" of a capital, so "οδος" would miss "ΟΔΟΣ".
CREATE FUNCTION ocr_squeeze(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT regexp_replace(translate(lower(t), 'ς', 'σ'), '[^[:alnum:]]+', '', 'g') $$;

ALTER TABLE photo_text DROP COLUMN squeezed;
ALTER TABLE photo_text ADD COLUMN squeezed text GENERATED ALWAYS AS (ocr_squeeze(text)) STORED;
