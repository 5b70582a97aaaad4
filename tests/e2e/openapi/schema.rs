//! Just enough JSON Schema to check an answer against the document: `$ref`,
//! `allOf`, types (3.1 lists too), `enum`, `required`, properties and items.

use serde_json::Value;
/// The schema a `$ref` names, or the schema itself.
pub(super) fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let found = &doc["components"]["schemas"][name];
            assert!(!found.is_null(), "{reference} names no schema");
            resolve(doc, found)
        }
        None => schema,
    }
}

/// Whether `value` has the shape of `schema`: its type, its required properties,
/// and each property and item recursively. What the document promises clients, so
/// a handler whose answer drifted from its declared type fails here.
pub(super) fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        conforms(doc, part, value, at)?;
    }
    // OpenAPI 3.1: `type` is a name or a list of names (`["string", "null"]`).
    let types: Vec<&str> = match &schema["type"] {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let type_ok = types.is_empty()
        || types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
    if !type_ok {
        return Err(format!("{at} is {value}, the schema says {schema}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at} is {value}, not one of {allowed:?}"));
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        if value.get(name).is_none() {
            return Err(format!("{at} lacks the required {name}"));
        }
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object())
    {
        for (name, property) in properties {
            if let Some(field) = object.get(name) {
                conforms(doc, property, field, &format!("{at}.{name}"))?;
            }
        }
        if schema["additionalProperties"] == false
            && let Some(extra) = object.keys().find(|k| !properties.contains_key(*k))
        {
            return Err(format!("{at} has {extra}, which the schema does not list"));
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The response `schema` of `method path` for `status`.
pub(super) fn response_schema<'a>(
    doc: &'a Value,
    method: &str,
    path: &str,
    status: u16,
) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} documents no {status} body"
    );
    schema
}
