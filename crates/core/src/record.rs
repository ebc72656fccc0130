//! Records: keyed JSON objects, shared by reference so a record sits in the synced layer, the
//! visible layer and a mutation's `modified` without being copied.
//!
//! A record's top-level fields are a [`Shape`] (its names in insertion order, as JavaScript
//! objects keep them, shared by the records with the same names) and one boxed slice of
//! values. Next to a `serde_json::Map` (a B-tree: an 11-slot node per object plus an
//! allocation per field name) that is under a third of the memory per record. Lookups scan
//! the names, which for the few fields of a record beats a tree walk. Nested values stay
//! `serde_json::Value`.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::field_name::{field_name, same_name, shape, with_names, FieldName, Shape};

/// A record's key, the string form of its key field.
pub type Key = Arc<str>;

/// A record. Cloning is a reference-count increment; `Arc::make_mut` copies on write.
pub type Record = Arc<Fields>;

/// A JSON object's fields, in insertion order, each name once.
///
/// It serialises as a JSON object in that order and deserialises from one straight into its
/// values, with a repeated name keeping its first place and its last value, as `JSON.parse`
/// does (see also [`Fields::parse`]). Equality ignores the order, as JSON object equality does.
#[derive(Clone, Default)]
pub struct Fields {
    pub(crate) shape: Shape,
    pub(crate) values: Box<[Value]>,
}

impl Fields {
    pub fn new() -> Self {
        Fields::default()
    }

    /// Fields from names (each once) and their values, in order.
    pub(crate) fn from_parts(names: Vec<FieldName>, values: Vec<Value>) -> Self {
        Fields { shape: shape(&names), values: values.into_boxed_slice() }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.shape.iter().position(|n| same_name(n, name))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|at| &self.values[at])
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.position(name).map(|at| &mut self.values[at])
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Sets a field: in its place if it exists (returning the old value), else appended.
    pub fn insert(&mut self, name: &str, value: Value) -> Option<Value> {
        if let Some(slot) = self.get_mut(name) {
            return Some(std::mem::replace(slot, value));
        }
        self.append(field_name(name), value);
        None
    }

    /// Removes a field, keeping the order of the others.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let at = self.position(name)?;
        let mut names = self.shape.to_vec();
        names.remove(at);
        let mut values = std::mem::take(&mut self.values).into_vec();
        let value = values.remove(at);
        *self = Fields::from_parts(names, values);
        Some(value)
    }

    /// The fields in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&FieldName, &Value)> + ExactSizeIterator {
        self.shape.iter().zip(self.values.iter())
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.shape.iter().map(|n| &**n)
    }

    /// The field names, shared with the records that have the same names in the same order
    /// (compare with `Arc::ptr_eq` to tell a known shape).
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The values, in the order of [`Fields::shape`].
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The record's key: its `key_field` as a string (numbers in their JSON spelling).
    pub fn key(&self, key_field: &str) -> Result<Key, RecordProblem> {
        key_from(self.get(key_field), None)
    }

    /// Shallow field-by-field update: every field of `changes` replaces this one's, new ones
    /// are appended in their order.
    pub fn update(&mut self, changes: &Fields) {
        for (name, value) in changes.iter() {
            // In place when the field exists (it usually does): nothing to allocate.
            match self.get_mut(name) {
                Some(slot) => slot.clone_from(value),
                None => self.append(name.clone(), value.clone()),
            }
        }
    }

    /// Appends a field known to be new.
    fn append(&mut self, name: FieldName, value: Value) {
        let mut names = Vec::with_capacity(self.len() + 1);
        names.extend(self.shape.iter().cloned());
        names.push(name);
        let mut values = std::mem::take(&mut self.values).into_vec();
        values.reserve_exact(1);
        values.push(value);
        *self = Fields::from_parts(names, values);
    }

    /// As a `serde_json` object (whose map orders the names its own way).
    pub fn to_map(&self) -> Map<String, Value> {
        // By `insert`, not `collect` (whose sort and bulk build the wasm client would link).
        let mut map = Map::new();
        for (name, value) in self.iter() {
            map.insert(String::from(&**name), value.clone());
        }
        map
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.to_map())
    }
}

impl From<Map<String, Value>> for Fields {
    fn from(map: Map<String, Value>) -> Self {
        let (names, values) = with_names(|names| map.into_iter().map(|(name, value)| (names.get(&name), value)).unzip());
        Fields::from_parts(names, values)
    }
}

impl TryFrom<Value> for Fields {
    type Error = RecordProblem;

