//! The direction of the workspace's dependencies, as Cargo resolves them:
//!
//! - the core (session, policy) and the intelligence crates depend on no I/O
//!   crate, not even through another crate (their normal dependency tree);
//! - no library crate depends on the sandbox carrier or on the test fixtures:
//!   only the `ivrx` package embeds the sandbox (its default carrier);
//! - the test fixtures are a dev-dependency only, of any package;
//! - only the store crate speaks SQL or depends on a database driver: the rest
//!   reads and writes through its port.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Crates that do I/O: an async runtime, sockets, HTTP, databases.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "reqwest",
    "hyper",
    "hyper-util",
    "h2",
    "axum",
    "tower",
    "tungstenite",
    "tokio-tungstenite",
    "rusqlite",
    "libsqlite3-sys",
    "tokio-postgres",
    "postgres",
    "sqlx",
    "rustls",
    "dirs",
];

/// Crates that must stay free of I/O.
const PURE: &[&str] = &["ivrx-core", "ivrx-intel"];
/// The sandbox carrier: only the binary package may depend on it (and the fixtures, which are dev-only).
const SANDBOX: &str = "ivrx-sandbox";
/// The test fixtures: a dev-dependency only.
const TESTKIT: &str = "ivrx-testkit";
/// The binary package, which embeds the sandbox as its default carrier.
const BINARY: &str = "ivrx";

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().expect("cargo runs");
    assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Every package in the normal (non-dev, non-build) dependency tree of `package`.
fn normal_tree(package: &str) -> BTreeSet<String> {
    let mut c = cargo();
    c.args(["tree", "--locked", "--package", package, "--edges", "normal", "--prefix", "none", "--format", "{p}"]);
    run(c).lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

/// The workspace's packages, with their declared dependencies as (name, kind).
fn members() -> Vec<(String, Vec<(String, String)>)> {
    let mut c = cargo();
    c.args(["metadata", "--locked", "--no-deps", "--format-version", "1"]);
    let meta: Value = serde_json::from_str(&run(c)).expect("cargo metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| {
                    let name = d["name"].as_str().unwrap_or_default().to_string();
                    (name, d["kind"].as_str().unwrap_or("normal").to_string())
                })
                .collect();
            (p["name"].as_str().unwrap_or_default().to_string(), deps)
        })
        .collect()
}

#[test]
fn the_workspace_has_the_layered_crates() {
    let names: BTreeSet<String> = members().into_iter().map(|(n, _)| n).collect();
    for crate_name in [BINARY, "ivrx-core", "ivrx-intel", "ivrx-telnyx", "ivrx-store", SANDBOX, TESTKIT] {
        assert!(names.contains(crate_name), "{crate_name} is a workspace member: {names:?}");
    }
}

#[test]
fn core_and_intel_depend_on_no_io_crate() {
    for package in PURE {
        let tree = normal_tree(package);
        assert!(tree.contains(*package), "cargo tree lists {package} itself: {tree:?}");
        let io: Vec<&String> = tree.iter().filter(|p| IO_CRATES.contains(&p.as_str())).collect();
        assert!(io.is_empty(), "{package} must do no I/O, but depends (perhaps indirectly) on {io:?}");
        for forbidden in [SANDBOX, TESTKIT, "ivrx-store", "ivrx-symbl", "ivrx-http", BINARY] {
            assert!(!tree.contains(forbidden), "{package} depends on {forbidden}");
        }
    }
}

#[test]
fn only_the_binary_embeds_the_sandbox_and_only_tests_use_the_fixtures() {
    for (package, deps) in members() {
        for (dep, kind) in &deps {
            let shipped = kind != "dev";
            if dep == TESTKIT {
                assert!(!shipped, "{package} depends on the test fixtures ({TESTKIT}) as a {kind} dependency");
            }
            if dep == SANDBOX && shipped {
                assert!(
                    package == BINARY || package == TESTKIT,
                    "{package} depends on the sandbox carrier; only the {BINARY} package may"
                );
            }
            if dep == BINARY {
                panic!("{package} depends on the {BINARY} package; it is the top of the graph");
            }
        }
    }
}

#[test]
fn the_io_list_catches_an_io_crate() {
    // The check above is only as good as cargo tree's answer: the store's tree
    // must show SQLite and tokio, or the names in IO_CRATES are wrong.
    let tree = normal_tree("ivrx-store");
    for io in ["rusqlite", "tokio", "mio"] {
        assert!(tree.contains(io), "ivrx-store's tree lists {io}: {tree:?}");
    }
}

