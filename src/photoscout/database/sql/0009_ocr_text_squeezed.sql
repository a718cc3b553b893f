-- OCR text as OCR really produces it: split words ("TOT AL"), words inside others ("SUBTOTAL"), odd case and
-- punctuation. Full-text search (tsv) misses those; search also looks for a query's longer words in the text with
-- everything but letters and digits squeezed out (search/engine.py). The embedded PostgreSQL has no pg_trgm, so
-- this is a plain generated column, scanned only where full-text search found too little.
ALTER TABLE photo_text
    ADD COLUMN squeezed text GENERATED ALWAYS AS (regexp_replace(lower(text), '[^[:alnum:]]+', '', 'g')) STORED;
