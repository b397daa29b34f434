//! One request in flight in a store, and the host functions behind its handles.
//!
//! Each exchange has a number, and the `input` and `start-response` handles carry it, so a
//! handle that a guest keeps past its request can never touch another request's data: the
//! host functions here look the exchange up by that number ([`WsgiView::exchange_for`]),
//! and a stale handle behaves as if its client went away.
//!
//! They ask of the store's data only what [`WsgiView`] names, so this room never names the
//! store (`super::super::state` implements it).

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable, WasmList, WasmStr};

use super::super::bindings::{Host, HostInput, HostStartResponse, View, WsgiError};
use super::super::output::{MAX_EXC_INFO, OutputBudget, log_safe};
use super::input::{Input, RequestBody};
use super::start_response::{
    QUOTE_MAX, ResponseWriter, StartResponse, check_count, check_size, header_size,
};

/// One request in flight in a store.
pub struct Exchange {
    /// Its number; handles carry it.
    pub id: u64,
    /// `wsgi.input`.
    pub input: RequestBody,
    /// `start_response` and the response it builds.
    pub response: ResponseWriter,
}

/// What the WSGI host functions need of a store's data.
pub trait WsgiView: Send {
    /// The resource table the handles live in.
    fn table(&mut self) -> &mut ResourceTable;
    /// What the instance may still log in this request.
    fn output(&self) -> &OutputBudget;
    /// The exchange a handle belongs to, if it is still the current one; a stale handle
    /// behaves as if its client went away.
    fn exchange_for(&mut self, id: u64) -> Result<&mut Exchange, WsgiError>;
}

impl<T: WsgiView> HostInput for View<'_, T> {
    async fn read(
        &mut self,
        this: Resource<Input>,
        max: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, WsgiError>> {
        let id = self.0.table().get(&this)?.exchange;
        Ok(match self.0.exchange_for(id) {
            Ok(exchange) => exchange.input.read(max).await,
            Err(e) => Err(e),
        })
    }

    async fn read_line(
        &mut self,
        this: Resource<Input>,
        max: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, WsgiError>> {
        let id = self.0.table().get(&this)?.exchange;
        Ok(match self.0.exchange_for(id) {
            Ok(exchange) => exchange.input.read_line(max).await,
            Err(e) => Err(e),
        })
    }

    async fn drop(&mut self, this: Resource<Input>) -> wasmtime::Result<()> {
        self.0.table().delete(this)?;
        Ok(())
    }
}

/// Shadows the generated `start-response.call` so that the headers are copied into the host
/// only once their count and size are known to be within the head's bounds. The canonical
/// ABI lets every entry of the list point at the same bytes: copied first and checked
/// after, 200 entries pointing at 16 MiB of the guest made the host copy 3.2 GiB (until
/// wasmtime's per-call bound trapped the guest). Here they are sized where they lie, and
/// refused with the same `invalid-header` as [`ResponseWriter::start`] gives.
pub fn add_to_linker<T: WsgiView + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    type Params = (
        Resource<StartResponse>,
        String,
        WasmList<(WasmStr, WasmStr)>,
        Option<String>,
    );
    let mut types = linker.instance("cheroot:wsgi/types@0.2.0")?;
    types.func_wrap_async(
        "[method]start-response.call",
        |mut store: StoreContextMut<'_, T>, (this, status, headers, exc_info): Params| {
            Box::new(async move {
                let headers = match lift_headers(&mut store, &status, &headers)? {
                    Ok(headers) => headers,
                    Err(refused) => return Ok((Err(refused),)),
                };
                let mut view = View(store.data_mut());
                let called = HostStartResponse::call(&mut view, this, status, headers, exc_info);
                Ok((called.await?,))
            })
        },
    )?;
    Ok(())
}

/// The headers, copied once they fit: each is sized in the guest's memory, and copied only
/// while the total stays within [`super::start_response::MAX_RESPONSE_HEAD_BYTES`].
fn lift_headers<T>(
    store: &mut StoreContextMut<'_, T>,
    status: &str,
    headers: &WasmList<(WasmStr, WasmStr)>,
) -> wasmtime::Result<Result<Vec<(String, String)>, WsgiError>> {
    if let Err(refused) = check_count(headers.len()) {
        return Ok(Err(refused));
    }
    let mut size = status.len();
    let mut lifted = Vec::with_capacity(headers.len());
    for i in 0..headers.len() {
        let (name, value) = headers.get(&mut *store, i).expect("i < len")?;
        let (name, value) = (name.to_str(&*store)?, value.to_str(&*store)?);
        size += header_size(&name, &value);
        if let Err(refused) = check_size(size) {
            return Ok(Err(refused));
        }
        lifted.push((name.into_owned(), value.into_owned()));
    }
    Ok(Ok(lifted))
}

impl<T: WsgiView> HostStartResponse for View<'_, T> {
    async fn call(
        &mut self,
        this: Resource<StartResponse>,
        status: String,
        headers: Vec<(String, String)>,
        exc_info: Option<String>,
    ) -> wasmtime::Result<Result<(), WsgiError>> {
        let id = self.0.table().get(&this)?.exchange;
        if let Some(exc_info) = &exc_info
            && self.0.output().take_line(exc_info.len().min(MAX_EXC_INFO))
        {
            tracing::warn!(
                exc_info = %log_safe(exc_info, MAX_EXC_INFO),
                status = %log_safe(&status, QUOTE_MAX),
                "application called start_response with exc_info"
            );
        }
        let exchange = match self.0.exchange_for(id) {
            Ok(exchange) => exchange,
            Err(e) => return Ok(Err(e)),
        };
        Ok(exchange
            .response
            .start(&status, headers, exc_info.as_deref()))
    }

    async fn write(
        &mut self,
        this: Resource<StartResponse>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), WsgiError>> {
        let id = self.0.table().get(&this)?.exchange;
        Ok(match self.0.exchange_for(id) {
            Ok(exchange) => exchange.response.write(data).await,
            Err(e) => Err(e),
        })
    }

    async fn drop(&mut self, this: Resource<StartResponse>) -> wasmtime::Result<()> {
        self.0.table().delete(this)?;
        Ok(())
    }
}

impl<T: WsgiView> Host for View<'_, T> {}
