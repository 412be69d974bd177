//! A kube-rs client that calls the API server's router directly, as a given user: the
//! in-process controllers and scheduler use the API like any other client, without a
//! socket or TLS in between.

use apiserver::auth::{Authenticated, UserInfo};
use apiserver::server::Router;

pub fn client(router: Router, user: UserInfo) -> kube::Client {
    let svc = tower::ServiceBuilder::new()
        .map_request(move |mut req: http::Request<kube::client::Body>| {
            req.extensions_mut().insert(Authenticated(user.clone()));
            req
        })
        .service(router);
    kube::Client::new(svc, "default")
}
