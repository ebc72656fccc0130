//! [`Fields`] to and from JSON: serialised as an object in field order, parsed straight into
//! the slice with interned names (no `serde_json::Map`, no `String` per name). A repeated name
//! keeps its first position and its last value, as `JSON.parse` does.
//!
//! Parsing goes through `deserialize_any` and accepts any JSON value, telling objects from the
//! rest itself: serde's "invalid type" errors describe the value they refuse, and formatting a
//! number there links float formatting and serde_json's error plumbing into the wasm client
//! (14 KB gzipped, measured). So only a non-object handed to `Fields::deserialize` becomes an
//! error, and the client uses [`Fields::parse`] / [`Fields::parse_list`], which never make one.

use std::fmt;

use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::field_name::{field_name, same_name, shape, FieldName, Shape};
use crate::record::Fields;

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(&**name, value)?;
        }
        map.end()
    }
}

/// From a JSON object only (the input must be self-describing, as JSON is).
impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Parsed::deserialize(deserializer)? {
            Parsed::Object(fields) => Ok(fields),
            _ => Err(D::Error::custom("expected a JSON object")),
        }
    }
}

impl Fields {
    /// Fields from names and values in order; a repeated name keeps its first place and its
    /// last value, as `JSON.parse` does.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Fields {
        Fields::from_entries_like(None, entries)
    }

    /// [`Fields::from_entries`], for entries likely named as `like` (another record's shape,
    /// such as the last update's): while their names are its names in its order, they share
    /// it, with no name looked up and no list of names made.
    pub fn from_entries_like<'a>(like: Option<&Shape>, entries: impl IntoIterator<Item = (&'a str, Value)>) -> Fields {
        let like_names: &[FieldName] = like.map_or(&[], |like| like);
        let mut values = Values::with_capacity(like.map_or(8, |like| like.len()));
        // Filled once the entries leave `like`'s names: with the ones they matched (each once; a
        // later repeat of one is found in the list), then theirs.
        let (mut names, mut seen, mut alike) = (Names::new(), None, true);
        for (name, value) in entries {
            if alike && values.len() < like_names.len() && *like_names[values.len()] == *name {
                values.push(value);
                continue;
            }
            if alike {
                alike = false;
                names.extend_from_slice(&like_names[..values.len()]);
            }
            push_last_wins(&mut names, &mut values, &mut seen, field_name(name), value);
        }
        match like {
            Some(like) if alike && values.len() == like.len() => {
                return Fields { shape: like.clone(), values: values.into_boxed_slice() };
            }
            _ if alike => names.extend_from_slice(&like_names[..values.len()]),
            _ => {}
        }
        Fields { shape: shape(&names), values: values.into_boxed_slice() }
    }

    /// Parses JSON text: `Ok(None)` if it is valid JSON but not an object.
    pub fn parse(text: &str) -> Result<Option<Fields>, serde_json::Error> {
        serde_json::from_str(text).map(|parsed| match parsed {
            Parsed::Object(fields) => Some(fields),
            _ => None,
        })
    }

    /// Parses a JSON array of objects: `Ok(Err(i))` if item `i` is the first that is not an
    /// object (text that is not an array reads as one item that is not an object).
    pub fn parse_list(text: &str) -> Result<Result<Vec<Fields>, usize>, serde_json::Error> {
        serde_json::from_str(text).map(|parsed| match parsed {
            Parsed::List(items) => items,
            _ => Err(0),
        })
    }
}

/// Any JSON value, as far as records care: an object's fields, an array of objects (or the
/// index of its first item that is not one), or something else (read and dropped). One type
/// for all, so the client holds one instance of the parser's dispatch.
enum Parsed {
    Object(Fields),
    List(Result<Vec<Fields>, usize>),
    Other,
}

impl<'de> Deserialize<'de> for Parsed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ParsedVisitor { hint: None })
    }
}

