//! Shared helpers of the controller tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use testkit::TestServer;

/// A server with `nodes` hollow nodes running; dropped off the async threads.
pub async fn server_with_nodes(nodes: usize) -> (TestServer, kube::Client) {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    if nodes > 0 {
        let opts = hollow::Options {
            count: nodes,
            job_runtime: Duration::from_millis(300),
            ..Default::default()
        };
        tokio::spawn(hollow::run(client.clone(), opts));
    }
    (s, client)
}

pub async fn stop(s: TestServer) {
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}

/// Polls `check` until it yields, or fails the test after 30 s.
pub async fn wait<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
