//! HTTP routes, one module per resource, merged in [`router`].

use axum::Router;

use crate::state::AppState;

mod cluster;
mod content;
mod health;
mod log;
mod parties;
pub mod peer;

/// Every route of the API.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(content::router())
        .merge(log::router())
        .merge(health::router())
        .merge(cluster::router())
        .merge(parties::router())
}
