//! The `cohort` command line; all logic lives in the library.

/// mimalloc instead of the system allocator: a training step allocates and frees tensors of
/// megabytes every few microseconds, which glibc's malloc serves with fresh `mmap`s (a page fault
/// per 4 KiB on every use); mimalloc reuses them. Measured here (`cohort bench`, MLP
/// 784-1200-1200-10, batch 128, one model): 37 → 42-63 steps/s over five runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
