//! The multi-process tests (`multiprocess/`) over SQLite files.

mod multiprocess;

fn sqlite_file() -> (String, Box<dyn std::any::Any>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procs.db").to_str().unwrap().to_owned();
    (path, Box::new(dir))
}

#[test]
fn four_processes_lose_no_updates_and_resolution_needs_fewer_retries() {
    multiprocess::four_processes_lose_no_updates_and_resolution_needs_fewer_retries(&sqlite_file);
}

#[test]
fn a_writer_killed_50_times_loses_no_acknowledged_commit_and_leaves_no_partial_one() {
    multiprocess::a_writer_killed_50_times_loses_no_acknowledged_commit_and_leaves_no_partial_one(&sqlite_file);
}
