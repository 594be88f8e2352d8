//! Steady writers: worker processes that each set three counters of their
//! own to 1, 2, 3, ... in one transaction per value, and print each value
//! once its commit returned. A fault test kills what is under them, then
//! checks that every acknowledged value is stored and no commit is partial.

use crate::Worker;
use crate::bank::Counter;
use pbpersist::Database;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const COUNTERS: [&str; 3] = ["a", "b", "c"];

/// Running steady writers and what each last acknowledged.
#[derive(Debug)]
pub struct SteadyWriters {
    children: Vec<Worker>,
    acknowledged: Arc<Mutex<Vec<i64>>>,
}

impl SteadyWriters {
    /// Creates the counters of writers `names` in `db`, then starts one
    /// `worker` process per name, each committing through `url`.
    pub fn start(db: &Database, worker: &str, url: &str, names: &[&str]) -> Self {
        db.transact(|tx| {
            for w in names {
                for c in COUNTERS {
                    let r = tx.add(Counter::new())?;
                    tx.root_mut()?.insert(format!("{w}.{c}"), r);
                }
            }
            Ok(())
        })
        .expect("the writers' counters");
        let acknowledged = Arc::new(Mutex::new(vec![0; names.len()]));
        let mut children = Vec::new();
        for (k, w) in names.iter().enumerate() {
            let child = Command::new(worker)
                .args(["steady-writer", url, w])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("a steady writer");
            let mut child = Worker(child);
            let stdout = child.stdout.take().expect("piped");
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(v) = line.parse::<i64>() {
                        acknowledged.lock().unwrap_or_else(|e| e.into_inner())[k] = v;
                    }
                }
            });
            children.push(child);
        }
        SteadyWriters { children, acknowledged }
    }

    /// What each writer acknowledged so far.
    pub fn acknowledged(&self) -> Vec<i64> {
        self.acknowledged.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Checks that every writer is still running, stops them, and returns
    /// what each acknowledged.
    pub fn stop(mut self) -> Vec<i64> {
        for child in &mut self.children {
            assert!(child.try_wait().expect("a status").is_none(), "a writer gave up: {:?}", child.try_wait());
        }
        self.children.clear();
        std::thread::sleep(std::time::Duration::from_millis(100));
        self.acknowledged()
    }

    /// Checks `db` against what the writers acknowledged: each writer's
    /// three counters are equal (no partial commit) and at least its last
    /// acknowledged value.
    pub fn check(names: &[&str], acknowledged: &[i64], db: &Database) {
        for (k, w) in names.iter().enumerate() {
            let stored: Vec<i64> = db
                .transact(|tx| {
                    let root = tx.root()?;
                    COUNTERS
                        .iter()
                        .map(|c| Ok(tx.get(root.require::<Counter>(&format!("{w}.{c}"))?)?.value()))
                        .collect()
                })
                .expect("the counters");
            assert!(stored.iter().all(|v| *v == stored[0]), "{w}: a partial commit: {stored:?}");
            assert!(stored[0] >= acknowledged[k], "{w}: acknowledged {} but stored {}", acknowledged[k], stored[0]);
        }
    }
}
