//! cohort's integration tests, one module per topic, linked into one binary (linking burn once
//! instead of once per file). `cargo test --release` runs them all; `cargo test --release --test
//! it -- <topic>::` runs one topic, and `scripts/test.sh` runs every group with its time.

mod common;

mod architecture;
mod cifar100;
mod cli;
mod config;
mod data;
mod engine;
mod errors;
mod fuzz_inputs;
mod kernels;
mod losses;
mod methods;
mod models;
mod placement;
mod plot;
mod properties;
mod pytorch;
mod stats;
mod tensorboard;
mod user_data;
mod wiring;

/// The test binary's allocator: the system's, except that a single allocation over 2 GiB is
/// refused (the process then aborts, naming the size), so that a reader which sizes a buffer by
/// an unchecked header field fails its test (tests/it/fuzz_inputs.rs) instead of passing on a
/// machine with memory to spare.
struct Capped;

const ALLOCATION_LIMIT: usize = 2 << 30;

// SAFETY: defers to the system allocator for every allocation it grants.
unsafe impl std::alloc::GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: as `alloc`.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;
