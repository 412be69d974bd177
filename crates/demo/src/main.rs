//! `k8rs-demo`: serves the demo app on 0.0.0.0:$PORT (default 8080).
//!
//! In a container it is PID 1 of its PID namespace, where the kernel ignores signals
//! whose action is the default: without a handler SIGTERM would do nothing and every
//! stop would end in SIGKILL after the grace period. A signal-hook thread (safe API:
//! the handler only writes to a pipe) receives SIGTERM/SIGINT and exits 0.

use std::net::{Ipv4Addr, TcpListener};
use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let port = match demo::port_from_env(std::env::var("PORT").ok().as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("k8rs-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("k8rs-demo: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            println!("signal {sig}: exiting");
            std::process::exit(0);
        }
    });
    let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("k8rs-demo: cannot listen on 0.0.0.0:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("k8rs-demo listening on {addr}");
    match demo::serve(listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("k8rs-demo: accept on {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
