-- The rate a running chunk's encoder last reported (frames per second and
-- media seconds per second), so every node can answer a chunked job's
-- FPS.DBL and Speed.DBL; cleared when a run starts.
ALTER TABLE chunks ADD COLUMN fps DOUBLE PRECISION;
ALTER TABLE chunks ADD COLUMN speed DOUBLE PRECISION;
