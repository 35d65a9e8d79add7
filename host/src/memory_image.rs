//! How stock wasmtime settings (Spin's, SpinKube's) will treat a component's initial memory.
//!
//! wasmtime maps a module's data segments copy-on-write from one shared image only when the
//! initialised range is less than twice the bytes the segments hold, or smaller than
//! `memory_guaranteed_dense_image_size` (16 MiB by default); otherwise it copies the segments
//! into every new instance (`try_static_init` in wasmtime-environ). `stt-host` raises that
//! threshold; Spin cannot be told to, so a snapshot served under Spin must be dense by layout.

use thiserror::Error;
use wasmparser::{DataKind, Encoding, Operator, Parser, Payload};

/// wasmtime's default `memory_guaranteed_dense_image_size`.
pub const DEFAULT_DENSE_IMAGE_SIZE: u64 = 16 << 20;

#[derive(Debug, Error)]
#[error("reading the component's data segments: {0}")]
pub struct ImageError(String);

/// The initial contents of one linear memory: what its active data segments hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryImage {
    /// Bytes the data segments hold (zeros inside a segment count).
    pub data_bytes: u64,
    /// From the lowest to the highest initialised address.
    pub span_bytes: u64,
}

impl MemoryImage {
    /// Whether wasmtime with default settings maps this image copy-on-write.
    pub fn mapped_by_default(&self) -> bool {
        self.span_bytes < self.data_bytes.saturating_mul(2)
            || self.span_bytes < DEFAULT_DENSE_IMAGE_SIZE
    }
}

/// The memory images of every core module in a component (or module), largest span first;
/// memories without active data segments are left out.
pub fn memory_images(wasm: &[u8]) -> Result<Vec<MemoryImage>, ImageError> {
    let err = |e: wasmparser::BinaryReaderError| ImageError(e.to_string());
    // One entry per (module, memory index): (data bytes, lowest address, end of highest).
    let mut images: Vec<(usize, u32, u64, u64, u64)> = Vec::new();
    let mut modules = 0usize;
    let mut stack: Vec<usize> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(err)? {
            Payload::Version { encoding: Encoding::Module, .. } => {
                modules += 1;
                stack.push(modules);
            }
            Payload::Version { encoding: Encoding::Component, .. } => stack.push(0),
            Payload::End(_) => {
                stack.pop();
            }
            Payload::DataSection(reader) => {
                let module = stack.last().copied().unwrap_or(0);
                for data in reader {
                    let data = data.map_err(err)?;
                    let DataKind::Active { memory_index, offset_expr } = data.kind else {
                        continue;
                    };
                    // Only constant offsets can become an image: wasmtime copies a module
                    // with any other into every instance, so it cannot pass.
                    let Some(Ok(Operator::I32Const { value })) =
                        offset_expr.get_operators_reader().into_iter().next()
                    else {
                        return Err(ImageError("a data segment at a non-constant offset".into()));
                    };
                    let (start, len) = (u64::from(value.cast_unsigned()), data.data.len() as u64);
                    if len == 0 {
                        continue;
                    }
                    match images.iter_mut().find(|i| i.0 == module && i.1 == memory_index) {
                        Some(i) => {
                            i.2 += len;
                            i.3 = i.3.min(start);
                            i.4 = i.4.max(start + len);
                        }
                        None => images.push((module, memory_index, len, start, start + len)),
                    }
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<MemoryImage> = images
        .into_iter()
        .map(|(_, _, data, lo, hi)| MemoryImage { data_bytes: data, span_bytes: hi - lo })
        .collect();
    out.sort_by_key(|i| std::cmp::Reverse(i.span_bytes));
    Ok(out)
}

/// The largest initial size any linear memory of the component declares, bytes.
pub fn largest_initial_memory(wasm: &[u8]) -> Result<u64, ImageError> {
    let mut largest = 0u64;
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::MemorySection(reader) = payload.map_err(|e| ImageError(e.to_string()))? {
            for m in reader {
                let m = m.map_err(|e| ImageError(e.to_string()))?;
                let page = 1u64 << m.page_size_log2.unwrap_or(16);
                largest = largest.max(m.initial.saturating_mul(page));
            }
        }
    }
    Ok(largest)
}

#[derive(Debug, Error)]
pub enum FitError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(
        "the instance memory limit of {limit_mib} MiB is below the {needed_mib} MiB the component starts with; set STT_INSTANCE_MEMORY_MB (--instance-memory-mb) to at least {needed_mib}"
    )]
    TooSmall { limit_mib: u64, needed_mib: u64 },
}

/// Whether instances of the component `wasm` can start within `limit` bytes of memory.
pub fn check_fits(wasm: &[u8], limit: usize) -> Result<(), FitError> {
    let needed = largest_initial_memory(wasm)?;
    if needed > limit as u64 {
        return Err(FitError::TooSmall {
            limit_mib: limit as u64 >> 20,
            needed_mib: needed.div_ceil(1 << 20),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with one memory and active segments at the given (offset, length).
    fn module(segments: &[(u32, usize)]) -> Vec<u8> {
        use wasm_encoder::{ConstExpr, DataSection, MemorySection, MemoryType, Module};
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 400,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut data = DataSection::new();
        for &(offset, len) in segments {
            data.active(0, &ConstExpr::i32_const(offset.cast_signed()), vec![1u8; len]);
        }
        let mut m = Module::new();
        m.section(&memories).section(&data);
        m.finish()
    }

    #[test]
    fn the_initial_memory_is_read_from_the_memory_section() {
        // 400 pages of 64 KiB.
        assert_eq!(largest_initial_memory(&module(&[])).expect("parse"), 400 << 16);
    }

    #[test]
    fn a_sparse_image_is_copied_and_a_dense_one_mapped() {
        let mib = 1 << 20;
        // 2 MiB of data spread over 20 MiB: over the default threshold and sparse.
        let sparse = memory_images(&module(&[(0, mib), (20 * mib as u32 - mib as u32, mib)]))
            .expect("parse");
        assert_eq!(
            sparse,
            vec![MemoryImage { data_bytes: 2 * mib as u64, span_bytes: 20 * mib as u64 }]
        );
        assert!(!sparse[0].mapped_by_default());
        // Small images are always mapped.
        let small = memory_images(&module(&[(0, 1024), (8 * mib as u32, 1024)])).expect("parse");
        assert!(small[0].mapped_by_default());
        // More than half of the span initialised.
        let dense = memory_images(&module(&[(0, 11 * mib), (20 * mib as u32 - mib as u32, mib)]))
            .expect("parse");
        assert!(dense[0].mapped_by_default(), "{dense:?}");
    }

    #[test]
    fn a_segment_at_a_non_constant_offset_is_refused() {
        use wasm_encoder::{
            ConstExpr, DataSection, EntityType, GlobalType, ImportSection, MemorySection,
            MemoryType, Module, ValType,
        };
        let mut imports = ImportSection::new();
        let base = GlobalType { val_type: ValType::I32, mutable: false, shared: false };
        imports.import("env", "base", EntityType::Global(base));
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut data = DataSection::new();
        data.active(0, &ConstExpr::global_get(0), vec![1u8; 16]);
        let mut m = Module::new();
        m.section(&imports).section(&memories).section(&data);
        assert!(memory_images(&m.finish()).is_err());
    }
}
