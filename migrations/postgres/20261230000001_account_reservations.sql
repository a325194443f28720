-- One row per open order's reservation, apart from the account row, so that
-- writing an account costs the same however many orders it has open: an
-- order's change writes its own reservation row and never the others'. The
-- account's `data` JSON no longer carries them.
CREATE TABLE account_reservations (
    order_id UUID PRIMARY KEY,
    user_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
    data     TEXT NOT NULL
);
CREATE INDEX account_reservations_user ON account_reservations (user_id, order_id);

-- Existing accounts: their reservations move out of the JSON.
INSERT INTO account_reservations (order_id, user_id, data)
SELECT r.key::uuid, a.user_id, r.value::text
FROM accounts a, jsonb_each(a.data::jsonb -> 'reservations') r
WHERE jsonb_typeof(a.data::jsonb -> 'reservations') = 'object';
UPDATE accounts SET data = (data::jsonb - 'reservations')::text
WHERE data LIKE '%"reservations"%';
