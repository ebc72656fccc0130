//! `TandemClient`: created at once, opens storage and recovers in the background, and hands
//! out collections.

use std::rc::Rc;

use js_sys::{Array, Function, Promise};
use tandem_core::{Engine, EngineConfig, TransactionInput};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::collection::Collection;
use crate::convert::{self, OpenOptions, Persistence};
use crate::driver::{CollectionSetup, Driver};
use crate::errors::Error;
use crate::recovery::{StorageOpening, StorageStart};
use crate::storage::{IndexedDbStorage, Storage};
use crate::timers::now;
use crate::transaction::TransactionHandle;

#[wasm_bindgen]
pub struct TandemClient {
    driver: Rc<Driver>,
}

#[wasm_bindgen]
impl TandemClient {
    /// Creates a client at once, in memory, and opens its storage in the background: it takes
    /// this instance's Web Lock, opens IndexedDB, loads the synced cache into the collections
    /// created meanwhile (whose sync setups wait for it, to get the stored sync position), adopts
    /// the work left by closed instances (the previous page load among them) and writes every
    /// transaction made meanwhile. Persist calls wait for that write, so nothing reaches the
    /// network before it is on disk. `ready` settles when done. Storage failures are reported
    /// through `onError` and the client stays in memory.
    pub fn create(
        #[wasm_bindgen(unchecked_optional_param_type = "TandemOptions")] options: JsValue,
    ) -> Result<TandemClient, JsValue> {
        let options = convert::open_options(&options)?;
        Ok(Self::start(options, None))
    }

    /// `create`, then waits for `ready`. Throws `ClientIdInUseError` (and closes the client) if
    /// an app-chosen `clientId` is held by a live instance.
    pub async fn open(
        #[wasm_bindgen(unchecked_optional_param_type = "TandemOptions")] options: JsValue,
    ) -> Result<TandemClient, JsValue> {
        let client = Self::create(options)?;
        client.started().await?;
        Ok(client)
    }

    /// Resolves once storage is open, the cache loaded, the outbox recovered and everything
    /// accepted so far written (at once for `persistence: 'memory'`). Rejects only with
    /// `ClientIdInUseError`; the client then works in memory.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<void>")]
    pub fn ready(&self) -> Promise {
        self.driver.ready()
    }

    /// Creates a collection. Its cached synced data and its restored transactions are visible
    /// as soon as this returns — or, while storage is still opening, once it is open (`ready`).
    /// `sync.setup` is called once the synced cache is loaded (at once if it is).
    pub fn collection(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CollectionOptions")] options: JsValue,
    ) -> Result<Collection, JsValue> {
        let options = convert::collection_options(&options)?;
        let name = options.id.clone();
        let shared_name = self.driver.add_collection(CollectionSetup {
            name: name.clone(),
            key_field: options.key_field,
            strategy: options.strategy,
            persist: options.persist,
            await_sync: options.await_sync,
            merge: options.merge,
            local: options.setup.is_none(),
        })?;
        if let Some(setup) = options.setup {
            self.driver.start_sync_after_cache(name.clone(), setup);
        }
        if let Some(close) = options.sync_close {
            self.driver.sync_closers.borrow_mut().push(close);
        }
        Ok(Collection::new(self.driver.clone(), shared_name))
    }

