//! Field names, interned: the records of a collection repeat the same few names, so they share
//! one allocation each instead of every record carrying its own copies.
//!
//! The interner is process-wide and bounded, so an app whose field names are dynamic (ids as
//! keys, say) cannot grow it forever: only short names are interned, and only while it holds
//! fewer than [`MAX_INTERNED`] names; any other name gets an allocation of its own. Interning
//! changes where a name is stored, never what it is: the engine stays deterministic.

use std::sync::{Arc, Mutex, TryLockError};

use rustc_hash::{FxBuildHasher, FxHashMap};

/// A record's field name.
pub type FieldName = Arc<str>;

/// The names of a record's fields, in order. Records with the same names share one, as a JS
/// engine's objects share a hidden class: a record then holds a pointer to its names and a
/// slice of values (pairs of name and value would cost a padded 32 bytes a field in wasm, as
/// a value is 8-byte aligned). A thin pointer, so a record's header stays small.
pub type Shape = Arc<Box<[FieldName]>>;

/// How many recently made shapes are looked through before making another: the records of a
/// batch almost always share one, and an app has a few per collection.
const RECENT_SHAPES: usize = 8;

/// Longest name (in bytes) that is interned; longer names are rarely shared.
pub const MAX_INTERNED_LEN: usize = 32;
/// Most names the interner holds (a few hundred KB at most, with its table).
pub const MAX_INTERNED: usize = 4096;

/// The interner's table. A `Mutex` keeps it sound on multi-threaded native targets; on wasm
/// (single-threaded) locking it costs nothing.
pub(crate) struct Interner {
    /// A map with unused values rather than a set: the engine's transaction index has this
    /// very type, so the wasm client holds one copy of its code.
    names: FxHashMap<FieldName, u64>,
    max_len: usize,
    max_names: usize,
    /// The shapes made last, newest at `next - 1` (a ring): a record whose names match one
    /// shares it, any other gets a shape of its own.
    shapes: Vec<Shape>,
    next: usize,
}

impl Interner {
    pub(crate) const fn new(max_len: usize, max_names: usize) -> Self {
        Interner { names: FxHashMap::with_hasher(FxBuildHasher), max_len, max_names, shapes: Vec::new(), next: 0 }
    }

    pub(crate) fn shape(&mut self, names: &[FieldName]) -> Shape {
        let same = |shape: &&Shape| {
            shape.len() == names.len() && shape.iter().zip(names).all(|(a, b)| same_name(a, b))
        };
        if let Some(shape) = self.shapes.iter().find(same) {
            return shape.clone();
        }
        let shape = Shape::new(names.into());
        if self.shapes.len() < RECENT_SHAPES {
            self.shapes.push(shape.clone());
        } else {
            self.shapes[self.next] = shape.clone();
        }
        self.next = (self.next + 1) % RECENT_SHAPES;
        shape
    }

    pub(crate) fn intern(&mut self, name: &str) -> FieldName {
        if name.len() > self.max_len {
            return FieldName::from(name);
        }
        if let Some((known, _)) = self.names.get_key_value(name) {
            return known.clone();
        }
        let name = FieldName::from(name);
        if self.names.len() < self.max_names {
            self.names.insert(name.clone(), 0);
        }
        name
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

static NAMES: Mutex<Interner> = Mutex::new(Interner::new(MAX_INTERNED_LEN, MAX_INTERNED));

/// `name` as a field name: the shared one when it is (or can be) interned, else a fresh one.
pub fn field_name(name: &str) -> FieldName {
    with_names(|names| names.get(name))
}

/// Runs `f` with the interner locked, for a series of names (one record's) at the cost of one
/// lock. `f` must not call back into this module.
pub(crate) fn with_names<R>(f: impl FnOnce(&mut Names) -> R) -> R {
    let mut names = match NAMES.try_lock() {
        Ok(names) => Some(names),
        // A panic while the lock was held cannot leave the set inconsistent: recover it.
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        // Another thread is interning: wait for it.
        #[cfg(not(target_family = "wasm"))]
        Err(TryLockError::WouldBlock) => Some(NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        // Single-threaded, so never (unless `f` called back); not waiting keeps `lock`, and the
        // assertion formatting it links, out of the wasm client.
        #[cfg(target_family = "wasm")]
        Err(TryLockError::WouldBlock) => None,
    };
    f(&mut Names(names.as_deref_mut()))
}

/// The interner, locked (`None`: busy, so names get allocations of their own).
pub(crate) struct Names<'a>(Option<&'a mut Interner>);

impl Names<'_> {
    pub(crate) fn get(&mut self, name: &str) -> FieldName {
        match &mut self.0 {
            Some(interner) => interner.intern(name),
            None => FieldName::from(name),
        }
    }

    /// The shape of these names, in this order (shared with earlier records' when it can be).
    pub(crate) fn shape(&mut self, names: &[FieldName]) -> Shape {
        match &mut self.0 {
            Some(interner) => interner.shape(names),
            None => Shape::new(names.into()),
        }
    }
}

/// The shape of these names, in this order (allocated only if no recent one has them).
pub(crate) fn shape(names: &[FieldName]) -> Shape {
    with_names(|interner| interner.shape(names))
}

/// Whether two names are equal, by pointer first (interned names share theirs).
#[inline]
pub(crate) fn same_name(a: &FieldName, b: &str) -> bool {
    std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len() || **a == *b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_shared() {
        let a = field_name("title");
        let b = field_name(&String::from("title"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(same_name(&a, &b));
    }

    #[test]
    fn shapes_are_shared_while_among_the_recent_ones() {
        let mut interner = Interner::new(8, 100);
        let names = |interner: &mut Interner, list: &[&str]| list.iter().map(|n| interner.intern(n)).collect::<Vec<_>>();
        let first = names(&mut interner, &["id", "n"]);
        let shape = interner.shape(&first);
        let again = names(&mut interner, &["id", "n"]);
        assert!(Arc::ptr_eq(&shape, &interner.shape(&again)));
        for i in 0..RECENT_SHAPES {
            let other = names(&mut interner, &["id", &format!("f{i}")]);
            interner.shape(&other);
        }
        let after = names(&mut interner, &["id", "n"]);
        let fresh = interner.shape(&after);
        assert!(!Arc::ptr_eq(&shape, &fresh), "forgotten after {RECENT_SHAPES} others");
        assert_eq!(**shape, **fresh);
    }

    #[test]
    fn long_names_get_their_own_allocation() {
        let long = "x".repeat(MAX_INTERNED_LEN + 1);
        let (a, b) = (field_name(&long), field_name(&long));
        assert_eq!(a, b);
        assert!(!Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_full_interner_stops_growing_but_still_shares_what_it_holds() {
        let mut interner = Interner::new(8, 3);
        let kept = interner.intern("a");
        for name in ["b", "c", "d", "e"] {
            interner.intern(name);
        }
        assert_eq!(interner.len(), 3);
        assert!(Arc::ptr_eq(&kept, &interner.intern("a")));
        let (d1, d2) = (interner.intern("d"), interner.intern("d"));
        assert_eq!(d1, d2);
        assert!(!Arc::ptr_eq(&d1, &d2), "not interned once full");
        assert_eq!(interner.len(), 3);
        assert!(!Arc::ptr_eq(&interner.intern("too long!"), &interner.intern("too long!")));
    }
}
