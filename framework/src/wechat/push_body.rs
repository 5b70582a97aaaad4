//! Push bodies arrive as XML or JSON (chosen in the console); both become JSON.

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde_json::{Map, Value};

use super::push::PushError;

/// Parses a JSON object, or a WeChat XML document (`<xml>...</xml>`) into an object whose
/// fields are the child elements: text and CDATA become strings, nested elements
/// objects, repeated elements arrays.
pub fn parse(body: &[u8]) -> Result<Value, PushError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| body[i]) {
        Some(b'{') => {
            let value: Value =
                serde_json::from_slice(body).map_err(|e| PushError::Parse(e.to_string()))?;
            Ok(value)
        }
        Some(b'<') => parse_xml(body),
        _ => Err(PushError::Parse(
            "expected a JSON object or an XML document".into(),
        )),
    }
}

fn insert(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            map.insert(key, value);
        }
    }
}

fn append_text(stack: &mut [(String, Map<String, Value>, String)], text: &str) {
    if let Some((_, _, acc)) = stack.last_mut() {
        acc.push_str(text);
    }
}

fn parse_xml(body: &[u8]) -> Result<Value, PushError> {
    let bad = |e: &dyn std::fmt::Display| PushError::Parse(e.to_string());
    // Text is kept as written: an entity splits it into separate events, and trimming
    // each one would eat the spaces around `&amp;`. Whitespace between child elements
    // is dropped with their parent's text below.
    let mut reader = Reader::from_reader(body);
    // Stack of (element name, child fields, text).
    let mut stack: Vec<(String, Map<String, Value>, String)> = Vec::new();
    let mut root: Option<Value> = None;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).map_err(|e| bad(&e))? {
            Event::Start(e) => {
                if stack.len() >= 16 {
                    return Err(PushError::Parse("XML nested too deeply".into()));
                }
                let name = e.name().as_ref().to_owned();
                stack.push((name, Map::new(), String::new()));
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_owned();
                if let Some((_, fields, _)) = stack.last_mut() {
                    insert(fields, name, Value::String(String::new()));
                }
            }
            Event::Text(t) => append_text(&mut stack, &t.xml10_content()),
            Event::CData(t) => append_text(&mut stack, &t.xml10_content()),
            // `&amp;`, `&#20320;`, `&#x597D;`: the five XML entities and character
            // references; WeChat's pushes declare no others.
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .ok_or_else(|| bad(&format!("unknown entity &{};", r.xml10_content())))?
                        .to_owned(),
                };
                append_text(&mut stack, &resolved);
            }
            Event::End(_) => {
                let (name, fields, text) = stack.pop().ok_or_else(|| bad(&"unbalanced XML"))?;
                let value = if fields.is_empty() {
                    Value::String(text)
                } else {
                    Value::Object(fields)
                };
                match stack.last_mut() {
                    Some((_, parent, _)) => insert(parent, name, value),
                    None => root = Some(value),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match root {
        Some(Value::Object(map)) if stack.is_empty() => Ok(Value::Object(map)),
        Some(Value::String(s)) if s.trim().is_empty() && stack.is_empty() => {
            Ok(Value::Object(Map::new()))
        }
        _ => Err(PushError::Parse(
            "expected <xml> with child elements".into(),
        )),
    }
}
