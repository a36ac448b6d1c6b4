//! Many clusters from one service: the registry of the clusters it manages beside its home
//! cluster (the one it runs its orders on), each with lazily made Kafka clients, and the
//! operations across clusters.

pub mod broker;
pub mod filter;
pub mod health;
pub mod local;
pub mod masking;
mod migrate;
pub mod operations;
pub mod options;
pub mod registry;
mod replicate;
pub mod routes;
mod schema_copy;
mod state;
pub mod templates;

pub use registry::{ClusterRegistry, ClusterSettings, RegisteredCluster};
pub use state::{ClustersParts, ClustersState, MessageLimits};