/// Parses a value; an object's names are first compared with `hint`'s, the names the previous
/// object of a list had, in order: the objects of a list almost always have the same ones, and
/// a name found there needs no lookup in the interner (~4% of a batch insert's time).
struct ParsedVisitor {
    hint: Option<Shape>,
}

impl<'de> DeserializeSeed<'de> for ParsedVisitor {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Parsed, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// The visitor methods a JSON deserializer calls for scalars: all `Other`.
macro_rules! scalars {
    ($($visit:ident($t:ty)),*) => {$(
        fn $visit<E: serde::de::Error>(self, _: $t) -> Result<Parsed, E> {
            Ok(Parsed::Other)
        }
    )*};
}

impl<'de> Visitor<'de> for ParsedVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Parsed, A::Error> {
        let hint = self.hint.as_deref().map(|names| &names[..]).unwrap_or_default();
        // A list's objects almost always have the previous one's names: exactly that room.
        let capacity = if hint.is_empty() { 8 } else { hint.len() };
        let (mut names, mut values) = (Names::with_capacity(capacity), Values::with_capacity(capacity));
        let mut seen = None;
        while let Some(name) = access.next_key_seed(NameSeed { expected: hint.get(names.len()) })? {
            let value = access.next_value()?;
            push_last_wins(&mut names, &mut values, &mut seen, name, value);
        }
        Ok(Parsed::Object(Fields { shape: shape(&names), values: values.into_boxed_slice() }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Parsed, A::Error> {
        let mut list = Ok(Vec::new());
        let mut index = 0;
        let mut hint = None;
        while let Some(item) = items.next_element_seed(ParsedVisitor { hint: hint.take() })? {
            match (item, &mut list) {
                (Parsed::Object(fields), Ok(list)) => {
                    hint = Some(fields.shape.clone());
                    list.push(fields)
                }
                (Parsed::Object(_), Err(_)) => {}
                (_, list @ Ok(_)) => *list = Err(index),
                (_, Err(_)) => {}
            }
            index += 1;
        }
        Ok(Parsed::List(list))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Parsed, E> {
        Ok(Parsed::Other)
    }

    scalars!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str));
}

/// Adds a parsed field; a repeated name replaces the earlier value in its place. Big objects
/// index their names (values unused: the engine's transaction index has this map type, so
/// the wasm client holds one copy of its code), so parsing them does not go quadratic.
/// A parsed object's names and values before they become a record. (Not `SmallVec`s: on the
/// stack they saved an allocation and a reallocation per object, but another instance of its
/// code cost the wasm client 0.5 KB gzipped.)
type Names = Vec<FieldName>;
type Values = Vec<Value>;

fn push_last_wins(
    names: &mut Names,
    values: &mut Values,
    seen: &mut Option<FxHashMap<FieldName, u64>>,
    name: FieldName,
    value: Value,
) {
    const SCANNED: usize = 16;
    let repeated = match seen {
        Some(seen) => seen.insert(name.clone(), 0).is_some(),
        None => names.iter().any(|n| same_name(n, &name)),
    };
    if repeated {
        if let Some(at) = names.iter().position(|n| same_name(n, &name)) {
            values[at] = value;
        }
        return;
    }
    names.push(name);
    values.push(value);
    if seen.is_none() && names.len() == SCANNED {
        let mut index = FxHashMap::default();
        for n in names.iter() {
            index.insert(n.clone(), 0);
        }
        *seen = Some(index);
    }
}

/// Deserialises a map key as an interned field name, from the parser's buffer: `expected`
/// if it is that name.
struct NameSeed<'a> {
    expected: Option<&'a FieldName>,
}

impl<'de> DeserializeSeed<'de> for NameSeed<'_> {
    type Value = FieldName;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FieldName, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed<'_> {
    type Value = FieldName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<FieldName, E> {
        match self.expected {
            Some(expected) if **expected == *name => Ok(expected.clone()),
            _ => Ok(field_name(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::tests::{fields, names};
    use crate::record::Key;

    #[test]
    fn parsing_keeps_the_order_of_the_text() {
        let text = r#"{"title":"t","id":"a","done":false,"nested":{"z":1,"a":2}}"#;
        let parsed: Fields = serde_json::from_str(text).unwrap();
        assert_eq!(names(&parsed), ["title", "id", "done", "nested"]);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), text.replace(r#"{"z":1,"a":2}"#, r#"{"a":2,"z":1}"#));
        assert_eq!(parsed.key("id"), Ok(Key::from("a")));
    }

    #[test]
    fn a_repeated_name_keeps_its_place_and_its_last_value_as_json_parse_does() {
        let parsed: Fields = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r#"{"a":3,"b":2}"#);
        // The same for an object big enough to track its names in a set.
        let mut text: String = (0..40).map(|i| format!("\"f{i}\":{i},")).collect();
        text = format!("{{{text}\"f3\":\"last\",\"f39\":null}}");
        let big: Fields = serde_json::from_str(&text).unwrap();
        assert_eq!(big.len(), 40);
        assert_eq!((&big["f3"], &big["f39"], &big["f4"]), (&json!("last"), &Value::Null, &json!(4)));
        assert_eq!(big.keys().nth(3), Some("f3"));
    }

    #[test]
    fn round_trips_through_json_text_and_serde_json_values() {
        let original = fields(json!({"id": "a", "n": 1.5, "tags": ["x"], "o": {"k": null}}));
        let text = serde_json::to_string(&original).unwrap();
        let back: Fields = serde_json::from_str(&text).unwrap();
        assert_eq!(back, original);
        assert_eq!(serde_json::from_value::<Fields>(original.to_value()).unwrap(), original);
        assert_eq!(serde_json::to_value(&original).unwrap(), original.to_value());
        assert!(serde_json::from_str::<Fields>("[1]").is_err());
    }

    #[test]
    fn parse_tells_objects_from_other_json_and_from_broken_text() {
        assert_eq!(Fields::parse(r#"{"b":1,"a":2}"#).unwrap().map(|f| names(&f).join(",")), Some("b,a".into()));
        for other in ["[1,{}]", "null", "true", "-1", "1.5", "\"x\"", "[]"] {
            assert_eq!(Fields::parse(other).unwrap(), None, "{other}");
        }
        assert!(Fields::parse("{").is_err());
        assert!(Fields::parse(r#"{"a":1} x"#).is_err());
    }

    #[test]
    fn the_objects_of_a_list_share_the_names_of_the_one_before_even_long_ones() {
        let long = "a_field_name_longer_than_the_interner_keeps_them";
        let text = format!(r#"[{{"id":"a","{long}":1}},{{"id":"b","{long}":2}},{{"{long}":3,"id":"c"}}]"#);
        let list = Fields::parse_list(&text).unwrap().unwrap();
        let name = |f: &Fields, at: usize| f.shape[at].clone();
        assert!(std::sync::Arc::ptr_eq(&name(&list[0], 1), &name(&list[1], 1)), "not allocated again");
        assert!(std::sync::Arc::ptr_eq(&list[0].shape, &list[1].shape));
        assert_eq!(names(&list[2]), [long, "id"], "another order is read as it is");
        assert_eq!(list[2][long], json!(3));
    }

    #[test]
    fn parse_list_reads_objects_or_names_the_first_item_that_is_not_one() {
        let list = Fields::parse_list(r#"[{"id":"a"},{"id":"b","id":"c"}]"#).unwrap().unwrap();
        assert_eq!(list.iter().map(|f| f["id"].clone()).collect::<Vec<_>>(), [json!("a"), json!("c")]);
        assert_eq!(Fields::parse_list(r#"[{"id":"a"},5,{},[{}]]"#).unwrap(), Err(1));
        assert_eq!(Fields::parse_list(r#"[[{}]]"#).unwrap(), Err(0));
        assert_eq!(Fields::parse_list("{}").unwrap(), Err(0));
        assert_eq!(Fields::parse_list("[]").unwrap(), Ok(vec![]));
        assert!(Fields::parse_list("[{]").is_err());
    }
}
