//! LISTEN/NOTIFY notifications.

/// A notification sent with `NOTIFY` (or `pg_notify`) on a channel this session
/// listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub(crate) process_id: i32,
    pub(crate) channel: String,
    pub(crate) payload: String,
}

impl Notification {
    /// The process ID of the notifying backend.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The payload (empty when none was given).
    pub fn payload(&self) -> &str {
        &self.payload
    }
}
