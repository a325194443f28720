-- Leases: a named right (relaying the outbox, owning a user) held by one
-- instance until `expires_ms` (milliseconds since the Unix epoch on the
-- database's clock). `epoch` rises each time the lease changes hands.
CREATE TABLE leases (
    name VARCHAR(200) NOT NULL PRIMARY KEY,
    holder VARCHAR(200) NOT NULL,
    epoch BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
