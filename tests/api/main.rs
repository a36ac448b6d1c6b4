//! Integration tests: the real service over real HTTP against a real Tansu broker.

mod helpers;
mod intake;
mod lifecycle;
mod processing;
