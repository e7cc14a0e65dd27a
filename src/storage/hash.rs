//! The hash value type (placeholder: the full type with its compact encoding is being written).

/// A hash value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Hash {
    _private: (),
}

impl Hash {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "hashtable"
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
