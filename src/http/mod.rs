//! The HTTP toolkit below the features: the listener ([`serve`]), the error type sent as
//! problem+json ([`error`]), the extractors ([`extract`]), access control ([`auth`]) and the
//! audit trail ([`audit`]), small middleware ([`middleware`]) and the OpenAPI helpers
//! ([`openapi`]). It names no feature: handlers live with their feature, the composition
//! (state, routes, stack) in `app`.

pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod serve;
