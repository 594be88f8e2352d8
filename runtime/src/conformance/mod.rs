//! The storage conformance suite: the tests every storage must pass, run
//! through the public API. A backend in this repository or outside it runs
//! them all with one macro call in an integration test:
//!
//! ```ignore
//! pbpersist::conformance_suite!(my_backend, {
//!     let storage = MyStorage::new(/* a fresh, empty database */);
//!     pbpersist::conformance::Backend::new(move |options| {
//!         pbpersist::Database::with_storage_and_options(storage.clone(), options).unwrap()
//!     })
//! });
//! ```
//!
//! A [`Backend`] opens a new [`Database`] over the same stored data each time,
//! as a restarted program or another process would; tests open several at
//! once. [`commits`] tests the commit contract on the storage itself, below
//! the database, and [`oids`] the edges of oids and tids there. [`read_only`]
//! holds the tests for storages that can also open their data read-only.
//! `docs/storage.md` states what each storage method must guarantee; this
//! suite checks it.
#![allow(missing_docs, clippy::unit_arg)] // Test functions; `Ok(assert_eq!(..))` keeps transactions short.

pub mod commits;
pub mod history;
pub mod indexes;
pub mod objects;
pub mod oids;
pub mod read_only;
pub mod transactions;
pub mod trees;
pub mod types;

use crate::{Database, Options};
use types::{Contact, Tower};

/// Opens databases over one backend's stored data.
pub struct Backend {
    open: Box<dyn Fn(Options) -> Database>,
    light: bool,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend whose databases `open` makes, each over the same data.
    pub fn new(open: impl Fn(Options) -> Database + 'static) -> Self {
        Backend { open: Box::new(open), light: false }
    }

    /// Runs the suite's concurrent workloads (threads committing to one
    /// object or one tree thousands of times) at a tenth of their size, for
    /// a backend whose every commit is slow, such as an S3 server emulated
    /// in Python: the checks stay the same, only the counts shrink.
    pub fn lighter(mut self) -> Self {
        self.light = true;
        self
    }

    /// `n`, or a tenth of it (at least 1) for a [lighter](Self::lighter) backend.
    pub fn scaled(&self, n: usize) -> usize {
        if self.light { (n / 10).max(1) } else { n }
    }

    /// A database with the default options.
    pub fn open(&self) -> Database {
        (self.open)(Options::default())
    }

    /// A database with these options.
    pub fn open_with(&self, options: Options) -> Database {
        (self.open)(options)
    }
}

/// A tower with a name and a size.
pub fn tower(name: &str, width: f32, height: f32) -> Tower {
    let mut t = Tower::new();
    t.set_name(name);
    t.set_width(width);
    t.set_height(height);
    t
}

/// A contact with a name.
pub fn contact(name: &str) -> Contact {
    let mut c = Contact::new();
    c.set_name(name);
    c
}

