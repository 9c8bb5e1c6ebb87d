//! The conformance suite: one set of cases, written once, run against every
//! backend. A case that passes on one backend and fails on another is a bug.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod archive;
mod branches;
mod concurrency;
mod concurrent_trees;
mod conversations;
mod deleting;
mod feed;
mod files;
mod messages;
mod metadata;
mod search_corpus;
mod search_phrases;
mod search_rowid_order;
mod search_walks;
mod search_writes;
mod single_messages;
mod timestamps;
mod transactions;
mod tree_transactions;
mod update_trees;
mod validation;
mod versions;

/// Instantiates every case for one backend factory.
macro_rules! suite {
    ($factory:path; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                // `None`: the backend is not configured here, and said so.
                let Some(store) = $factory() else { return };
                crate::$module::$case(&store);
            }
        )*
    };
}

/// One module per backend, each with every case.
macro_rules! backends {
    ($($backend:ident),* $(,)?) => {
        $(
            mod $backend {
                suite!(crate::support::$backend;
                    files::file_create_get_delete,
                    files::file_caller_id_and_conflict,
                    files::file_list_pages_newest_first,
                    conversations::conversation_create_get,
                    conversations::conversation_caller_id_and_conflict,
                    conversations::conversation_list_pages_by_both_orders,
                    conversations::conversation_list_cursor_must_match,
                    conversations::conversation_list_all,
                    conversations::conversation_update_syncs_messages,
                    conversations::conversation_update_reorders,
                    conversations::conversation_update_missing_is_not_found,
                    conversations::conversation_update_foreign_message_conflicts,
                    conversations::conversation_delete_cascades,
                    messages::message_append_bumps_updated_at,
                    messages::message_equal_timestamps_keep_append_order,
                    messages::message_pages_to_the_last,
                    messages::message_missing_conversation_is_not_found,
                    messages::message_duplicate_id_conflicts,
                    messages::message_attachments_round_trip,
                    messages::message_sql_text_is_stored_verbatim,
                    messages::message_batches_append_in_order,
                    messages::message_batches_are_all_or_nothing,
                    timestamps::timestamp_round_trips_exactly,
                    transactions::transaction_commits,
                    transactions::transaction_rolls_back_on_err,
                    transactions::transaction_rolls_back_on_panic,
                    transactions::transaction_rolls_back_updates_and_deletes,
                    transactions::transaction_refuses_direct_store_calls,
                    transactions::transaction_sees_its_own_writes,
                    transactions::transaction_goes_on_after_a_failed_call,
                    validation::validation_refuses_bad_files,
                    validation::validation_refuses_bad_conversations,
                    validation::validation_refuses_bad_messages,
                    validation::validation_refuses_bad_updates,
                    validation::validation_refuses_bad_pages,
                    concurrency::concurrent_appends_lose_nothing,
                    concurrency::concurrent_stores_are_clones,
                    concurrency::concurrent_random_mix_matches_replay,
                    concurrent_trees::concurrent_tree_writes_keep_one_sound_tree,
                    concurrent_trees::concurrent_deletes_of_one_message_agree,
                    versions::version_moves_forward_on_every_write,
                    versions::version_stale_update_is_refused_and_writes_nothing,
                    versions::version_of_a_deleted_conversation_is_not_found,
                    versions::version_refuses_versions_never_handed_out,
                    versions::version_renames_racing_appends_lose_nothing,
                    single_messages::message_edit_changes_one_message_in_place,
                    single_messages::message_edit_refusals_write_nothing,
                    single_messages::message_delete_removes_one,
                    single_messages::message_stream_grows_one_message,
                    single_messages::message_stream_readers_never_see_torn_text,
                    branches::branch_regenerate_adds_a_current_sibling,
                    branches::branch_edit_and_resend_and_start_over,
                    branches::branch_switch_lands_where_the_branch_was_left,
                    branches::branch_pages_walk_only_the_current_branch,
                    branches::branch_from_refusals_write_nothing,
                    branches::branch_batches_of_any_size_continue_the_current_branch,
                    deleting::delete_message_at_a_branch_point_splices,
                    deleting::delete_branch_of_the_current_branch,
                    deleting::delete_branch_off_the_current_branch,
                    deleting::delete_missing_moves_nothing,
                    update_trees::update_on_a_tree_leaves_other_branches_alone,
                    update_trees::update_dropping_a_message_moves_its_branches_up,
                    update_trees::update_refuses_reordering_a_branched_conversation,
                    update_trees::update_conflicts_and_stale_copies_write_nothing,
                    tree_transactions::tree_writes_roll_back_with_their_transaction,
                    archive::archive_sets_keeps_and_clears_archived_at,
                    archive::archive_lists_page_through_each_filter,
                    archive::archive_missing_and_deleted_conversations,
                    metadata::metadata_round_trips_on_conversations,
                    metadata::metadata_round_trips_on_messages,
                    metadata::metadata_limits_are_refused_and_write_nothing,
                    metadata::metadata_stale_edits_are_refused,
                    metadata::metadata_integral_floats_stay_floats,
                    search_corpus::search_corpus_finds_the_same_on_every_backend,
                    search_corpus::search_in_one_conversation_finds_the_whole_search_s_hits_there,
                    search_corpus::search_snippets_mark_the_matched_words,
                    search_corpus::search_filters_narrow_the_same_hits,
                    search_corpus::search_refuses_queries_with_nothing_to_find,
                    search_writes::search_follows_message_writes,
                    search_writes::search_follows_appends_across_index_batches,
                    search_writes::search_follows_titles_across_index_batches,
                    search_writes::search_follows_update_and_titles,
                    search_writes::search_ignores_rolled_back_writes,
                    search_writes::search_follows_imports_and_copies,
                    search_walks::search_walks_find_every_folded_form,
                    search_rowid_order::search_finds_texts_written_out_of_time_order,
                    search_phrases::search_phrases_find_texts_whose_pairs_did_not_fit,
                    feed::feed_reports_each_write_once_in_order,
                    feed::feed_ignores_rolled_back_and_refused_writes,
                    feed::feed_follows_commit_order_across_threads,
                    feed::feed_lags_a_slow_subscriber_and_changes_since_catches_up,
                    feed::feed_refuses_bad_subscriptions,
                    feed::feed_hears_copies_and_imports,
                );
            }
        )*
    };
}

backends!(memory);
#[cfg(feature = "sqlite")]
backends!(sqlite_file, sqlite_mapped, sqlite_memory);
#[cfg(feature = "encryption")]
backends!(sqlite_encrypted);
#[cfg(feature = "postgres")]
backends!(postgres);
