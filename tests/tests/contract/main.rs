//! The store contract suite, run against every implementation: in-memory,
//! SQLite, PostgreSQL and MySQL/MariaDB. Each test gets a fresh store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerting;
mod credentials;
mod fixtures;
mod leases;
mod maintenance;
mod reads;
mod writes;

/// Declares one `#[tokio::test]` per contract test for a backend.
macro_rules! contract_tests {
    ($backend:expr; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let Some(t) = ordermon_tests::provision($backend).await else {
                    return;
                };
                crate::$module::$test(&t).await;
            }
        )*
    };
}

/// Every contract test, for one backend.
macro_rules! contract_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            contract_tests!($backend;
                writes::decimal_round_trip,
                writes::two_writers_same_version,
                writes::failed_batch_leaves_nothing,
                writes::group_commit_isolates_batches,
                writes::group_commit_updates_many_rows,
                writes::group_commit_stores_text_exactly,
                writes::event_log_replays_order,
                writes::outbox_commit_order_and_mark_once,
                writes::outbox_purge_keeps_the_queue,
                writes::concurrent_writers,
                writes::typed_refusals,
                writes::one_large_batch_in_bulk,
                writes::bulk_order_lookups,
                writes::reservations_write_per_order,
                reads::list_orders_filters_and_pages,
                reads::operator_sql_flips_statuses,
                reads::scan_stamps_move_with_what_the_scan_reads,
                reads::operator_cancels_are_found,
                reads::reference_data_round_trip,
                reads::bulk_state_loads_match_one_user_reads,
                reads::alerts_bars_fills_and_feed,
                alerting::alerting_round_trips,
                alerting::alerting_version_conflicts,
                alerting::notification_claim_race,
                alerting::notification_queue,
                alerting::silence_listing,
                alerting::alert_listing_filters,
                alerting::rule_overrides_and_delete,
                alerting::failed_alerting_batch_leaves_nothing,
                maintenance::high_water_marks_round_trip,
                maintenance::projection_scans_page_and_see_operator_sql,
                maintenance::retention_counts_what_purges_delete,
                maintenance::legacy_reservations_move_to_rows,
                credentials::password_hashes_upsert_for_known_users,
                credentials::sessions_rotate_by_compare_and_swap,
                credentials::sessions_revoke_list_and_purge,
                leases::leases_change_hands_with_a_rising_epoch,
                leases::bad_lease_names_change_nothing,
                leases::one_winner_among_racing_instances,
                leases::fenced_writes_follow_the_lease,
                leases::renew_all_extends_only_the_holders_live_leases,
            );
        }
    };
}

contract_suite!(memory, ordermon_tests::Backend::Memory);
contract_suite!(sqlite, ordermon_tests::Backend::Sqlite);
contract_suite!(postgres, ordermon_tests::Backend::Postgres);
contract_suite!(mysql, ordermon_tests::Backend::MySql);
