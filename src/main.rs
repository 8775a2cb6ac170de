//! The `cohort` command line; all logic lives in the library.

fn main() {
    // Behave like other Unix tools when the reader of stdout goes away (`cohort ... | head`):
    // end quietly instead of panicking on the next print. Rust ignores SIGPIPE by default.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(cohort::cli::main());
}
