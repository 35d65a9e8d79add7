//! Build-time pre-initialisation: `wizer-initialize` loads the model into linear memory, and
//! `stt-host snapshot` (wasmtime-wizer) saves the instance's memory as the component's initial
//! state, so every per-request instance starts with the weights mapped copy-on-write.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use stt_engine::{Engine, Precision};

/// The model loaded at snapshot time, with the folder it came from.
static PRELOADED: OnceLock<(PathBuf, Arc<Engine>)> = OnceLock::new();

/// The preloaded engine, when it was loaded from `dir` in `precision`.
pub fn engine_for(dir: &Path, precision: Precision) -> Option<Arc<Engine>> {
    PRELOADED
        .get()
        .filter(|(d, e)| d == dir && e.model.precision == precision)
        .map(|(_, e)| e.clone())
}

/// While set, freed heap memory is zeroed. A snapshot keeps every non-zero byte of linear
/// memory, so the model file's bytes and the f16 → f32 staging tensors, freed once the model is
/// built, would otherwise double the image. dlmalloc (wasi-libc's allocator) has no such option,
/// hence this thin wrapper; outside initialisation it costs one relaxed load per free.
static ZERO_ON_FREE: AtomicBool = AtomicBool::new(false);

struct ZeroingAllocator;

// SAFETY: every call is forwarded to `System` with the same arguments; zeroing touches only the
// block being freed, which the caller owns until `dealloc` returns.
unsafe impl GlobalAlloc for ZeroingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ZERO_ON_FREE.load(Ordering::Relaxed) {
            unsafe { ptr.write_bytes(0, layout.size()) };
            // LLVM deletes stores into memory about to be freed; the zeroes must stay.
            std::hint::black_box(ptr);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !ZERO_ON_FREE.load(Ordering::Relaxed) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: same alignment, non-zero size (realloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { System.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: ZeroingAllocator = ZeroingAllocator;

unsafe extern "C" {
    /// wasi-libc caches the preopened directories' handles; they belong to the snapshotting
    /// instance and must be looked up again by each new one.
    fn __wasilibc_reset_preopens();
    /// Same for the environment.
    fn __wasilibc_deinitialize_environ();
}

wit_bindgen::generate!({
    inline: "
        package stt:preload;
        world preload {
            /// Called once by wasmtime-wizer at build time, never per request.
            export wizer-initialize: func();
        }
    ",
    world: "preload",
});

struct Preload;

impl Guest for Preload {
    fn wizer_initialize() {
        ZERO_ON_FREE.store(true, Ordering::Relaxed);
        let config = crate::variables::config();
        let dir = config.model_dir;
        // Build time, not request time: a model that does not load fails the build (the panic's
        // message is the build's error). Nothing else may be written to stdout/stderr here: their
        // handles would not survive into the snapshot.
        let engine = Engine::load_dir_with(&dir, config.precision)
            .unwrap_or_else(|e| panic!("preloading {}: {e}", dir.display()));
        let _ = PRELOADED.set((dir, Arc::new(engine)));
        ZERO_ON_FREE.store(false, Ordering::Relaxed);
        // SAFETY: plain wasi-libc calls; no file or environment access is in progress.
        unsafe {
            __wasilibc_reset_preopens();
            __wasilibc_deinitialize_environ();
        }
    }
}

export!(Preload);
