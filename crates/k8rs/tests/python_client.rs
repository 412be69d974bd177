//! The official Python `kubernetes` client against a real server.

mod support;

use support::Server;

#[test]
fn python_client_basics() {
    let s = Server::start();
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/basics.py"
    ))
    .unwrap();
    let out = s.python(&script);
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
