//! Records: keyed JSON objects, shared by reference so a record sits in the synced layer, the
//! visible layer and a mutation's `modified` without being copied.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A record's key, the string form of its key field.
pub type Key = Arc<str>;

/// A JSON object. Cloning is a reference-count increment; `Arc::make_mut` copies on write.
pub type Record = Arc<Map<String, Value>>;

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

/// The key of `record`: its `key_field` as a string (numbers in their JSON spelling).
pub fn key_of(record: &Map<String, Value>, key_field: &str) -> Result<Key, RecordProblem> {
    match record.get(key_field) {
        None => Err(RecordProblem::MissingKeyField),
        Some(Value::String(s)) if s.is_empty() => Err(RecordProblem::EmptyKey),
        Some(Value::String(s)) => Ok(Arc::from(s.as_str())),
        Some(Value::Number(n)) => Ok(Arc::from(n.to_string())),
        Some(_) => Err(RecordProblem::KeyFieldNotStringOrNumber),
    }
}

/// Turns a JSON value into a record, checking it has a usable key.
pub fn into_record(value: Value, key_field: &str) -> Result<(Key, Record), RecordProblem> {
    match value {
        Value::Object(map) => {
            let key = key_of(&map, key_field)?;
            Ok((key, Arc::new(map)))
        }
        _ => Err(RecordProblem::NotAnObject),
    }
}

/// Shallow field-by-field update: every field of `changes` replaces the record's field.
pub fn apply_changes(record: &mut Record, changes: &Map<String, Value>) {
    let fields = Arc::make_mut(record);
    for (field, value) in changes {
        // In place when the field exists (it usually does): no new key to allocate.
        match fields.get_mut(field) {
            Some(slot) => slot.clone_from(value),
            None => {
                fields.insert(field.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_keys_use_their_json_spelling() {
        let (key, _) = into_record(json!({"id": 42, "x": 1}), "id").unwrap();
        assert_eq!(&*key, "42");
    }

    #[test]
    fn custom_key_field_is_used() {
        let (key, _) = into_record(json!({"slug": "a"}), "slug").unwrap();
        assert_eq!(&*key, "a");
        assert_eq!(into_record(json!({"slug": "a"}), "id"), Err(RecordProblem::MissingKeyField));
    }

    #[test]
    fn non_objects_and_bad_keys_are_rejected() {
        assert_eq!(into_record(json!([1]), "id"), Err(RecordProblem::NotAnObject));
        assert_eq!(into_record(json!({"id": true}), "id"), Err(RecordProblem::KeyFieldNotStringOrNumber));
        assert_eq!(into_record(json!({"id": ""}), "id"), Err(RecordProblem::EmptyKey));
    }

    #[test]
    fn apply_changes_copies_a_shared_record_before_writing() {
        let (_, original) = into_record(json!({"id": "a", "n": 1}), "id").unwrap();
        let mut updated = original.clone();
        apply_changes(&mut updated, json!({"n": 2}).as_object().unwrap());
        assert_eq!(original["n"], 1);
        assert_eq!(updated["n"], 2);
    }
}
