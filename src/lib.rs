//! tandem: WebAssembly bindings and the browser runtime of Tandem.

mod clock;

pub use clock::HybridClock;
