//! `stt-host snapshot`: pre-initialises a component with wasmtime-wizer. The component's
//! `wizer-initialize` export runs once, here, with the manifest's files and variables (it loads
//! the model); the instance's memory then becomes the new component's initial memory, so that
//! every per-request instance starts with the model ready, mapped copy-on-write.

use std::path::Path;
use std::sync::Arc;

use thiserror::Error;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasmtime_wizer::Wizer;

use crate::instance::{InstanceReport, InstanceState};
use crate::manifest::HttpComponent;
use crate::memory_image::{ImageError, MemoryImage, memory_images};
use crate::variables::Variables;

/// The export wasmtime-wizer calls (its default name).
pub const INIT_FUNC: &str = "wizer-initialize";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("snapshotting component `{id}`: {message}")]
    Wizer { id: String, message: String },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(
        "the snapshot's initial memory is sparse ({data} MiB of data over {span} MiB): wasmtime with default \
         settings (Spin, SpinKube) would copy it into every instance instead of mapping it; the init \
         function must not leave large freed blocks below live data"
    )]
    Sparse { data: u64, span: u64 },
}

/// What `snapshot` wrote.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub bytes: u64,
    /// The largest initial memory's image.
    pub image: MemoryImage,
}

/// Runs `input`'s init function with `component`'s files and variables and writes the
/// pre-initialised component to `output`. Fails, writing nothing, when stock wasmtime settings
/// would copy its initial memory into every instance (see [`crate::memory_image`]).
pub async fn snapshot(
    component: &HttpComponent,
    input: &Path,
    output: &Path,
) -> Result<Snapshot, SnapshotError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SnapshotError::Io { path, source }
    };
    let wizer_err = |e: wasmtime::Error| SnapshotError::Wizer {
        id: component.id.clone(),
        message: format!("{e:#}"),
    };
    let wasm = std::fs::read(input).map_err(io(input))?;
    let engine = Engine::new(&Config::new()).map_err(wizer_err)?;
    let mut linker: Linker<InstanceState> = Linker::new(&engine);
    crate::server::add_imports(&mut linker, InstanceState::variables).map_err(wizer_err)?;

    let mut wasi = WasiCtx::builder();
    // The init function writes nothing unless it fails; then its panic message is the error.
    wasi.inherit_stderr();
    // The code's digest, which the function reports with every response (the snapshot itself
    // cannot hold its own digest).
    wasi.env(stt_contract::snapshot::DIGEST_ENV, sha256_hex(&wasm));
    for (host, guest) in &component.files {
        wasi.preopened_dir(host, guest, FsPerms::ReadOnly).map_err(wizer_err)?;
    }
    let variables = Variables(Arc::new(component.variables.clone()));
    // No memory cap at build time (the store installs no limiter): the model must fit, and the
    // served instances' cap applies to the result.
    let state = InstanceState::new(
        wasi.build(),
        variables,
        usize::MAX,
        Arc::new(InstanceReport::default()),
        Default::default(),
    );
    let mut store = Store::new(&engine, state);
    // wizer reads the whole linear memory back through one call; the default cap on data
    // moved by a single host call (128 MiB) is smaller than a loaded model.
    store.set_hostcall_fuel(usize::MAX / 2);
    let (out, _) = Wizer::new()
        .init_func(INIT_FUNC)
        // wasmtime-wizer 48 writes an invalid component when it removes the export.
        .keep_init_func(true)
        .run_component(
            &mut store,
            &wasm,
            async |store: &mut Store<InstanceState>, c: &Component| {
                linker.instantiate_async(store, c).await
            },
        )
        .await
        .map_err(wizer_err)?;
    let image = memory_images(&out)?
        .into_iter()
        .next()
        .unwrap_or(MemoryImage { data_bytes: 0, span_bytes: 0 });
    if !image.mapped_by_default() {
        return Err(SnapshotError::Sparse {
            data: image.data_bytes >> 20,
            span: image.span_bytes >> 20,
        });
    }
    let tmp = output.with_extension("wasm.tmp");
    std::fs::write(&tmp, &out).map_err(io(&tmp))?;
    std::fs::rename(&tmp, output).map_err(io(output))?;
    Ok(Snapshot { bytes: out.len() as u64, image })
}
