//! Running a WASI command component (`wasi:cli/run`) with captured output: how the tests and
//! benchmarks run the engine inside WebAssembly without HTTP (the `stt` command).

use std::path::PathBuf;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxView, WasiView};

struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// A read-only directory of the host, visible to the guest at `guest`.
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
}

#[derive(Debug)]
pub struct CommandOutput {
    /// The guest's exit code; a trap is an error instead.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

const OUTPUT_CAP: usize = 64 << 20;

/// Runs the command with `args` (the first is the program name) and the given directories.
pub fn run(
    engine: &Engine,
    component: &Component,
    args: &[String],
    preopens: &[Preopen],
) -> wasmtime::Result<CommandOutput> {
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let stdout = MemoryOutputPipe::new(OUTPUT_CAP);
    let stderr = MemoryOutputPipe::new(OUTPUT_CAP);
    let mut builder = WasiCtx::builder();
    builder.args(args).stdout(stdout.clone()).stderr(stderr.clone());
    for p in preopens {
        builder.preopened_dir(&p.host, &p.guest, FsPerms::ReadOnly)?;
    }
    let mut store = Store::new(engine, State { ctx: builder.build(), table: ResourceTable::new() });
    // No budget here; matters only on an engine compiled with epoch checks (as the server's).
    store.set_epoch_deadline(u64::MAX / 2);
    let command = Command::instantiate(&mut store, component, &linker)?;
    let exit_code = match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => exit.0,
            None => return Err(e),
        },
    };
    let text = |p: &MemoryOutputPipe| String::from_utf8_lossy(&p.contents()).into_owned();
    Ok(CommandOutput { exit_code, stdout: text(&stdout), stderr: text(&stderr) })
}
