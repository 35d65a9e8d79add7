//! Serving the function: one fresh instance per request from a pre-instantiated component,
//! as Spin does. (Slots, queue, CPU budget, metrics and drain are issue 4's next steps.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::manifest::App;
use crate::variables::{self, Variables};

struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    variables: Variables,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}

pub struct Server {
    pre: ProxyPre<InstanceState>,
    files: Vec<(PathBuf, String)>,
    variables: Variables,
}

impl Server {
    /// Compiles (or loads from `cache_dir`) the manifest's component and links it.
    pub fn new(app: &App, cache_dir: &std::path::Path) -> anyhow::Result<Self> {
        let config = Config::new();
        let engine = Engine::new(&config)?;
        let component = crate::component_cache::load(&engine, &app.source, cache_dir)?;
        let mut linker: Linker<InstanceState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        variables::fermyon::spin::variables::add_to_linker::<_, HasSelf<Variables>>(
            &mut linker,
            |s: &mut InstanceState| &mut s.variables,
        )?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self { pre, files: app.files.clone(), variables: Variables(Arc::new(app.variables.clone())) })
    }

    async fn handle(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (host, guest) in &self.files {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)?;
        }
        let state = InstanceState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            variables: self.variables.clone(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(store, req, out).await
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                let e: anyhow::Error = match task.await {
                    Ok(Ok(())) => anyhow::anyhow!("the function returned no response"),
                    Ok(Err(e)) => e.into(),
                    Err(e) => e.into(),
                };
                Err(e.context("the function instance failed"))
            }
        }
    }

    /// Accepts connections on `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> anyhow::Result<()> {
        loop {
            let (client, addr): (_, SocketAddr) = listener.accept().await.context("accept")?;
            let server = self.clone();
            tokio::task::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { server.handle(req).await }
                });
                if let Err(e) =
                    http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(client), service).await
                {
                    eprintln!("connection from {addr}: {e}");
                }
            });
        }
    }
}
