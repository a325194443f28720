-- One row per open order's reservation, apart from the account row, so that
-- writing an account costs the same however many orders it has open: an
-- order's change writes its own reservation row and never the others'. The
-- account's `data` JSON no longer carries them. (JSON_TABLE: MySQL 8,
-- MariaDB 10.6+.)
CREATE TABLE account_reservations (
    order_id CHAR(36) NOT NULL PRIMARY KEY,
    user_id  VARCHAR(64) NOT NULL,
    data     TEXT NOT NULL,
    INDEX account_reservations_user (user_id, order_id),
    CONSTRAINT account_reservations_account FOREIGN KEY (user_id)
        REFERENCES accounts (user_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Existing accounts: their reservations move out of the JSON.
INSERT INTO account_reservations (order_id, user_id, data)
SELECT k.id, a.user_id,
       JSON_EXTRACT(a.data, CONCAT('$.reservations."', k.id, '"'))
FROM accounts a,
     JSON_TABLE(JSON_KEYS(a.data, '$.reservations'), '$[*]'
                COLUMNS (id VARCHAR(36) PATH '$')) k
WHERE JSON_TYPE(JSON_EXTRACT(a.data, '$.reservations')) = 'OBJECT';
UPDATE accounts SET data = JSON_REMOVE(data, '$.reservations')
WHERE data LIKE '%"reservations"%';
