//! The zset value type (placeholder: the full type with its compact encoding is being written).

/// A zset value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ZSet {
    _private: (),
}

impl ZSet {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "skiplist"
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
