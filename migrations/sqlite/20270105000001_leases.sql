-- Leases: a named right (relaying the outbox, owning a user) held by one
-- instance until `expires_ms` (milliseconds since the Unix epoch on the
-- database's clock). `epoch` rises each time the lease changes hands.
CREATE TABLE leases (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
