//! The list value type (placeholder: the full type with its compact encoding is being written).

/// A list value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct List {
    _private: (),
}

impl List {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
