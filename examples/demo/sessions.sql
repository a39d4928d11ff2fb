-- PostgreSQL table the sessionizer writes (Flink's JDBC sink does not create tables). One table per output version:
-- sessions_v1 for examples/03 (StreamJob v1), sessions_v2 for the replay of examples/04 (the operator creates it as
-- an empty copy of the active version's table). The primary key is what the sink upserts on
-- (INSERT ... ON CONFLICT (user_id, session_start) DO UPDATE), so a restart that replays records rewrites the same
-- rows instead of adding duplicates. Timestamps are UTC (the job sets 'table.local-time-zone' = 'UTC').
CREATE TABLE IF NOT EXISTS sessions_v1 (
  user_id       text         NOT NULL,
  session_start timestamp(3) NOT NULL,  -- first click
  session_end   timestamp(3) NOT NULL,  -- last click + session gap (Flink's window end, exclusive)
  clicks        bigint       NOT NULL,
  PRIMARY KEY (user_id, session_start)
);
