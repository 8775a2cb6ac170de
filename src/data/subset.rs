//! A node's training subset (`train_on`): which classes and domains of the training split it
//! sees.

use serde::{Deserialize, Serialize};

/// A part of the training split: the samples whose class and domain pass both filters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Subset")]
pub struct Subset {
    /// Keep only these classes (empty = all).
    pub classes: Vec<usize>,
    /// Drop these classes (Hinton et al. 2015's transfer set without 3s: `[3]`).
    pub exclude_classes: Vec<usize>,
    /// Keep only these domains (empty = all); needs a data set with domains (RotatedMnist).
    pub domains: Vec<usize>,
}

impl Subset {
    /// Whether a sample of class `label` from `domain` belongs to the subset.
    pub fn contains(&self, label: usize, domain: usize) -> bool {
        (self.classes.is_empty() || self.classes.contains(&label))
            && !self.exclude_classes.contains(&label)
            && (self.domains.is_empty() || self.domains.contains(&domain))
    }
}
