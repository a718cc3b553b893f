-- Vectors stay in their row up to a full page instead of moving to TOAST above 2 KB. A 1,384-d halfvec (2.8 KB,
-- conse v3) read from TOAST cost a search 2x its time (each distance fetched the vector's chunks); in line it is
-- one page read. Larger rows (a 4,096-d float vector: 16 KB) are still moved out of line, as before.
ALTER TABLE photo_embeddings SET (toast_tuple_target = 8160);
ALTER TABLE photo_text_embeddings SET (toast_tuple_target = 8160);
-- Rows written before: rewritten from their text form (a fresh value, not the old TOAST pointer) so they move back
-- in line. Exact: the text form of a vector or halfvec reads back to the same numbers.
UPDATE photo_embeddings SET embedding_half = embedding_half::text::halfvec
 WHERE embedding_half IS NOT NULL AND pg_column_size(embedding_half) BETWEEN 1800 AND 7000;
UPDATE photo_embeddings SET embedding = embedding::text::vector
 WHERE embedding IS NOT NULL AND pg_column_size(embedding) BETWEEN 1800 AND 7000;
UPDATE photo_text_embeddings SET embedding = embedding::text::halfvec
 WHERE pg_column_size(embedding) BETWEEN 1800 AND 7000;
