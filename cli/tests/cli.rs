//! `cargo pbpersist` run as a user runs it: a spawned process, its exit code
//! and its output, on files and databases made by the example.

use pbpersist::{Database, Ref};
use pbpersist_examples::demo::{Contact, Tower};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cargo_pbpersist(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-pbpersist")).arg("pbpersist").args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto")
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec!["--help"],
        vec!["generate", "--help"],
        vec!["check", "--help"],
        vec!["inspect", "--help"],
        vec!["gc", "--help"],
        vec!["log", "--help"],
        vec!["history", "--help"],
        vec!["undo", "--help"],
        vec!["pack", "--help"],
        vec!["copy", "--help"],
        vec!["check-tree", "--help"],
        vec!["index", "--help"],
        vec!["index", "check", "--help"],
    ] {
        let out = cargo_pbpersist(&sub);
        assert!(out.status.success(), "{sub:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage"), "{sub:?}");
    }
}

#[test]
fn generate_writes_what_build_rs_writes_and_check_finds_stale_files() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let demo = proto_dir().join("demo.proto");
    let include = proto_dir();
    let args = ["generate", "-I", include.to_str().unwrap(), "--out", out_dir, demo.to_str().unwrap()];
    let out = cargo_pbpersist(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(dir.path().join("demo.rs")).unwrap();
    // build.rs calls the same generator with the same input.
    let expected = pbpersist_build::Config::new().cargo_directives(false).generate(&[&demo], &[&include]).unwrap();
    assert_eq!(written, expected[0].content);

    let mut check = args.to_vec();
    check.insert(1, "--check");
    assert!(cargo_pbpersist(&check).status.success());
    std::fs::write(dir.path().join("demo.rs"), written.replace("Tower", "Towr")).unwrap();
    let out = cargo_pbpersist(&check);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));

    let mut with_include = args.to_vec();
    with_include.insert(1, "--include-file=protos.rs");
    assert!(cargo_pbpersist(&with_include).status.success());
    let include = std::fs::read_to_string(dir.path().join("protos.rs")).unwrap();
    assert!(include.contains("pub mod demo") && include.contains("include!(\"demo.rs\")"), "{include}");
}

#[test]
fn check_reports_diagnostics_and_breaking_changes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.proto");
    std::fs::write(&bad, "syntax = \"proto3\";\nmessage A {\n  int32 x = ;\n}\n").unwrap();
    let out = cargo_pbpersist(&["check", "-I", dir.path().to_str().unwrap(), bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.proto:3:13") && err.contains("int32 x = ;"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A database made by the example holds the schema to compare with.
    let db = dir.path().join("towers.db");
    pbpersist_examples::tower::store(&db).unwrap();
    let v2 = dir.path().join("demo.proto");
    let source = std::fs::read_to_string(proto_dir().join("demo.proto")).unwrap();
    std::fs::write(
        &v2,
        source.replace("optional int32 build_year = 4 [default = 1900];", "optional bytes build_year = 4;"),
    )
    .unwrap();
    let include = proto_dir();
    let original = proto_dir().join("demo.proto");
    let same = cargo_pbpersist(&[
        "check",
        "-I",
        include.to_str().unwrap(),
        "--against",
        db.to_str().unwrap(),
        original.to_str().unwrap(),
    ]);
    assert!(same.status.success(), "{}{}", stdout(&same), stderr(&same));
    let changed = cargo_pbpersist(&[
        "check",
        "-I",
        dir.path().to_str().unwrap(),
        "-I",
        include.to_str().unwrap(),
        "--against",
        db.to_str().unwrap(),
        v2.to_str().unwrap(),
    ]);
    assert!(!changed.status.success());
    assert!(stdout(&changed).contains("FieldTypeChanged: demo.Tower.build_year"), "{}", stdout(&changed));

    // An index added against the stored schema is listed, and breaks nothing.
    std::fs::write(
        &v2,
        source.replace("required string name = 1;", "required string name = 1 [(pbpersist.index) = {unique: true}];"),
    )
    .unwrap();
    let indexed = cargo_pbpersist(&[
        "check",
        "-I",
        dir.path().to_str().unwrap(),
        "-I",
        include.to_str().unwrap(),
        "--against",
        db.to_str().unwrap(),
        v2.to_str().unwrap(),
    ]);
    assert!(indexed.status.success(), "{}{}", stdout(&indexed), stderr(&indexed));
    assert!(stdout(&indexed).contains("index demo.Tower.name: added, unique"), "{}", stdout(&indexed));
}

/// `check --against` a descriptor set from protoc: editions features count,
/// so a field that loses presence is reported.
#[test]
fn check_against_an_editions_descriptor_set_reports_a_presence_change() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old");
    let new = dir.path().join("new");
    for (d, presence) in [(&old, "EXPLICIT"), (&new, "IMPLICIT")] {
        std::fs::create_dir_all(d).unwrap();
        let source = format!(
            "edition = \"2024\";\npackage ed;\nmessage M {{\n  int32 x = 1 [features.field_presence = {presence}];\n}}\n"
        );
        std::fs::write(d.join("m.proto"), source).unwrap();
    }
    let set = dir.path().join("old.binpb");
    let protoc = Command::new(protoc_bin_vendored::protoc_bin_path().unwrap())
        .arg(format!("-I{}", old.display()))
        .arg(format!("--descriptor_set_out={}", set.display()))
        .arg("m.proto")
        .output()
        .unwrap();
    assert!(protoc.status.success(), "{}", stderr(&protoc));
    let proto = new.join("m.proto");
    let args = ["check", "-I", new.to_str().unwrap(), "--against", set.to_str().unwrap(), proto.to_str().unwrap()];
    let check = cargo_pbpersist(&args);
    assert!(!check.status.success());
    assert!(stdout(&check).contains("PresenceChanged: ed.M.x"), "{}{}", stdout(&check), stderr(&check));
}

