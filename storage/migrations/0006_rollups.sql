-- Rollups: samples pre-summed per target, stack and time bucket (5 minutes and 1 hour), so a profile
-- over hours or days reads a few rows per stack instead of one per window. storage/rollups.cpp
-- maintains them from the samples table; a bucket records how many windows (and samples) it summed,
-- and readers use it only while the windows table still agrees, so a window that arrives late (from
-- the spool) or is dropped by retention makes the bucket stale, never wrong.
CREATE TABLE rollup_buckets (
  target_id    integer NOT NULL,
  resolution   integer NOT NULL,  -- bucket length in seconds: 300 or 3600
  bucket_start timestamptz NOT NULL,
  windows      bigint NOT NULL,
  samples      bigint NOT NULL,
  PRIMARY KEY (target_id, resolution, bucket_start)
);

CREATE TABLE rollup_samples (
  target_id    integer NOT NULL,
  resolution   integer NOT NULL,
  bucket_start timestamptz NOT NULL,
  stack_id     bigint NOT NULL,
  count        bigint NOT NULL,
  PRIMARY KEY (target_id, resolution, bucket_start, stack_id)
);