    /// One all-or-nothing transaction across collections. Its persist (and awaitSync) are
    /// those of the collection of its first mutation.
    pub fn mutate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "MutationInput[]")] mutations: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "MutateOptions")] options: JsValue,
    ) -> Result<TransactionHandle, JsValue> {
        let mutations = convert::mutations_from_js(&mutations)?;
        let options = convert::mutate_options(&options)?;
        let input = TransactionInput {
            mutations,
            strategy: options.strategy.unwrap_or_default(),
            metadata: options.metadata,
            ..Default::default()
        };
        let id = self.driver.mutate(now(), input, options.merge)?;
        Ok(self.driver.transaction_handle(&id))
    }

    /// Every transaction this client knows, oldest first, with its full history.
    #[wasm_bindgen(unchecked_return_type = "TransactionRecord[]")]
    pub fn transactions(&self) -> Result<Array, JsValue> {
        let engine = self.driver.engine.try_borrow().map_err(|_| Error::Reentrant)?;
        Ok(engine.transactions().map(convert::transaction_to_js).collect())
    }

    #[wasm_bindgen(unchecked_return_type = "TransactionRecord | undefined")]
    pub fn transaction(&self, id: &str) -> Result<JsValue, JsValue> {
        let engine = self.driver.engine.try_borrow().map_err(|_| Error::Reentrant)?;
        Ok(engine.transaction(id).map_or(JsValue::UNDEFINED, convert::transaction_to_js))
    }

    /// Calls `callback` with `[{id, state}]` whenever transactions change state.
    #[wasm_bindgen(js_name = subscribeTransactions, unchecked_return_type = "() => void")]
    pub fn subscribe_transactions(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(events: TransactionEvent[]) => void")] callback: Function,
    ) -> Function {
        let id = self.driver.subscribe_transactions(callback);
        let driver = Rc::downgrade(&self.driver);
        unsubscriber(move || {
            if let Some(driver) = driver.upgrade() {
                driver.unsubscribe_transactions(id);
            }
        })
    }

    /// Calls `callback` with each error the library cannot throw to a caller (`StorageError`
    /// with a `kind`, `SyncSetupError`, `AwaitSyncError`, `MergeError`, `SubscriberError`).
    /// Errors raised before the first subscription (e.g. while opening) are delivered to it.
    #[wasm_bindgen(js_name = onError, unchecked_return_type = "() => void")]
    pub fn on_error(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(error: TandemError) => void")] callback: Function,
    ) -> Function {
        let id = self.driver.on_error(callback);
        let driver = Rc::downgrade(&self.driver);
        unsubscriber(move || {
            if let Some(driver) = driver.upgrade() {
                driver.off_error(id);
            }
        })
    }

    /// Stops this instance: releases its lock and timers; the outbox stays for whoever opens
    /// the database next (or another live tab, which adopts it). Resolves once the last
    /// writes are on disk.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        let closing = self.driver.close();
        crate::tasks::promise(async move {
            closing.await;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(getter, js_name = clientId)]
    pub fn client_id(&self) -> String {
        self.driver.client_id.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn database(&self) -> String {
        self.driver.database.clone()
    }

    /// Where transactions are kept now: `'opening'` until storage is open (they are written
    /// then), `'memory'` by choice or after a storage failure.
    #[wasm_bindgen(getter, unchecked_return_type = "'indexeddb' | 'memory' | 'opening'")]
    pub fn persistence(&self) -> String {
        if self.driver.is_starting() {
            return "opening".into();
        }
        match self.driver.storage.borrow().is_some() {
            true => Persistence::IndexedDb.as_str().into(),
            false => Persistence::Memory.as_str().into(),
        }
    }

    /// The newest hybrid-logical-clock timestamp issued or observed (Unix µs).
    #[wasm_bindgen(getter, js_name = lastTimestamp)]
    pub fn last_timestamp(&self) -> f64 {
        self.driver.engine.try_borrow().map_or(0.0, |e| e.last_timestamp() as f64)
    }
}

impl TandemClient {
    /// Opens a client on the given storage instead of IndexedDB (tests wrap the real storage
    /// to inject failures). `options.persistence` is ignored.
    pub async fn open_with_storage(options: JsValue, storage: Rc<dyn Storage>) -> Result<TandemClient, JsValue> {
        let client = Self::create_with_storage(options, Box::pin(async move { Ok(storage) }))?;
        client.started().await?;
        Ok(client)
    }

    /// Creates a client whose storage is what `opening` resolves to, instead of IndexedDB:
    /// tests decide when (and whether) storage becomes available. `options.persistence` is
    /// ignored.
    pub fn create_with_storage(options: JsValue, opening: StorageOpening) -> Result<TandemClient, JsValue> {
        let options = convert::open_options(&options)?;
        Ok(Self::start(options, Some(opening)))
    }

    /// Waits for the background start; on `ClientIdInUseError` closes the client and fails.
    async fn started(&self) -> Result<(), JsValue> {
        if let Err(error) = self.driver.started().await {
            self.driver.close().await;
            return Err(error);
        }
        Ok(())
    }

    fn start(options: OpenOptions, opening: Option<StorageOpening>) -> TandemClient {
        let given_id = options.client_id.is_some();
        let client_id = options.client_id.clone().unwrap_or_else(random_id);
        let engine = Engine::new(EngineConfig {
            client_id,
            seed: (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64,
            retry: options.retry,
            attempt_timeout_ms: options.attempt_timeout_ms,
            history: options.history,
        });
        let driver = Driver::new(engine, options.database.clone());
        let opening = match opening {
            Some(opening) => opening,
            None if options.persistence == Persistence::Memory => return TandemClient { driver },
            None => {
                let (database, timeout) = (options.database.clone(), options.open_timeout_ms);
                Box::pin(async move {
                    IndexedDbStorage::open(&database, timeout).await.map(|s| Rc::new(s) as Rc<dyn Storage>)
                })
            }
        };
        driver.start_storage(StorageStart { opening, given_id, adopt_interval_ms: options.adopt_interval_ms });
        TandemClient { driver }
    }
}

/// A random client id: 12 base-36 characters.
fn random_id() -> String {
    let mut id = String::with_capacity(12);
    for _ in 0..12 {
        let digit = (js_sys::Math::random() * 36.0) as u32;
        id.push(std::char::from_digit(digit.min(35), 36).expect("a base-36 digit"));
    }
    id
}

/// A JS function that runs `f` (any number of times).
fn unsubscriber(f: impl FnMut() + 'static) -> Function {
    Closure::<dyn FnMut()>::new(f).into_js_value().unchecked_into()
}