    /// The fields of a JSON object; anything else is [`RecordProblem::NotAnObject`].
    fn try_from(value: Value) -> Result<Self, RecordProblem> {
        match value {
            Value::Object(map) => Ok(Fields::from(map)),
            _ => Err(RecordProblem::NotAnObject),
        }
    }
}

static NULL: Value = Value::Null;

/// `record["field"]`: `null` when the field is missing, like indexing a `serde_json::Value`.
impl std::ops::Index<&str> for Fields {
    type Output = Value;

    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&NULL)
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        // Names are unique: same count and every field found equal means equal.
        if Arc::ptr_eq(&self.shape, &other.shape) {
            return self.values == other.values;
        }
        self.len() == other.len() && self.iter().all(|(name, value)| other.get(name) == Some(value))
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Why a value cannot be a record of a collection keyed by `key_field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordProblem {
    NotAnObject,
    MissingKeyField,
    KeyFieldNotStringOrNumber,
    EmptyKey,
}

impl std::fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordProblem::NotAnObject => "is not a JSON object",
            RecordProblem::MissingKeyField => "has no key field",
            RecordProblem::KeyFieldNotStringOrNumber => "has a key field that is neither a string nor a number",
            RecordProblem::EmptyKey => "has an empty key",
        })
    }
}

/// Records by key, as a collection holds them.
pub(crate) type Records = rustc_hash::FxHashMap<Key, Record>;

/// The key a key field holds. When `known` holds it already, that key is shared: no
/// allocation, and lookups with it compare pointers rather than strings.
pub(crate) fn key_from(field: Option<&Value>, known: Option<&Records>) -> Result<Key, RecordProblem> {
    let spelled;
    let text = match field {
        None => return Err(RecordProblem::MissingKeyField),
        Some(Value::String(s)) if s.is_empty() => return Err(RecordProblem::EmptyKey),
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Number(n)) => {
            spelled = n.to_string();
            &spelled
        }
        Some(_) => return Err(RecordProblem::KeyFieldNotStringOrNumber),
    };
    Ok(match known.and_then(|records| records.get_key_value(text)) {
        Some((key, _)) => key.clone(),
        None => Key::from(text),
    })
}

/// The key of a record still in `serde_json` form (see [`Fields::key`]).
pub fn key_of(record: &Map<String, Value>, key_field: &str) -> Result<Key, RecordProblem> {
    key_from(record.get(key_field), None)
}

/// Turns a JSON value into a record, checking it has a usable key (shared with `known`'s).
pub(crate) fn into_record(
    value: Value,
    key_field: &str,
    known: Option<&Records>,
) -> Result<(Key, Record), RecordProblem> {
    match value {
        Value::Object(map) => {
            let key = key_from(map.get(key_field), known)?;
            Ok((key, Arc::new(Fields::from(map))))
        }
        _ => Err(RecordProblem::NotAnObject),
    }
}

/// Fields as a record, checking they have a usable key.
pub(crate) fn record_of(fields: Fields, key_field: &str) -> Result<(Key, Record), RecordProblem> {
    let key = fields.key(key_field)?;
    Ok((key, Arc::new(fields)))
}

/// Shallow field-by-field update: every field of `changes` replaces the record's field. A
/// record shared with others is copied first.
pub fn apply_changes(record: &mut Record, changes: &Fields) {
    Arc::make_mut(record).update(changes);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn fields(value: Value) -> Fields {
        Fields::try_from(value).unwrap()
    }

    pub(crate) fn names(fields: &Fields) -> Vec<&str> {
        fields.keys().collect()
    }

    /// Entries named as the shape offered share it; any other names (fewer, more, another
    /// order, a repeat) make the record they would without it.
    #[test]
    fn entries_named_as_the_shape_offered_share_it_and_others_make_their_own() {
        let entries = |list: &[(&'static str, i64)]| list.iter().map(|&(n, v)| (n, json!(v))).collect::<Vec<_>>();
        let like = Fields::from_entries(entries(&[("n", 1), ("done", 0)]));
        let same = Fields::from_entries_like(Some(like.shape()), entries(&[("n", 2), ("done", 1)]));
        assert!(Arc::ptr_eq(same.shape(), like.shape()));
        assert_eq!(same, fields(json!({"n": 2, "done": 1})));
        let many: Vec<(&'static str, i64)> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"]
            .iter()
            .zip(0..)
            .map(|(&n, v)| (n, v))
            .collect();
        let wide = Fields::from_entries(entries(&many));
        for list in [
            vec![("n", 3)],
            vec![("n", 3), ("done", 1), ("x", 2)],
            vec![("done", 1), ("n", 3)],
            vec![("n", 3), ("n", 4), ("done", 1)],
            vec![],
            [many.clone(), vec![("a", 9)]].concat(),
        ] {
            let hinted = Fields::from_entries_like(Some(like.shape()), entries(&list));
            let plain = Fields::from_entries(entries(&list));
            assert_eq!(names(&hinted), names(&plain), "{list:?}");
            assert_eq!(hinted, plain, "{list:?}");
            let wide_hinted = Fields::from_entries_like(Some(wide.shape()), entries(&list));
            assert_eq!((names(&wide_hinted), &wide_hinted), (names(&plain), &plain), "{list:?}");
        }
    }

    #[test]
    fn numeric_keys_use_their_json_spelling() {
        let (key, _) = into_record(json!({"id": 42, "x": 1}), "id", None).unwrap();
        assert_eq!(&*key, "42");
    }

    #[test]
    fn custom_key_field_is_used() {
        let (key, _) = into_record(json!({"slug": "a"}), "slug", None).unwrap();
        assert_eq!(&*key, "a");
        assert_eq!(into_record(json!({"slug": "a"}), "id", None), Err(RecordProblem::MissingKeyField));
    }

    #[test]
    fn non_objects_and_bad_keys_are_rejected() {
        assert_eq!(into_record(json!([1]), "id", None), Err(RecordProblem::NotAnObject));
        assert_eq!(into_record(json!({"id": true}), "id", None), Err(RecordProblem::KeyFieldNotStringOrNumber));
        assert_eq!(into_record(json!({"id": ""}), "id", None), Err(RecordProblem::EmptyKey));
        assert_eq!(Fields::try_from(json!("x")), Err(RecordProblem::NotAnObject));
    }

    #[test]
    fn records_share_their_field_names() {
        let a: Fields = serde_json::from_str(r#"{"id":"a","title":"x"}"#).unwrap();
        let b = fields(json!({"title": "y", "id": "b"}));
        let name = |f: &Fields, n: &str| f.iter().find(|(m, _)| &***m == n).unwrap().0.clone();
        assert!(Arc::ptr_eq(&name(&a, "title"), &name(&b, "title")));
        assert!(Arc::ptr_eq(&name(&a, "id"), &name(&b, "id")));
    }

    #[test]
    fn records_with_the_same_names_share_one_shape_until_one_gains_a_field() {
        let list = Fields::parse_list(r#"[{"id":"a","n":1},{"id":"b","n":2},{"n":3,"id":"c"}]"#).unwrap().unwrap();
        assert!(Arc::ptr_eq(&list[0].shape, &list[1].shape));
        assert!(!Arc::ptr_eq(&list[0].shape, &list[2].shape), "another order is another shape");
        let mut grown = list[1].clone();
        grown.insert("done", Value::Bool(true));
        assert_eq!(names(&grown), ["id", "n", "done"]);
        assert_eq!(names(&list[1]), ["id", "n"], "the shared shape is not changed");
        grown.remove("done");
        assert_eq!(grown, fields(json!({"id": "b", "n": 2})));
    }

    #[test]
    fn equality_ignores_order_but_not_content() {
        let a = fields(json!({"id": "a", "n": 1}));
        let b: Fields = serde_json::from_str(r#"{"n":1,"id":"a"}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, fields(json!({"id": "a", "n": 2})));
        assert_ne!(a, fields(json!({"id": "a", "m": 1})));
        assert_ne!(a, fields(json!({"id": "a"})));
    }

    #[test]
    fn insert_replaces_in_place_or_appends_and_remove_keeps_the_order() {
        let mut f: Fields = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        assert_eq!(f.insert("b", json!(3)), Some(json!(1)));
        assert_eq!(f.insert("c", json!(4)), None);
        assert_eq!(names(&f), ["b", "a", "c"]);
        assert_eq!(f.remove("a"), Some(json!(2)));
        assert_eq!(f.remove("zz"), None);
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"b":3,"c":4}"#);
        assert_eq!(f["missing"], Value::Null);
    }

    #[test]
    fn apply_changes_copies_a_shared_record_before_writing() {
        let (_, original) = into_record(json!({"id": "a", "n": 1}), "id", None).unwrap();
        let mut updated = original.clone();
        apply_changes(&mut updated, &fields(json!({"n": 2, "new": true})));
        assert_eq!(original["n"], 1);
        assert!(!original.contains_key("new"));
        assert_eq!((&updated["n"], &updated["new"]), (&json!(2), &json!(true)));
        assert_eq!(names(&updated), ["id", "n", "new"]);
        // Not shared: written in place.
        let before = Arc::as_ptr(&updated);
        apply_changes(&mut updated, &fields(json!({"n": 3})));
        assert_eq!((Arc::as_ptr(&updated), &updated["n"]), (before, &json!(3)));
    }
}
