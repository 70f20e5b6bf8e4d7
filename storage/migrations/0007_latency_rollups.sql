-- Latency rollups: each operation's histograms merged per 5-minute and 1-hour bucket, so latency over
-- hours or days reads one row per operation and bucket instead of one per window (charts of a day,
-- merged percentiles of a week). storage/rollups.cpp maintains them from the latency table like the
-- sample rollups (0006): a bucket records how many windows and calls it merged, and readers use it only
-- while the latency table still agrees, so a late or dropped window makes it stale, never wrong.
-- Percentiles are not stored: readers merge buckets with the windows around them and compute them.
CREATE TABLE latency_rollups (
  operation_id  integer NOT NULL,
  resolution    integer NOT NULL,  -- bucket length in seconds: 300 or 3600
  bucket_start  timestamptz NOT NULL,
  windows       bigint NOT NULL,   -- latency rows merged
  calls         bigint NOT NULL,
  sum_ns        bigint NOT NULL,
  max_ns        bigint NOT NULL,
  slow          bigint NOT NULL,
  tier          smallint NOT NULL,  -- of the newest window in the bucket
  threshold_ns  bigint NOT NULL,    -- of the newest window in the bucket
  scheme        smallint NOT NULL,  -- buckets merge only rows of this scheme (the current one)
  bucket_index  smallint[] NOT NULL,
  bucket_count  bigint[] NOT NULL,
  PRIMARY KEY (operation_id, resolution, bucket_start)
);
