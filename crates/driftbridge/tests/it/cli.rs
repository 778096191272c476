//! The binary as an operator first meets it: the demo runs the same whatever the working
//! directory holds, and honours `--database-url`.

use std::process::Command;

#[test]
fn the_demo_ignores_the_working_directorys_config_and_writes_where_database_url_says() {
    let dir = tempfile::tempdir().unwrap();
    // A config that `serve` would refuse: an unknown key and a sink nobody can reach.
    std::fs::write(
        dir.path().join("driftbridge.toml"),
        "concurency = 4\n[sinks.crm]\nkind = \"http\"\nurl = \"ftp://x\"\n",
    )
    .unwrap();
    let db = dir.path().join("demo.db");
    let url = format!("sqlite:{}", db.display());
    let out = Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .current_dir(dir.path())
        .args(["demo", "--conversations", "5", "--events", "20"])
        .args(["--database-url", &url])
        .env_remove("DRIFTBRIDGE_DATABASE_URL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&db.display().to_string()), "{said}");
    assert!(db.exists(), "the demo wrote where --database-url said");
    // Run again on the same file: refused, and the file is left alone.
    let before = std::fs::metadata(&db).unwrap().len();
    let again = Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .current_dir(dir.path())
        .args(["demo", "--conversations", "5", "--events", "20"])
        .args(["--database-url", &url])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), before);
    // An explicit --config is refused with the reason, not half-used.
    let with_config = Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .current_dir(dir.path())
        .args(["demo", "--config", "driftbridge.toml"])
        .output()
        .unwrap();
    assert!(!with_config.status.success());
    let err = String::from_utf8_lossy(&with_config.stderr);
    assert!(err.contains("reads no config file"), "{err}");
}

#[test]
fn connection_errors_name_the_target_say_the_cause_once_and_hide_the_password() {
    let out = Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(["jobs", "dead", "--database-url"])
        .arg("postgres://app:hunter2@127.0.0.1:1/db")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to postgres://app:[redacted]@127.0.0.1:1/db"),
        "{err}"
    );
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .current_dir(dir.path())
        .args(["export", "--to", "jsonl:out"])
        .env("DRIFTBRIDGE_DRIFT__BASE_URL", "http://127.0.0.1:1")
        .env("DRIFTBRIDGE_DRIFT__TOKEN", "not-a-real-token")
        .env("DRIFTBRIDGE_DRIFT__MAX_RETRIES", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("at http://127.0.0.1:1: request failed"),
        "{err}"
    );
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
}
