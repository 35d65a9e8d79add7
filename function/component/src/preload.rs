//! Build-time pre-initialisation: `wizer-initialize` loads the models (and the voice activity
//! detector they share) into linear memory, and `stt-host snapshot` (wasmtime-wizer) saves the
//! instance's memory as the component's initial state, so every per-request instance starts
//! with the weights mapped copy-on-write.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::models::Model;

/// What the snapshot holds: the models loaded at build time and the digest of the code.
struct Preloaded {
    models: Vec<Arc<Model>>,
    component_digest: Option<String>,
}

static PRELOADED: OnceLock<Preloaded> = OnceLock::new();

/// The models loaded at snapshot time (none in a component that was not pre-initialised).
pub fn models() -> &'static [Arc<Model>] {
    PRELOADED.get().map_or(&[], |p| &p.models)
}

/// `sha256:<hex>` of the component the snapshot was made from, as `stt-host snapshot` told it.
pub fn component_digest() -> Option<String> {
    PRELOADED.get().and_then(|p| p.component_digest.clone())
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
        // Build time, not request time: a model that does not load fails the build (the panic's
        // message is the build's error). Nothing else may be written to stdout/stderr here: their
        // handles would not survive into the snapshot.
        let vad = crate::models::load_vad(&config.models_root)
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("preloading the voice activity detector: {e}"));
        let models = config
            .models
            .iter()
            .map(|name| {
                Model::load(&config.models_root, name, config.precision, Some(vad.clone()))
                    .map(Arc::new)
                    .unwrap_or_else(|e| panic!("preloading {name}: {e}"))
            })
            .collect();
        let component_digest =
            std::env::var(stt_contract::snapshot::DIGEST_ENV).ok().map(|d| format!("sha256:{d}"));
        let _ = PRELOADED.set(Preloaded { models, component_digest });
        ZERO_ON_FREE.store(false, Ordering::Relaxed);
        // SAFETY: plain wasi-libc calls; no file or environment access is in progress.
        unsafe {
            __wasilibc_reset_preopens();
            __wasilibc_deinitialize_environ();
        }
    }
}

export!(Preload);
