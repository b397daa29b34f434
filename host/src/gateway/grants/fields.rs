//! What a guest's wasi:http `fields` may hold of the host's memory.
//!
//! wasi:http is linked for every guest, WSGI applications too, and a `fields` lives in the
//! host, outside the route's `memory`: four instances that each kept a thousand 120 KiB
//! `fields` pinned 450 MiB of the server. Two bounds close that:
//!
//! - one `fields` holds at most [`MAX_FIELDS_BYTES`] (wasmtime-wasi-http's field-size
//!   limit: past it `append`, `set` and `from-list` answer `header-error.size-exceeded`);
//! - an instance holds at most [`MAX_HELD_FIELDS`] `fields` that it made (`constructor`,
//!   `from-list`, `clone`) at once. Past that it traps, and its instance goes with all it
//!   held, as one past its `memory` does.
//!
//! So what one instance's `fields` pin is at most `MAX_HELD_FIELDS × MAX_FIELDS_BYTES`
//! (4 MiB). `fields` the host makes (a request's or a response's headers) are bounded by
//! the message they belong to.

use std::collections::HashSet;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi_http::p2::bindings::http::types::{self as http, HostFields};
use wasmtime_wasi_http::{FieldMap, WasiHttpView};

/// The most bytes one `fields` may hold: names and values, as wasmtime-wasi-http counts
/// them. As much as a response head may take (`MAX_RESPONSE_HEAD_BYTES`).
pub const MAX_FIELDS_BYTES: usize = 64 << 10;
/// The most `fields` an instance may have made and still hold.
pub const MAX_HELD_FIELDS: usize = 64;

/// The `fields` an instance made, by handle.
#[derive(Default)]
pub struct HeldFields {
    reps: HashSet<u32>,
}

impl HeldFields {
    /// Room for one more, once those no longer in the table (dropped, or moved into a
    /// request or response) are forgotten.
    fn make_room(&mut self, table: &ResourceTable) -> wasmtime::Result<()> {
        if self.reps.len() < MAX_HELD_FIELDS {
            return Ok(());
        }
        self.reps
            .retain(|rep| table.get(&Resource::<FieldMap>::new_borrow(*rep)).is_ok());
        if self.reps.len() >= MAX_HELD_FIELDS {
            return Err(wasmtime::format_err!(
                "the instance holds {MAX_HELD_FIELDS} wasi:http fields, the most it may"
            ));
        }
        Ok(())
    }
}

/// What the bound needs of a store's data: wasi:http's view, and the instance's count
/// beside the resource table it counts in.
pub trait FieldsView: WasiHttpView + 'static {
    /// The resource table, and the `fields` the instance made.
    fn held_fields(&mut self) -> (&ResourceTable, &mut HeldFields);
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// Checks that there is room for one more `fields` before making it.
fn room<T: FieldsView>(state: &mut T) -> wasmtime::Result<()> {
    let (table, held) = state.held_fields();
    held.make_room(table)
}

/// Counts a `fields` the instance made.
fn made<T: FieldsView>(state: &mut T, fields: &Resource<FieldMap>) {
    state.held_fields().1.reps.insert(fields.rep());
}

/// Shadows the three ways a guest makes a `fields`, to count them; the rest is
/// wasmtime-wasi-http's.
pub fn add_to_linker<T: FieldsView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    let mut types = linker.instance("wasi:http/types@0.2.12")?;
    types.func_wrap("[constructor]fields", |mut store: Store<'_, T>, (): ()| {
        let state = store.data_mut();
        room(state)?;
        let fields = HostFields::new(&mut state.http())?;
        made(state, &fields);
        Ok((fields,))
    })?;
    types.func_wrap(
        "[static]fields.from-list",
        |mut store: Store<'_, T>, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let state = store.data_mut();
            room(state)?;
            let fields: Result<Resource<FieldMap>, http::HeaderError> =
                match HostFields::from_list(&mut state.http(), entries) {
                    Ok(fields) => Ok(fields),
                    Err(e) => Err(e.downcast()?),
                };
            if let Ok(fields) = &fields {
                made(state, fields);
            }
            Ok((fields,))
        },
    )?;
    types.func_wrap(
        "[method]fields.clone",
        |mut store: Store<'_, T>, (this,): (Resource<FieldMap>,)| {
            let state = store.data_mut();
            room(state)?;
            let fields = HostFields::clone(&mut state.http(), this)?;
            made(state, &fields);
            Ok((fields,))
        },
    )?;
    Ok(())
}
