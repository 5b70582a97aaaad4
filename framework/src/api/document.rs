//! The OpenAPI 3.1 document of the recorded operations (3.1: the JSON Schema
//! dialect utoipa 5 writes, `"type": ["string", "null"]` for an `Option`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Access, Operation};

/// What every caller of a route with this access may be refused with.
fn access_errors(access: Access) -> &'static [(u16, &'static str)] {
    match access {
        Access::Public | Access::Signed => &[],
        Access::User => &[
            (401, "missing_token"),
            (401, "invalid_token"),
            (401, "expired_token"),
            (401, "revoked_session"),
        ],
        Access::Admin => &[(401, "admin_token_required")],
    }
}

/// What every route with a JSON body may be refused with.
const BODY_ERRORS: &[(u16, &str)] = &[
    (400, "malformed_json"),
    (400, "invalid_body"),
    (400, "unknown_field"),
    (413, "payload_too_large"),
];

/// What every route with query parameters may be refused with.
const QUERY_ERRORS: &[(u16, &str)] = &[(400, "invalid_query")];

/// The error schema of one status: the error object, its `code` one of `codes`.
fn error_schema(codes: &[&str]) -> Value {
    json!({
        "allOf": [{"$ref": "#/components/schemas/Error"}],
        "properties": {"code": {"type": "string", "enum": codes}},
    })
}

fn security(access: Access) -> Value {
    match access {
        Access::Public => json!([]),
        Access::User => json!([{"bearer": []}]),
        Access::Admin => json!([{"admin": []}]),
        Access::Signed => json!([{"signature": []}]),
    }
}

/// `get_api_orders_id` for `GET /api/orders/{id}`.
fn operation_id(op: &Operation) -> String {
    format!(
        "{}_{}",
        op.method,
        op.path
            .trim_matches('/')
            .replace(['/', '-', '.'], "_")
            .replace(['{', '}'], "")
    )
}

/// The responses of one operation: its own, then its errors grouped by status,
/// then `default` (any other error, e.g. a 500 or a 503 while a service is down).
fn responses(op: &Operation) -> Value {
    let mut out = Map::new();
    for response in &op.spec.responses {
        let mut entry = json!({ "description": response.description });
        if let Some(schema) = &response.schema {
            entry["content"] = json!({"application/json": {"schema": schema}});
        }
        out.insert(response.status.to_string(), entry);
    }
    if op.spec.responses.is_empty() {
        out.insert("200".into(), json!({"description": "Success"}));
    }
    let mut errors: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    let body = if op.spec.body.is_some() {
        BODY_ERRORS
    } else {
        &[]
    };
    let query = if op.spec.parameters.iter().any(|p| p["in"] == "query") {
        QUERY_ERRORS
    } else {
        &[]
    };
    for (status, code) in access_errors(op.access)
        .iter()
        .chain(body)
        .chain(query)
        .chain(&op.spec.errors)
    {
        let codes = errors.entry(*status).or_default();
        if !codes.contains(code) {
            codes.push(code);
        }
    }
    for (status, codes) in errors {
        let description = codes
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.insert(
            status.to_string(),
            json!({
                "description": description,
                "content": {"application/json": {"schema": error_schema(&codes)}},
            }),
        );
    }
    out.insert(
        "default".into(),
        json!({
            "description": "Any other error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }),
    );
    Value::Object(out)
}

/// The path parameters of `path` (`{id}` → an integer id), unless the spec
/// describes them itself.
fn path_parameters(op: &Operation) -> Vec<Value> {
    op.path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .filter(|name| {
            !op.spec
                .parameters
                .iter()
                .any(|p| p["in"] == "path" && p["name"] == *name)
        })
        .map(|name| {
            let schema = match name {
                "id" => json!({"type": "integer", "format": "int64", "minimum": 1}),
                _ => json!({"type": "string"}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// The OpenAPI 3 document of `operations`.
pub fn document(operations: &[Operation], title: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    for op in operations {
        let tag = op
            .path
            .split('/')
            .find(|s| !s.is_empty() && *s != "api")
            .unwrap_or("root");
        let mut parameters = path_parameters(op);
        parameters.extend(op.spec.parameters.iter().cloned());
        let mut entry = json!({
            "summary": op.summary,
            "operationId": operation_id(op),
            "tags": [tag],
            "parameters": parameters,
            "security": security(op.access),
            "responses": responses(op),
        });
        if let Some(body) = &op.spec.body {
            entry["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body}},
            });
        }
        schemas.extend(op.spec.schemas.clone());
        paths
            .entry(op.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|methods| methods.insert(op.method.to_owned(), entry));
    }
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "admin": {"type": "apiKey", "in": "header", "name": "X-Admin-Token"},
                "signature": {
                    "type": "apiKey", "in": "header", "name": "Wechatpay-Signature",
                    "description": "signed by WeChat itself: Wechatpay-* headers over the raw body (WeChat Pay), or the signature query parameters (message push)"
                },
            },
            "schemas": schemas,
        },
    })
}
