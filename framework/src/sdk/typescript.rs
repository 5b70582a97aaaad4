//! TypeScript declarations from an OpenAPI 3.1 document: one type per schema, the
//! `ErrorCode` union of every documented error code, and `Operations`, each route's
//! request body and successful answer by `METHOD path`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// `types/api.d.ts` of the SDK for `doc`.
pub fn declarations(doc: &Value) -> String {
    let mut out = vec![
        "// Generated from the backend's OpenAPI document by weapp (`cargo run -- sdk <dir>`): do not edit.".to_owned(),
        String::new(),
    ];
    let empty = Map::new();
    let schemas = doc["components"]["schemas"].as_object().unwrap_or(&empty);
    for (name, schema) in schemas {
        if let Some(description) = schema["description"].as_str() {
            out.push(format!("/** {} */", comment(description)));
        }
        let body = type_of(schema, 0);
        match body.starts_with('{') {
            true => out.push(format!("export interface {name} {body}")),
            false => out.push(format!("export type {name} = {body}")),
        }
        out.push(String::new());
    }
    let mut codes = BTreeSet::new();
    let mut operations = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap_or(&empty) {
        for (method, op) in methods.as_object().unwrap_or(&empty) {
            let mut answer = None;
            for (status, response) in op["responses"].as_object().unwrap_or(&empty) {
                let schema = &response["content"]["application/json"]["schema"];
                if schema.is_null() {
                    continue;
                }
                if status.starts_with(['4', '5']) {
                    let enumerated = schema["properties"]["code"]["enum"].as_array();
                    codes.extend(enumerated.into_iter().flatten().filter_map(Value::as_str));
                } else if status.starts_with('2') && answer.is_none() {
                    answer = Some(type_of(schema, 2));
                }
            }
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            let body = match body.is_null() {
                true => "never".to_owned(),
                false => type_of(body, 2),
            };
            let answer = answer.unwrap_or_else(|| "null".to_owned());
            operations.push(format!(
                "  '{} {path}': {{ body: {body}; answer: {answer} }}",
                method.to_uppercase()
            ));
        }
    }
    out.push("/** Every error `code` an operation documents. */".to_owned());
    let codes: Vec<String> = codes.iter().map(|c| format!("  | {}", quoted(c))).collect();
    out.push(format!("export type ErrorCode =\n{}", codes.join("\n")));
    out.push(String::new());
    out.push(
        "/** Each operation's request body and successful answer, by `METHOD path`. */".to_owned(),
    );
    out.push(format!(
        "export interface Operations {{\n{}\n}}",
        operations.join("\n")
    ));
    out.push(String::new());
    out.join("\n")
}

/// A doc comment's text that cannot end the comment early.
fn comment(text: &str) -> String {
    text.replace("*/", "* /")
}

fn quoted(value: &str) -> String {
    Value::from(value).to_string()
}

fn type_of(schema: &Value, indent: usize) -> String {
    if !schema.is_object() {
        return "unknown".to_owned();
    }
    if let Some(reference) = schema["$ref"].as_str() {
        return reference
            .trim_start_matches("#/components/schemas/")
            .to_owned();
    }
    let joined = |list: &Vec<Value>, separator: &str| -> String {
        let parts: Vec<String> = list.iter().map(|s| type_of(s, indent)).collect();
        parts.join(separator)
    };
    if let Some(all) = schema["allOf"].as_array() {
        return joined(all, " & ");
    }
    if let Some(any) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return joined(any, " | ");
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(Value::to_string).collect();
        return values.join(" | ");
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        Value::String(one) => vec![one.as_str()],
        _ => Vec::new(),
    };
    if types.is_empty() {
        return match schema["properties"].is_object() {
            true => object_type(schema, indent),
            false => "unknown".to_owned(),
        };
    }
    let types: Vec<String> = types
        .into_iter()
        .map(|t| match t {
            "null" => "null".to_owned(),
            "string" => "string".to_owned(),
            "integer" | "number" => "number".to_owned(),
            "boolean" => "boolean".to_owned(),
            "array" => format!("Array<{}>", type_of(&schema["items"], indent)),
            "object" if schema["properties"].is_object() => object_type(schema, indent),
            "object" => "Record<string, unknown>".to_owned(),
            _ => "unknown".to_owned(),
        })
        .collect();
    types.join(" | ")
}

fn object_type(schema: &Value, indent: usize) -> String {
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let pad = "  ".repeat(indent + 1);
    let empty = Map::new();
    let fields: Vec<String> = schema["properties"]
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .map(|(name, property)| {
            let doc = match property["description"].as_str() {
                Some(text) => format!("{pad}/** {} */\n", comment(text)),
                None => String::new(),
            };
            let optional = if required.contains(name.as_str()) {
                ""
            } else {
                "?"
            };
            format!(
                "{doc}{pad}{name}{optional}: {}",
                type_of(property, indent + 1)
            )
        })
        .collect();
    format!("{{\n{}\n{}}}", fields.join("\n"), "  ".repeat(indent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_errors_and_operations_become_declarations() {
        let doc = json!({
            "paths": {"/api/things/{id}": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewThing"}}}},
                "responses": {
                    "201": {"content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}}}},
                    "409": {"content": {"application/json": {"schema": {"properties": {"code": {"enum": ["taken"]}}}}}},
                    "422": {"content": {"application/json": {"schema": {"properties": {"code": {"enum": ["bad_name", "taken"]}}}}}},
                },
            }}},
            "components": {"schemas": {
                "NewThing": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "description": "shown as is */"},
                    "size": {"type": ["integer", "null"]},
                    "kind": {"enum": ["a", "b"]},
                }},
                "Thing": {"allOf": [{"$ref": "#/components/schemas/NewThing"}, {"type": "object", "properties": {"id": {"type": "integer"}}}]},
            }},
        });
        let ts = declarations(&doc);
        assert!(ts.contains("export interface NewThing {\n  kind?: \"a\" | \"b\"\n  /** shown as is * / */\n  name: string\n  size?: number | null\n}"), "{ts}");
        assert!(
            ts.contains("export type Thing = NewThing & {\n  id?: number\n}"),
            "{ts}"
        );
        assert!(
            ts.contains("export type ErrorCode =\n  | \"bad_name\"\n  | \"taken\"\n"),
            "{ts}"
        );
        assert!(
            ts.contains("  'POST /api/things/{id}': { body: NewThing; answer: Array<Thing> }"),
            "{ts}"
        );
    }

    #[test]
    fn a_route_without_a_json_answer_answers_null_and_takes_no_body() {
        let doc =
            json!({"paths": {"/healthz": {"get": {"responses": {"200": {"description": "ok"}}}}}});
        let ts = declarations(&doc);
        assert!(
            ts.contains("'GET /healthz': { body: never; answer: null }"),
            "{ts}"
        );
    }
}