/// Database drivers: only the store crate depends on them (tests may inspect a store file).
const DATABASE_CRATES: &[&str] =
    &["rusqlite", "libsqlite3-sys", "tokio-postgres", "postgres", "deadpool-postgres", "sqlx"];

/// Whether `line` names a driver crate as Rust does: a path starting with it
/// (`rusqlite::Connection`, not a module of that name inside another path)
/// or a `use` of it. A `postgres://` URL is not the driver.
fn names_driver(line: &str, words: &[&str]) -> bool {
    DATABASE_CRATES.iter().map(|d| d.replace('-', "_")).any(|d| {
        let used = words.windows(2).any(|w| w[0] == "use" && w[1] == d);
        let path = line.match_indices(&format!("{d}::")).any(|(i, _)| {
            line[..i].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        });
        used || path
    })
}

/// What in a line of Rust shows SQL or a database driver: a driver's name, or
/// SQL keywords as a query spells them (upper case, in the order only SQL
/// puts them).
fn sql_in(line: &str) -> Option<&'static str> {
    let words: Vec<&str> = line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').collect();
    let has = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    let driver = names_driver(line, &words);
    let update = words.windows(3).any(|w| w[0] == "UPDATE" && w[2] == "SET");
    [
        (driver, "a database driver"),
        (words.contains(&"SELECT"), "SELECT"),
        (has("INSERT", "INTO") || has("INSERT", "OR"), "INSERT"),
        (update, "UPDATE … SET"),
        (has("DELETE", "FROM"), "DELETE"),
        (has("CREATE", "TABLE") || has("CREATE", "INDEX"), "CREATE"),
        (has("ON", "CONFLICT"), "ON CONFLICT"),
        (words.contains(&"PRAGMA"), "PRAGMA"),
    ]
    .into_iter()
    .find_map(|(found, what)| found.then_some(what))
}

/// The Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_store_speaks_sql() {
    for (package, deps) in members() {
        for (dep, kind) in &deps {
            if DATABASE_CRATES.contains(&dep.as_str()) && kind != "dev" {
                assert_eq!(
                    package, "ivrx-store",
                    "{package} depends on the database driver {dep}; go through the store's port"
                );
            }
        }
    }
    // The ivrx package's code (not its tests, which inspect a store file as
    // another process would) and every other crate, tests included.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "benches", "train", "fuzz/fuzz_targets"] {
        rust_files(&root.join(dir), &mut files);
    }
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/").flatten() {
        if entry.file_name() != "store" {
            rust_files(&entry.path(), &mut files);
        }
    }
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("UTF-8 source");
        for (i, line) in text.lines().enumerate() {
            if let Some(what) = sql_in(line) {
                let path = file.strip_prefix(root).unwrap_or(file).display();
                found.push(format!("{path}:{}: {what}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "SQL outside the store crate; go through the store's port:\n{}", found.join("\n"));
    assert!(files.iter().any(|f| f.ends_with("src/analyze/mod.rs")), "the scan saw the sources");
}

#[test]
fn the_sql_scan_catches_sql() {
    assert_eq!(sql_in("conn.query_row(\"SELECT count(*) FROM conversations\", [])"), Some("SELECT"));
    assert_eq!(sql_in("    \"SELECT id, started_at"), Some("SELECT"));
    assert_eq!(sql_in("\"INSERT OR IGNORE INTO events (n) VALUES (?1)\""), Some("INSERT"));
    assert_eq!(sql_in("UPDATE legs SET ended_ms = ?2"), Some("UPDATE … SET"));
    assert_eq!(sql_in("ON CONFLICT(conversation_id) DO UPDATE SET state = excluded.state"), Some("ON CONFLICT"));
    assert_eq!(sql_in("\"PRAGMA wal_checkpoint(PASSIVE)\""), Some("PRAGMA"));
    assert_eq!(sql_in("let conn = rusqlite::Connection::open(path)?;"), Some("a database driver"));
    assert_eq!(sql_in("use tokio_postgres::Client;"), Some("a database driver"));
    assert_eq!(sql_in("    let (c, conn) = postgres::connect(url)?;"), Some("a database driver"));
    assert_eq!(sql_in("use sqlx;"), Some("a database driver"));
    assert_eq!(sql_in("/// A database: postgres://USER:PASSWORD@HOST/DB"), None);
    assert_eq!(sql_in("let c = ivrx_testkit::postgres::cluster();"), None);
    assert_eq!(sql_in("/// Selects the calls from the store, then updates the set."), None);
    assert_eq!(sql_in("// Insert the call into the table, select the first one."), None);
}
