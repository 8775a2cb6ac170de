//! The `cohort` command line; all logic lives in the library.

fn main() {
    std::process::exit(cohort::cli::main());
}
