-- perfwatch schema v8: what a host itself did in each window, shared by all its targets (the per-target
-- rows stay in `windows`). For now: the state of each probe family, so that a family that could not load
-- or attach is told apart from one that measured nothing. Host-wide figures of a window (the sampler's
-- statistics, which `windows` repeats per target today) belong here as further columns.
CREATE TABLE host_windows (
  host_id      integer NOT NULL,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL,
  -- {"cpu_sampler": {"status": "failed", "detail": "perf_event_open ...: Invalid argument"}, ...}, a key
  -- per family (common/probe_state.h); status is off, running, degraded, failed or unsupported.
  probes       jsonb NOT NULL,
  PRIMARY KEY (host_id, window_start)
) PARTITION BY RANGE (window_start);
