-- Disabled upstream keys are probed on a schedule. The next probe time lives in the row so that
-- all instances share one schedule: whoever claims a due key (FOR UPDATE SKIP LOCKED) probes it.
ALTER TABLE upstream_keys ADD COLUMN next_probe_at timestamptz;
CREATE INDEX upstream_keys_probe_due ON upstream_keys (next_probe_at) WHERE status = 'disabled';
