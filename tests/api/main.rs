//! Integration tests: the real service over real HTTP against a real Tansu broker.

mod access;
mod admin;
mod attacker;
mod clusters;
mod deploy;
mod docs;
mod hardening;
mod helpers;
mod intake;
mod lifecycle;
mod live;
mod messages;
mod new_user;
mod observability;
mod offsets;
mod operations;
mod processing;
mod schemas;
mod templates;
mod traces;
mod view;
