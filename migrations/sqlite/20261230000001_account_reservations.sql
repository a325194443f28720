-- One row per open order's reservation, apart from the account row, so that
-- writing an account costs the same however many orders it has open: an
-- order's change writes its own reservation row and never the others'. The
-- account's `data` JSON no longer carries them.
CREATE TABLE account_reservations (
    order_id TEXT PRIMARY KEY NOT NULL,
    user_id  TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
    data     TEXT NOT NULL
) STRICT;
CREATE INDEX account_reservations_user ON account_reservations (user_id, order_id);

-- Existing accounts: their reservations move out of the JSON.
INSERT INTO account_reservations (order_id, user_id, data)
SELECT r.key, a.user_id, r.value
FROM accounts a, json_each(a.data, '$.reservations') r
WHERE json_type(a.data, '$.reservations') = 'object';
UPDATE accounts SET data = json_remove(data, '$.reservations')
WHERE data LIKE '%"reservations"%';
