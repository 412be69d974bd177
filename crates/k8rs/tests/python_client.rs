//! The official Python `kubernetes` client against a real server.

mod support;

use support::Server;

/// Runs `tests/python/<name>` against `s`; it prints `ok` when every check passed.
fn run_script(s: &Server, name: &str) {
    let path = format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(path).unwrap();
    let out = s.python(&script);
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn python_client_basics() {
    run_script(&Server::start(), "basics.py");
}

#[test]
fn service_account_tokens() {
    run_script(&Server::start(), "tokens.py");
}
