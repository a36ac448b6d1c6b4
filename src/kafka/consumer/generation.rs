//! What the members of a consumer group in this process share: how many assignments they
//! had, whether each had its first, and the requests to check their positions after the
//! broker lost the topics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Tracks group assignment changes so handlers can tell that they may now see partitions
/// another member handled before.
#[derive(Debug, Default)]
pub struct AssignmentGeneration {
    count: AtomicU64,
    /// Advanced with this one: several consumers' generations can feed one that says
    /// whether any of them has had an assignment.
    parent: Option<Arc<AssignmentGeneration>>,
    /// On a parent: how many of its children have had an assignment (an empty one counts:
    /// the group gave that member its share).
    members_assigned: AtomicU64,
    /// On a parent: asks every child's consumer to check its positions against the logs'
    /// ends (the service's topics were made again, so offsets from before may be past them).
    offset_checks: AtomicU64,
    /// On a parent: partitions whose position is past the log's end and that could not be
    /// reset (`auto.offset.reset = error`): processing cannot advance on them.
    stalled: AtomicU64,
    /// On a parent: until when (milliseconds since the Unix epoch) every assignment starts
    /// its partitions again from the policy's start, after the topics were lost and made
    /// again (see [`AssignmentGeneration::request_offset_check`]).
    recovering_until_ms: AtomicU64,
}

/// How long after the topics were made again every assignment starts its partitions again:
/// long enough for the group to settle after the broker's loss.
const RECOVERY_WINDOW: Duration = Duration::from_secs(120);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl AssignmentGeneration {
    /// A generation that also advances `parent`.
    pub fn child_of(parent: Arc<AssignmentGeneration>) -> Self {
        AssignmentGeneration {
            parent: Some(parent),
            ..AssignmentGeneration::default()
        }
    }

    /// Increases at every assignment received.
    pub fn current(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    pub(super) fn advance(&self) {
        let first = self.count.fetch_add(1, Ordering::AcqRel) == 0;
        if let Some(parent) = &self.parent {
            parent.advance();
            if first {
                parent.members_assigned.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// How many consumers feeding this generation have had their first assignment.
    pub fn members_assigned(&self) -> u64 {
        self.members_assigned.load(Ordering::Acquire)
    }

    /// Asks the consumers feeding this generation to check their positions against the
    /// logs' ends now.
    ///
    /// The topics were lost and made again, so offsets committed before are meaningless,
    /// even where they are not past the new logs' ends (new records may already have filled
    /// the log beyond them): for a while every assignment, and every partition held now,
    /// starts again from the policy's start (`earliest`: records read again are skipped by
    /// idempotent processing).
    pub fn request_offset_check(&self) {
        let root = self.root();
        root.recovering_until_ms.store(
            now_ms() + RECOVERY_WINDOW.as_millis() as u64,
            Ordering::Release,
        );
        root.offset_checks.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn recovering(&self) -> bool {
        now_ms() < self.root().recovering_until_ms.load(Ordering::Acquire)
    }

    pub(super) fn offset_checks(&self) -> u64 {
        self.root().offset_checks.load(Ordering::Acquire)
    }

    /// Partitions on which processing cannot advance (see `stalled`).
    pub fn stalled(&self) -> u64 {
        self.root().stalled.load(Ordering::Acquire)
    }

    pub(super) fn set_stalled(&self, before: u64, now: u64) {
        let root = self.root();
        root.stalled.fetch_add(now, Ordering::AcqRel);
        root.stalled.fetch_sub(before, Ordering::AcqRel);
    }

    fn root(&self) -> &AssignmentGeneration {
        self.parent.as_deref().unwrap_or(self)
    }
}

/// Why [`BaseConsumer::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown was asked for.
    Shutdown,
    /// The topics were lost and made again: start a new consumer.
    TopicsMadeAgain,
}
