//! `wasi:http` for the guest: wasmtime-wasi-http's implementation, with `outgoing-handler`
//! answered by the host so that sending a request does not leak a handle.
//!
//! `handle` takes the guest's `request-options` as an owned handle, but wasmtime-wasi-http 48
//! only reads it and never deletes it. `waki` passes options with every request, so each
//! request left one handle behind, and a call that makes a request per item (the mailbox
//! settings of a page of 999 users) ran out of its 256. The options only carry timeouts, which
//! the host does not take from a guest (its transport's limits apply), so the host deletes
//! them and sends the request without.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::p2::bindings::LinkOptions;
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::{WasiHttp, WasiHttpView};

/// The interface as wasmtime-wasi-http's WIT names it; a component importing any 0.2 version
/// links to it.
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

type HandleParams = (Resource<HostOutgoingRequest>, Option<Resource<types::RequestOptions>>);
type HandleResult = (Result<Resource<HostFutureIncomingResponse>, types::ErrorCode>,);

/// Links `wasi:http/types` as wasmtime-wasi-http provides it, and `outgoing-handler.handle`
/// as wasmtime-wasi-http's, less the leak.
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    types::add_to_linker::<_, WasiHttp>(linker, &LinkOptions::default().into(), T::http)?;
    linker.instance(OUTGOING_HANDLER)?.func_wrap(
        "handle",
        |mut store: StoreContextMut<'_, T>, (request, options): HandleParams| -> wasmtime::Result<HandleResult> {
            let mut http = store.data_mut().http();
            if let Some(options) = options {
                http.table.delete(options)?;
            }
            let sent = match outgoing_handler::Host::handle(&mut http, request, None) {
                Ok(future) => Ok(future),
                Err(error) => Err(types::Host::convert_error_code(&mut http, error)?),
            };
            Ok((sent,))
        },
    )
}
