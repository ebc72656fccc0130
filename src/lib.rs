//! tandem: WebAssembly bindings and the browser runtime of Tandem.
//!
//! The `#[wasm_bindgen]` surface (`TandemClient`, `Collection`, `Transaction`) is a facade over
//! `tandem-core`: it converts (`convert`), drives the engine (`driver`), stores
//! (`storage`), recovers after a reload and between tabs (`recovery`, `tabs`); `server_sync` is the
//! tandem-server preset (a sync layer and mutation function driving `tandem_core::session`).

mod calls;
mod change_objects;
mod client;
mod collection;
mod convert;
mod driver;
mod errors;
mod merge;
mod recovery;
mod server_sync;
pub mod storage;
mod sync;
mod tabs;
mod tasks;
mod timers;
mod transaction;
mod update_input;

pub use client::TandemClient;
pub use collection::Collection;
pub use server_sync::ServerSync;
pub use transaction::TransactionHandle;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = include_str!("types.d.ts");