#[test]
fn inspect_lists_objects_and_shows_them_as_json_without_rust_types() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("towers.db");
    pbpersist_examples::tower::store(&db).unwrap();
    let path = db.to_str().unwrap();

    let list = cargo_pbpersist(&["inspect", path]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(text.contains("pbpersist.Root") && text.matches("demo.Tower").count() == 2, "{text}");

    let (pisa, bob) = Database::open(&db)
        .unwrap()
        .transact(|tx| {
            let root = tx.root()?;
            Ok((root.require::<Tower>("pisa")?, root.require::<Contact>("bob")?))
        })
        .unwrap();
    let out = cargo_pbpersist(&["inspect", path, "--oid", &pisa.oid().to_string(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["type"], "demo.Tower");
    assert_eq!(json["oid"], pisa.oid().0);
    let state = &json["state"];
    assert_eq!(state["name"], "Pisa");
    assert_eq!(state["width"], 15.5);
    assert_eq!(state["buildYear"], 1372);
    let neighbor: u64 = state["neighbor"]["oid"].as_str().unwrap().parse().unwrap();
    assert_eq!(json["refs"], serde_json::json!([neighbor]));

    let out = cargo_pbpersist(&["inspect", path, "--oid", &bob.oid().to_string(), "--json", "--follow"]);
    let all: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2, "Bob and his guardian");
    assert_eq!(all[0]["state"]["phone"], "555-0100");
    assert_eq!(all[0]["state"]["labels"]["team"], "blue");
    assert_eq!(all[1]["state"]["name"], "Alice");
    assert_eq!(all[1]["state"]["address"]["city"], "Springfield");

    let missing = cargo_pbpersist(&["inspect", path, "--oid", "999", "--json"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("object 999 does not exist"));
    let not_db = cargo_pbpersist(&["inspect", proto_dir().join("demo.proto").to_str().unwrap()]);
    assert!(!not_db.status.success() && stderr(&not_db).contains("is not a pbpersist database"));
}

#[test]
fn gc_removes_exactly_the_unreachable_objects() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("towers.db");
    pbpersist_examples::tower::store(&db_path).unwrap();
    let db = Database::open(&db_path).unwrap();
    let (kept, dropped) = db
        .transact(|tx| {
            let mut lonely = Tower::new();
            tx.set_user("ada");
            tx.note("two towers");
            tx.set_extension("request", "r-17");
            lonely.set_name("lonely");
            lonely.set_width(1.0);
            lonely.set_height(1.0);
            let lonely = tx.add(lonely)?;
            let mut pointing = Tower::new();
            pointing.set_name("pointing");
            pointing.set_width(1.0);
            pointing.set_height(1.0);
            pointing.set_neighbor(lonely);
            let pointing = tx.add(pointing)?;
            let root = tx.root()?;
            let kept: Vec<Ref<Tower>> =
                ["rapunzel", "pisa"].iter().map(|n| root.require(n)).collect::<Result<_, _>>()?;
            Ok((kept, vec![lonely, pointing]))
        })
        .unwrap();
    drop(db);
    let path = db_path.to_str().unwrap();
    // The newest transaction wrote the two new towers; the one before, the example's.
    let log = cargo_pbpersist(&["log", path, "-n", "1"]);
    assert!(log.status.success(), "{}", stderr(&log));
    let lines: Vec<String> = stdout(&log).lines().map(str::to_owned).collect();
    let (lonely, pointing) = (dropped[0].oid(), dropped[1].oid());
    assert!(lines[0].starts_with("tid ") && lines[0].contains('T') && lines[0].ends_with("  ada"), "{lines:?}");
    let details =
        ["    two towers".to_owned(), "    request: r-17".to_owned(), format!("    oids: {lonely} {pointing}")];
    assert_eq!(lines[1..], details, "one transaction, its description, extension and oids");
    let dry = cargo_pbpersist(&["gc", path, "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("would remove 2 unreachable object(s)"), "{}", stdout(&dry));
    let out = cargo_pbpersist(&["gc", path]);
    assert!(out.status.success());
    for r in &dropped {
        assert!(stdout(&out).contains(&format!("removed {}", r.oid())), "{}", stdout(&out));
    }
    let db = Database::open(&db_path).unwrap();
    db.transact(|tx| {
        for r in &kept {
            tx.get(*r)?;
        }
        for r in &dropped {
            assert!(matches!(tx.get(*r), Err(pbpersist::Error::NotFound { .. })));
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn inspect_shows_a_tree_and_check_tree_finds_a_broken_one() {
    use pbpersist::PTreeMap;
    use pbpersist::tree::{Bounds, TreeBucket, TreeHead, TreeNode};
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("tree.db");
    let db = Database::open(&db_path).unwrap();
    let tree = db
        .transact(|tx| {
            let tree = PTreeMap::<String, i64>::create_with(tx, Bounds { bucket: 8, node: 8 })?;
            for i in 0..300 {
                tree.insert(tx, format!("k{i:03}"), i)?;
            }
            tx.root_mut()?.insert("numbers", tree);
            Ok(tree)
        })
        .unwrap();
    let path = db_path.to_str().unwrap();
    let head = tree.oid().to_string();
    let shown = cargo_pbpersist(&["inspect", path, "--oid", &head]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains("tree: map string -> int64, 300 entries, depth 3"), "{text}");
    assert!(text.contains("\"k000\": 0") && text.contains("\"k009\": 9") && !text.contains("k010"), "{text}");
    let checked = cargo_pbpersist(&["check-tree", path]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(
        stdout(&checked).contains(&format!("tree {head} (string -> int64): 300 entries, depth 3")),
        "{}",
        stdout(&checked)
    );
    assert!(stdout(&checked).ends_with(": ok\n"), "{}", stdout(&checked));
    // Swap two keys of the first bucket behind the tree's back.
    db.transact(|tx| {
        let mut at = tx.get(tree.cast::<TreeHead>())?.root().unwrap();
        for _ in 0..3 {
            at = tx.get(at.cast::<TreeNode>())?.children()[0];
        }
        tx.get_mut(at.cast::<TreeBucket>())?.keys_mut().strings_mut().swap(0, 1);
        Ok(())
    })
    .unwrap();
    drop(db);
    let checked = cargo_pbpersist(&["check-tree", path, "--name", "numbers"]);
    assert!(!checked.status.success());
    let text = stdout(&checked);
    assert!(text.contains("BROKEN") && text.contains("key \"k001\" is not before \"k000\""), "{text}");
}

/// The test server's URL with its tables in `schema`, or `None` (with the
/// reason printed) when no server answers and CI does not require one.
#[test]
fn history_undo_and_pack_work_on_a_history_preserving_file() {
    use pbpersist::storage::History;
    use pbpersist::storage::SqliteStorage;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let storage = SqliteStorage::builder(&path).history(History::Preserving).open().unwrap();
    let db = Database::with_storage(storage).unwrap();
    pbpersist_examples::tower::store_in(&db).unwrap();
    let pisa = db.transact(|tx| tx.root()?.require::<Tower>("pisa")).unwrap();
    db.transact(|tx| {
        tx.set_user("grace");
        tx.note("a mistake");
        tx.get_mut(pisa)?.set_height(1.0);
        Ok(())
    })
    .unwrap();
    let mistake = db.last_transactions(1).unwrap()[0].tid;
    drop(db);
    let file = path.to_str().unwrap();
    let oid = pisa.oid().to_string();

    let history = cargo_pbpersist(&["history", file, "--oid", &oid]);
    assert!(history.status.success(), "{}", stderr(&history));
    let lines: Vec<String> = stdout(&history).lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with(&format!("tid {mistake} ")) && lines[0].ends_with("  grace"), "{lines:?}");
    assert_eq!(lines[1], "    a mistake");
    assert!(lines[2].ends_with("  example"), "the example's transaction: {lines:?}");

    let undo = cargo_pbpersist(&["undo", file, &mistake.to_string()]);
    assert!(undo.status.success(), "{}", stderr(&undo));
    let again = cargo_pbpersist(&["undo", file, "999999"]);
    assert!(!again.status.success() && stderr(&again).contains("not in the database's history"), "{}", stderr(&again));
    let db = Database::open(&path).unwrap();
    assert_eq!(db.transact(|tx| Ok(tx.get(pisa)?.height())).unwrap(), 56.7);
    drop(db);

    // A copy shows the same objects and the same history, and resumes.
    let copied = dir.path().join("copy.db");
    let copy = cargo_pbpersist(&["copy", file, copied.to_str().unwrap()]);
    assert!(copy.status.success(), "{}", stderr(&copy));
    assert!(stdout(&copy).starts_with("copied 4 transaction(s)"), "{}", stdout(&copy));
    for args in [vec!["inspect"], vec!["history", "--oid", &oid], vec!["log"]] {
        let [a, b] = [file, copied.to_str().unwrap()].map(|db| {
            let mut full = args.clone();
            full.insert(1, db);
            stdout(&cargo_pbpersist(&full))
        });
        assert_eq!(a, b, "{args:?}");
    }
    let again = cargo_pbpersist(&["copy", file, copied.to_str().unwrap()]);
    assert!(stdout(&again).starts_with("copied 0 transaction(s)"), "{}", stdout(&again));

    let missing = cargo_pbpersist(&["pack", file]);
    assert!(!missing.status.success() && stderr(&missing).contains("--days N or --tid T"), "{}", stderr(&missing));
    let pack = cargo_pbpersist(&["pack", file, "--tid", &(mistake.0 + 1).to_string()]);
    assert!(pack.status.success(), "{}", stderr(&pack));
    // The empty root the example replaced, and Pisa's two states before the undo.
    assert!(stdout(&pack).contains("removed 3 replaced state(s)"), "{}", stdout(&pack));
    let history = cargo_pbpersist(&["history", file, "--oid", &oid]);
    assert_eq!(stdout(&history).lines().filter(|l| l.starts_with("tid ")).count(), 1, "{}", stdout(&history));
    let free = dir.path().join("free.db");
    pbpersist_examples::tower::store(&free).unwrap();
    let refused = cargo_pbpersist(&["undo", free.to_str().unwrap(), "1"]);
    assert!(stderr(&refused).contains("keeps no history"), "{}", stderr(&refused));
}

fn postgres_schema_url(schema: &str) -> Option<String> {
    let base = std::env::var("PBPERSIST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut config: postgres::Config = base.parse().unwrap();
    config.connect_timeout(std::time::Duration::from_secs(3));
    match config.connect(postgres::NoTls) {
        Ok(mut c) => {
            c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).unwrap();
        }
        Err(e) if std::env::var("PBPERSIST_REQUIRE_POSTGRES").as_deref() != Ok("1") => {
            eprintln!("skipped: no PostgreSQL server at PBPERSIST_POSTGRES_URL or the default: {e}");
            return None;
        }
        Err(e) => panic!("PBPERSIST_REQUIRE_POSTGRES=1 but no server: {e}"),
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

#[test]
fn inspect_check_and_gc_work_on_postgres_urls() {
    let schema = format!("pbt_cli_{}", std::process::id());
    let Some(url) = postgres_schema_url(&schema) else { return };
    let storage = pbpersist::storage::PostgresStorage::open(&url).unwrap();
    let db = Database::with_storage(storage).unwrap();
    pbpersist_examples::tower::store_in(&db).unwrap();
    let lonely = db
        .transact(|tx| {
            let mut c = Contact::new();
            c.set_name("lonely");
            tx.add(c)
        })
        .unwrap();
    let bob = db.transact(|tx| tx.root()?.require::<Contact>("bob")).unwrap();
    drop(db);

    let list = cargo_pbpersist(&["inspect", &url]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert_eq!(stdout(&list).matches("demo.Tower").count(), 2, "{}", stdout(&list));
    let out = cargo_pbpersist(&["inspect", &url, "--oid", &bob.oid().to_string(), "--json", "--follow"]);
    let all: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(all[1]["state"]["name"], "Alice", "followed to the guardian");

    let proto = proto_dir().join("demo.proto");
    let check =
        cargo_pbpersist(&["check", "-I", proto_dir().to_str().unwrap(), "--against", &url, proto.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("no breaking changes against postgres@"), "{}", stdout(&check));

    let gc = cargo_pbpersist(&["gc", &url]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    assert!(stdout(&gc).contains(&format!("removed {}", lonely.oid())), "{}", stdout(&gc));

    // A database without pbpersist's tables is refused, not set up.
    let base = url.split('?').next().unwrap().to_owned();
    let bare = format!("{base}?options=-c%20search_path%3D{schema}_none");
    let refused = cargo_pbpersist(&["gc", &bare]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("is not a pbpersist database"),
        "{}",
        stderr(&refused)
    );

    let mut config: postgres::Config = base.parse().unwrap();
    config.connect_timeout(std::time::Duration::from_secs(3));
    let _ = config.connect(postgres::NoTls).and_then(|mut c| c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")));
}

#[test]
fn inspect_and_gc_read_a_database_on_a_local_object_store() {
    use pbpersist::storage::ObjectStorage;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("db").display());
    let db = Database::with_storage(ObjectStorage::open(&url).unwrap()).unwrap();
    pbpersist_examples::tower::store_in(&db).unwrap();
    db.transact(|tx| {
        let mut lost = Tower::new();
        lost.set_name("Lost");
        lost.set_width(1.0);
        lost.set_height(1.0);
        tx.add(lost).map(drop)
    })
    .unwrap();

    let list = cargo_pbpersist(&["inspect", &url]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).matches("demo.Tower").count() == 3, "{}", stdout(&list));
    let gc = cargo_pbpersist(&["gc", &url]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    let list = cargo_pbpersist(&["inspect", &url]);
    assert!(stdout(&list).matches("demo.Tower").count() == 2, "the unreachable tower is gone: {}", stdout(&list));

    let missing = format!("file://{}", dir.path().join("nothing").display());
    let refused = cargo_pbpersist(&["inspect", &missing]);
    assert!(!refused.status.success(), "a place without a database is refused, never created");
    assert!(!dir.path().join("nothing").exists());
}

/// A reader that stops early (`| head`) ends the listing quietly: exit code
/// 0 and nothing on stderr, not a panic about a broken pipe.
#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.db");
    // More lines than a pipe holds, so the writer is still writing when
    // the reader goes.
    Database::open(&db)
        .unwrap()
        .transact(|tx| {
            for i in 0..4000 {
                let mut c = Contact::new();
                c.set_name(format!("c{i}"));
                let c = tx.add(c)?;
                tx.root_mut()?.insert(format!("c{i}"), c);
            }
            Ok(())
        })
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-pbpersist"))
        .args(["pbpersist", "inspect", db.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("OID"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// A book, indexed three ways: declared with the derive, so the indexes
/// reach the stored schema the command reads.
#[derive(Clone, PartialEq, pbpersist::Persistent)]
#[pbpersist(message = "clitest.Book", index(fields("author", "year")), extent)]
struct Book {
    #[pbpersist(tag = 1, string, index(unique))]
    isbn: String,
    #[pbpersist(tag = 2, string)]
    author: String,
    #[pbpersist(tag = 3, int32)]
    year: i32,
    #[pbpersist(meta)]
    meta: pbpersist::Meta,
}

#[test]
fn index_verbs_list_build_check_and_drop_what_the_stored_schemas_declare() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("books.db");
    let path = db_path.to_str().unwrap();
    let author = |i: i32| format!("author {}", i % 7);
    {
        let db = Database::open(&db_path).unwrap();
        db.build_indexes().unwrap();
        db.transact(|tx| {
            for i in 0..50 {
                tx.add(Book { isbn: format!("isbn-{i:03}"), author: author(i), year: 1900 + i, ..Default::default() })?;
            }
            Ok(())
        })
        .unwrap();
    }
    let names = ["clitest.Book.author+year", "clitest.Book.extent", "clitest.Book.isbn"];

    let list = cargo_pbpersist(&["index", "list", path]);
    assert!(list.status.success(), "{}", stderr(&list));
    // Indexes other crates of a workspace build register are created too; these are this test's.
    let lines: Vec<String> = stdout(&list).lines().filter(|l| l.starts_with("clitest.")).map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "clitest.Book.author+year ((string,int32)): 50 entries",
            "clitest.Book.extent (()): 50 entries",
            "clitest.Book.isbn (string, unique): 50 entries",
        ]
    );
    let check = cargo_pbpersist(&["index", "check", path]);
    assert!(check.status.success(), "{}{}", stdout(&check), stderr(&check));
    for name in names {
        let line = format!("{name}: ok: 50 entries, 0 missing, 0 stale, 0 dangling");
        assert!(stdout(&check).contains(&line), "{}", stdout(&check));
    }

    // Dropped: the check fails until a build from the stored schema alone
    // gives it back the entries the program's own commits would have made.
    let dropped = cargo_pbpersist(&["index", "drop", path, names[0]]);
    assert!(dropped.status.success(), "{}", stderr(&dropped));
    let again = cargo_pbpersist(&["index", "drop", path, names[0]]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("holds no index clitest.Book.author+year"), "{}", stderr(&again));
    let list = cargo_pbpersist(&["index", "list", path]);
    assert!(stdout(&list).contains("clitest.Book.author+year ((string,int32)): declared, not created yet"));
    let check = cargo_pbpersist(&["index", "check", path]);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    assert!(stdout(&check).contains("clitest.Book.author+year: not built"), "{}", stdout(&check));
    let unknown = cargo_pbpersist(&["index", "build", path, "clitest.Book.title"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("declare no index clitest.Book.title"), "{}", stderr(&unknown));
    let build = cargo_pbpersist(&["index", "build", path]);
    assert!(build.status.success(), "{}", stderr(&build));
    // Every object is read (the root and index trees too); the books are indexed.
    let built = stdout(&build);
    assert!(built.contains("clitest.Book.author+year: built; read ") && built.contains("indexed 50\n"), "{built}");
    assert!(stdout(&build).contains("clitest.Book.isbn: built already"), "{}", stdout(&build));
    let check = cargo_pbpersist(&["index", "check", path]);
    assert!(check.status.success(), "{}", stdout(&check));

    let db = Database::open(&db_path).unwrap();
    assert!(db.check_indexes().unwrap().iter().all(|c| c.is_sound()));
    db.transact(|tx| {
        let found = Book::BY_AUTHOR_AND_YEAR.query().leading(&author(3)).fetch(tx)?.refs;
        let years: Vec<i32> = found.iter().map(|r| tx.get(*r).map(|b| b.year)).collect::<Result<_, _>>()?;
        assert_eq!(years, (0..50).filter(|i| i % 7 == 3).map(|i| 1900 + i).collect::<Vec<_>>());
        Ok(())
    })
    .unwrap();
}
