-- Strategy ids are unique per user, not globally: two users may each have a
-- strategy `mr-1`, and one cannot learn that the other's exists.
ALTER TABLE strategies DROP PRIMARY KEY, ADD PRIMARY KEY (user_id, id);
-- The primary key serves the per-user listing now.
DROP INDEX strategies_user ON strategies;
