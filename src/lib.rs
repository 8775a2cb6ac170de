//! cohort: collaborative knowledge-distillation research.
//!
//! An experiment file (RON) declares a cohort of networks and the distillation terms between
//! them; cohort trains the cohort concurrently and writes metrics, checkpoints and charts.
//! Data flows one way: experiment file → [`config::Plan`] → engine → results → charts.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod data;
pub mod diagnostics;
pub mod digest;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod kernels;
pub mod losses;
pub mod models;
pub mod plot;
pub mod random;
pub mod results;
pub mod stats;
pub mod sweep;
pub mod values;

pub use error::Error;
