//! The `cohort` command line; all logic lives in the library.

/// mimalloc instead of the system allocator: a training step allocates and frees tensors of
/// megabytes every few microseconds, which glibc's malloc serves with fresh `mmap`s (a page fault
/// per 4 KiB on every use); mimalloc reuses them. Measured here (`cohort bench`, MLP
/// 784-1200-1200-10, batch 128, one model): 37 → 42-63 steps/s over five runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's option API (mimalloc.h; linked in through the `mimalloc` crate). `mi_option_t` is a
// C enum; `mi_option_purge_delay` is its 16th entry (15) in both mimalloc v2 and v3.
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Freed memory stays committed (mimalloc's `purge_delay` −1, unless `MIMALLOC_PURGE_DELAY` is
/// set): by default mimalloc returns freed pages to the OS after 10 ms, and a training step's
/// buffers of megabytes, freed and allocated again every step, then come back as fresh pages the
/// kernel must zero (`clear_page_erms`: 10 % of a ResNet-32 step in a profile). Measured here
/// (`cohort bench --models resnet32 --peers 1`, two runs each): 0.49–0.53 → 0.63 steps/s. The
/// process keeps its peak footprint instead of shrinking between steps.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one option value; called first thing in main, before any thread exists
        // (mimalloc: "this function is not thread safe").
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

fn main() {
    // Behave like other Unix tools when the reader of stdout goes away (`cohort ... | head`):
    // end quietly instead of panicking on the next print. Rust ignores SIGPIPE by default.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    std::process::exit(cohort::cli::main());
}
