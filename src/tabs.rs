//! Several tabs (or instances) on one database, told apart with Web Locks.
//!
//! Each live instance holds the lock `tandem:<db>:client:<clientId>` for its lifetime; the
//! browser releases it when the tab goes away. Every stored transaction names its owner, so a
//! record whose owner's lock is not held was left by a closed instance and may be adopted.
//! Adopters take `tandem:<db>:adopt` first, so two of them never interleave their
//! check-and-rewrite (which itself is one IndexedDB transaction, see `storage`).
//!
//! `navigator.locks` is bound here directly: web-sys has `LockManager` only behind its
//! unstable APIs.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks`.
    #[derive(Clone)]
    pub type LockManager;

    #[wasm_bindgen(method, catch)]
    fn request(this: &LockManager, name: &str, options: &Object, callback: &JsValue) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn query(this: &LockManager) -> Result<Promise, JsValue>;
}

/// `navigator.locks`, where the browser has it (secure contexts).
pub fn lock_manager() -> Option<LockManager> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

pub fn client_lock_name(database: &str, client_id: &str) -> String {
    format!("tandem:{database}:client:{client_id}")
}

pub fn adopt_lock_name(database: &str) -> String {
    format!("tandem:{database}:adopt")
}

/// Client ids of the instances whose lock appears among `held` lock names.
pub fn live_owners<'a>(database: &str, held: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let prefix = client_lock_name(database, "");
    held.into_iter().filter_map(|name| name.strip_prefix(&prefix)).map(str::to_string).collect()
}

/// A held lock, released when dropped (or earlier with [`HeldLock::release`]).
pub struct HeldLock {
    release: Function,
}

impl HeldLock {
    pub fn release(&self) {
        self.release.call0(&JsValue::UNDEFINED).ok();
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.release();
    }
}

/// Takes the exclusive lock `name`. With `if_available`, answers `None` at once when another
/// holder has it; otherwise waits for it.
pub async fn acquire(manager: &LockManager, name: &str, if_available: bool) -> Result<Option<HeldLock>, JsValue> {
    // The lock is held until the promise the callback returns settles: `hold`, resolved by
    // `HeldLock::release`.
    let (hold, release, _) = crate::tasks::promise_with_resolvers();
    let (granted, grant, _) = crate::tasks::promise_with_resolvers();
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let held = !lock.is_null();
        grant.call1(&JsValue::UNDEFINED, &JsValue::from_bool(held)).ok();
        if held {
            hold.into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = Object::new();
    if if_available {
        crate::convert::set(&options, "ifAvailable", &JsValue::TRUE);
    }
    let requested = manager.request(name, &options, &callback)?;
    // Raced so that a request failing before it grants anything (a security error) does not
    // leave us waiting; once granted, `requested` stays pending until the lock is released.
    let held = JsFuture::from(Promise::race(&Array::of2(&granted, &requested))).await?;
    Ok(held.is_truthy().then_some(HeldLock { release }))
}

/// Names of every lock held right now in this origin.
pub async fn held_lock_names(manager: &LockManager) -> Result<Vec<String>, JsValue> {
    let snapshot = JsFuture::from(manager.query()?).await?;
    let held = Reflect::get(&snapshot, &"held".into())?;
    Ok(held
        .dyn_into::<Array>()
        .map(|held| held.iter().filter_map(|lock| Reflect::get(&lock, &"name".into()).ok()?.as_string()).collect())
        .unwrap_or_default())
}

/// Watches other instances' locks: each watch resolves once its owner let go of its lock (the
/// tab closed). All watches end when this is dropped.
pub struct Watches {
    manager: LockManager,
    abort: AbortController,
    names: RefCell<Vec<String>>,
}

impl Watches {
    pub fn new(manager: LockManager) -> Option<Watches> {
        Some(Watches { manager, abort: AbortController::new().ok()?, names: RefCell::new(Vec::new()) })
    }

    /// A future resolving `true` when the lock `name` was released by its holder, `false` when
    /// the watch was cancelled; `None` if `name` is already watched.
    pub fn watch(&self, name: &str) -> Option<impl std::future::Future<Output = bool>> {
        if self.names.borrow().iter().any(|n| n == name) {
            return None;
        }
        self.names.borrow_mut().push(name.to_string());
        let signal: AbortSignal = self.abort.signal();
        let options = Object::new();
        crate::convert::set(&options, "signal", &signal);
        // Granted means the holder is gone; give it back at once (the callback returns).
        let callback = Closure::once_into_js(|_lock: JsValue| JsValue::UNDEFINED);
        let requested = self.manager.request(name, &options, &callback);
        Some(async move {
            match requested {
                Ok(promise) => JsFuture::from(promise).await.is_ok(),
                Err(_) => false,
            }
        })
    }

    /// Forgets a watch that ended, so the name can be watched again.
    pub fn ended(&self, name: &str) {
        self.names.borrow_mut().retain(|n| n != name);
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn live_owners_are_read_from_this_databases_client_locks_only() {
        let held =
            ["tandem:db:client:a1", "tandem:db:adopt", "tandem:other:client:b2", "tandem:db:client:c3", "unrelated"];
        assert_eq!(live_owners("db", held), vec!["a1".to_string(), "c3".to_string()]);
    }
}