/// Calls `$callback!(<args>; <every suite test as module::function>)`, so
/// each test harness can turn the one list into tests its own way (the
/// callback must be in scope where this is called).
#[macro_export]
macro_rules! conformance_tests {
    ($callback:ident ! ($($args:tt)*)) => {
        $callback! {$($args)*;
                objects::store_reopen_and_follow_references,
                objects::identity_one_object_per_oid,
                objects::references_load_lazily,
                objects::prefetch_loads_many_objects_in_one_call,
                objects::prefetch_refs_loads_the_graph_below_an_object,
                objects::prefetch_refs_follows_a_chain,
                objects::gc_removes_exactly_the_unreachable_objects,
                objects::required_field_unset_fails_commit_and_writes_nothing,
                objects::change_tracking_through_transactions,
                objects::errors_abort_and_discard_changes,
                objects::wrong_type_is_a_typed_error,
                objects::get_ref_borrows_the_cached_object,
                objects::copies_held_by_readers_keep_their_state,
                objects::a_session_scans_every_object_in_oid_order_as_of_its_snapshot,
                transactions::four_threads_lose_no_updates_and_resolution_needs_fewer_retries,
                transactions::a_write_conflict_names_the_oid_and_writes_nothing,
                transactions::read_current_turns_a_changed_read_into_a_conflict,
                transactions::transact_retries_see_fresh_state_and_give_up_after_max_attempts,
                transactions::a_long_reader_sees_one_consistent_snapshot_while_writers_transfer,
                transactions::the_cache_stays_within_its_object_bound,
                transactions::the_cache_stays_within_its_byte_bound,
                transactions::hostile_records_hit_the_size_and_depth_limits,
                transactions::the_transaction_log_lists_commits_with_their_records,
                transactions::each_commit_keeps_its_user_description_and_extension,
                commits::a_base_that_is_not_the_stored_tid_conflicts_even_with_no_commit_in_between,
                commits::a_new_object_whose_row_exists_conflicts_and_nothing_is_written,
                commits::a_merge_is_offered_the_stored_state_and_its_result_is_written,
                commits::a_stale_read_fails_the_commit_before_any_merge,
                commits::reads_alone_are_checked_and_record_no_transaction,
                commits::a_write_to_an_object_gc_removed_conflicts_without_a_merge,
                commits::creating_an_oid_never_handed_out_is_refused_and_writes_nothing,
                commits::oids_at_or_above_2_63_are_refused_in_any_write,
                commits::schema_files_are_stored_replaced_and_deleted,
                commits::schema_swaps_keep_every_writers_types,
                indexes::entries_follow_adds_and_changes_in_the_same_commit,
                indexes::ranges_of_integers_order_negatives_first,
                indexes::a_unique_key_is_refused_to_a_second_object_and_nothing_is_written,
                indexes::racing_writers_of_one_unique_key_commit_exactly_one,
                indexes::concurrent_inserts_into_one_index_all_arrive,
                indexes::an_index_added_to_existing_objects_is_built_and_then_answers,
                indexes::an_index_of_another_key_type_is_built_anew,
                indexes::queries_order_page_narrow_and_intersect,
                indexes::undo_restores_the_entries_with_the_objects,
                indexes::a_commit_redoes_its_index_changes_on_buckets_split_meanwhile,
                oids::new_oids_refuses_counts_over_the_limit_or_past_2_63_and_changes_nothing,
                oids::new_oids_of_zero_is_an_empty_range,
                oids::oids_and_tids_past_2_63_read_as_nothing,
                oids::a_tid_past_every_commit_means_the_newest_one,
                history::history_lists_each_revision_with_its_transaction,
                history::the_database_at_a_tid_loads_every_object_as_of_it,
                history::every_past_tid_shows_exactly_what_was_committed_then,
                history::undo_restores_what_a_transaction_replaced,
                history::undoing_a_creation_leaves_the_object_unreachable,
                history::undo_takes_part_in_conflict_detection,
                history::gc_keeps_removed_states_in_the_history,
                history::pack_keeps_what_it_promised_and_removes_the_rest,
                trees::a_tree_agrees_with_btreemap_across_commits_and_reopens,
                trees::inserts_and_removals_of_different_keys_in_one_bucket_both_commit,
                trees::the_same_key_changed_by_both_conflicts,
                trees::a_split_conflicts_with_an_insert_and_the_retry_succeeds,
                trees::emptying_a_bucket_conflicts_with_an_insert_into_it,
                trees::four_threads_insert_into_one_tree_and_every_key_arrives,
                trees::gc_keeps_a_tree_and_removes_the_buckets_it_dropped,
                trees::sets_embedded_values_and_kind_checks,
                trees::reverse_ranges_agree_with_btreemap_on_a_deep_tree,
        }
    };
}

/// A module `$name` with one `#[test]` per conformance test, each run on a
/// fresh backend made by the expression `$backend`.
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance::{commits, history, indexes, objects, oids, transactions, trees};
            use $crate::conformance_suite;
            $crate::conformance_tests!(conformance_suite!(@tests $backend));
        }
    };
    (@tests $backend:expr; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let backend = $backend;
                $module::$test(&backend);
            }
        )*
    };
}
