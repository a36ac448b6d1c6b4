//! Many clusters from one service: the registry of the clusters it manages beside its home
//! cluster (the one it runs its orders on), each with lazily made Kafka clients, and the
//! operations across clusters.

pub mod api;
pub mod compare;
pub mod local;
mod migrate;
pub mod operations;
pub mod operations_api;
pub mod options;
pub mod registry;
mod state;
pub mod templates;
pub mod templates_api;

pub use registry::{ClusterRegistry, ClusterSettings, RegisteredCluster};
pub use state::{ClustersParts, ClustersState};
