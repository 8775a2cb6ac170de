//! Value newtypes of the experiment schema. Each rejects a bad value while the file is being
//! parsed, so the error carries the line and column of the value (ron attaches the position).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Separates a value error's message from its hint (split again by the diagnostics).
pub const HINT_SEPARATOR: &str = "\u{1f}hint\u{1f}";

macro_rules! checked_float {
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal, $hint:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(f64);

        impl $name {
            /// Checks `v` as the file parser does.
            pub fn new(v: f64) -> Result<Self, String> {
                let ok: fn(f64) -> bool = $check;
                if ok(v) { Ok(Self(v)) } else { Err(format!(concat!($what, ", got {}{}", $hint), v, HINT_SEPARATOR)) }
            }
            /// The checked value.
            pub fn get(self) -> f64 {
                self.0
            }
        }
        impl TryFrom<f64> for $name {
            type Error = String;
            fn try_from(v: f64) -> Result<Self, String> {
                Self::new(v)
            }
        }
        impl From<$name> for f64 {
            fn from(v: $name) -> f64 {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

checked_float!(
    /// Softmax temperature T of a distillation term: finite and > 0 (T = 1 is plain softmax).
    Temperature, |v| v.is_finite() && v > 0.0 && v <= 1e4,
    "temperature must be a finite number in (0, 10000]",
    "T = 1 is the plain softmax; distillation usually uses T between 1 and 20 (Hinton et al. used 20 on MNIST)"
);
checked_float!(
    /// Weight of a loss term or of a source in a mixture: finite and >= 0.
    Weight, |v| v.is_finite() && (0.0..=1e6).contains(&v),
    "weight must be a finite number in [0, 1e6]",
    "weights scale loss terms; use 0 to switch a term off (for Hinton's KD: α on CrossEntropy, 1 − α on SoftTarget)"
);
checked_float!(
    /// Learning rate: finite and > 0.
    LearningRate, |v| v.is_finite() && v > 0.0 && v <= 1e3,
    "learning rate must be a finite number in (0, 1000]",
    "typical values: Adam 1e-3, SGD with momentum 0.01 to 0.1"
);
checked_float!(
    /// A fraction in [0, 1) (held-out part of a split, dropout probability, …).
    Fraction, |v| v.is_finite() && (0.0..1.0).contains(&v),
    "value must be a fraction in [0, 1)",
    "write e.g. 0.1 for 10 %"
);
checked_float!(
    /// A coefficient that must be finite and >= 0 (weight decay, momentum, decay factor, …).
    NonNegative, |v| v.is_finite() && (0.0..=1e6).contains(&v),
    "value must be a finite number >= 0",
    "e.g. momentum 0.9, weight_decay 5e-4"
);
checked_float!(
    /// Decay of an exponential moving average, in [0, 1] (0 copies, 1 never moves).
    Decay, |v| v.is_finite() && (0.0..=1.0).contains(&v),
    "decay must be a number in [0, 1]",
    "Mean Teacher and PCL use 0.999 per step; 0 copies the tracked weights, 1 keeps the initial ones"
);
checked_float!(
    /// Bound of a max-norm weight constraint: finite and > 0.
    MaxNorm, |v| v.is_finite() && v > 0.0 && v <= 1e6,
    "max-norm bound must be a finite number > 0",
    "Srivastava et al. 2014 used c between 3 and 4 for dropout networks"
);

macro_rules! checked_count {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $what:literal, $hint:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "u64", into = "u64")]
        pub struct $name(usize);

        impl $name {
            /// Checks `v` as the file parser does.
            pub fn new(v: u64) -> Result<Self, String> {
                if ($min..=$max).contains(&v) {
                    Ok(Self(v as usize))
                } else {
                    Err(format!(concat!($what, " must lie in {}..={}, got {}{}", $hint), $min, $max, v, HINT_SEPARATOR))
                }
            }
            /// The checked value.
            pub fn get(self) -> usize {
                self.0
            }
        }
        impl TryFrom<u64> for $name {
            type Error = String;
            fn try_from(v: u64) -> Result<Self, String> {
                Self::new(v)
            }
        }
        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0 as u64
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

checked_count!(
    /// Number of epochs of a stage.
    Epochs, 1u64, 100_000u64, "epochs",
    "epochs count passes over the training split, per stage"
);
checked_count!(
    /// Mini-batch size.
    BatchSize, 1u64, 1u64 << 20, "batch_size",
    "typical values are 32 to 256"
);
checked_count!(
    /// Width of a layer (units or channels).
    Width, 1u64, 1u64 << 16, "layer width",
    "widths are numbers of units or channels, e.g. [800, 800]"
);

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `v` as the file parser does: 1–64 characters of `A–Z a–z 0–9 _ - .`,
            /// not starting with `.` or `-` (so it is safe as a file name).
            pub fn new(v: impl Into<String>) -> Result<Self, String> {
                let v = v.into();
                let ok = !v.is_empty()
                    && v.len() <= 64
                    && !v.starts_with(['.', '-'])
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if ok {
                    Ok(Self(v))
                } else {
                    Err(format!(
                        concat!($what, " {:?} is not allowed{}names become file and folder names: use 1-64 letters, digits, '_', '-' or '.', not starting with '.' or '-'"),
                        v,
                        HINT_SEPARATOR
                    ))
                }
            }
            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(v: String) -> Result<Self, String> {
                Self::new(v)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

checked_name!(
    /// Identifier of a node (network) in the cohort; also names its checkpoint files.
    NodeId, "node id"
);
checked_name!(
    /// Name of an experiment; becomes a folder under the output directory.
    ExperimentName, "experiment name"
);
checked_name!(
    /// Name of a stage.
    StageName, "stage name"
);

/// `skip_serializing_if` for flags that are off by default.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// The default weight of a term or a loss option: 1.
pub fn unit_weight() -> Weight {
    Weight::new(1.0).expect("valid")
}

/// The default temperature of a term: 1 (the plain softmax).
pub fn unit_temperature() -> Temperature {
    Temperature::new(1.0).expect("valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_values() {
        assert!(Temperature::new(0.0).is_err());
        assert!(Temperature::new(-1.0).is_err());
        assert!(Temperature::new(f64::NAN).is_err());
        assert!(Temperature::new(4.0).is_ok());
        assert!(Weight::new(-0.1).is_err());
        assert!(Weight::new(f64::INFINITY).is_err());
        assert!(Weight::new(0.0).is_ok());
        assert!(Fraction::new(1.0).is_err());
        assert!(Epochs::new(0).is_err());
        assert!(NodeId::new("../etc").is_err());
        assert!(NodeId::new("").is_err());
        assert!(NodeId::new("peer_1").is_ok());
        assert!(ExperimentName::new("a/b").is_err());
    }
}
