//! What an operation takes and answers, from the Rust types themselves (utoipa's
//! `ToSchema` and `IntoParams`), for `GET /api/openapi.json`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::openapi::path::ParameterIn;
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// One response of an operation.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) description: &'static str,
    /// The JSON body's schema (a `$ref`), if it has one.
    pub(super) schema: Option<Value>,
}

/// The request body, parameters, responses and error codes of one operation,
/// attached with [`ApiRoutes::with`](super::ApiRoutes::with).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weapp::api::Spec;
///
/// #[derive(Deserialize, utoipa::ToSchema)]
/// struct NewCoupon {
///     title: String,
/// }
///
/// #[derive(Serialize, utoipa::ToSchema)]
/// struct Coupon {
///     id: i64,
///     title: String,
/// }
///
/// let spec = Spec::new()
///     .body::<NewCoupon>()
///     .response::<Coupon>(201, "The coupon")
///     .errors(&[(409, "coupon_exists")]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub(super) body: Option<Value>,
    pub(super) parameters: Vec<Value>,
    pub(super) responses: Vec<Response>,
    pub(super) errors: Vec<(u16, &'static str)>,
    /// Every named schema the above refer to, for `components.schemas`.
    pub(super) schemas: BTreeMap<String, Value>,
}

impl Spec {
    /// Nothing described yet.
    pub fn new() -> Spec {
        Spec::default()
    }

    /// A JSON request body of type `T` (required).
    pub fn body<T: ToSchema>(mut self) -> Spec {
        self.body = Some(self.reference::<T>());
        self
    }

    /// Query parameters, the fields of `T`.
    pub fn query<T: IntoParams>(mut self) -> Spec {
        for parameter in T::into_params(|| Some(ParameterIn::Query)) {
            self.parameters
                .push(serde_json::to_value(parameter).unwrap_or_default());
        }
        self
    }

    /// A request header whose value is a `T` (`String`, or a type whose schema says
    /// what the route accepts), e.g. `Idempotency-Key`.
    pub fn header<T: PartialSchema>(
        mut self,
        name: &'static str,
        description: &'static str,
        required: bool,
    ) -> Spec {
        self.parameters.push(json!({
            "name": name,
            "in": "header",
            "required": required,
            "description": description,
            "schema": serde_json::to_value(T::schema()).unwrap_or_default(),
        }));
        self
    }

    /// A successful response with a JSON body of type `T`.
    pub fn response<T: ToSchema>(mut self, status: u16, description: &'static str) -> Spec {
        let schema = Some(self.reference::<T>());
        self.responses.push(Response {
            status,
            description,
            schema,
        });
        self
    }

    /// Adds `T`'s schema to the document's components without using it here: the
    /// argument of a generic answer (`Page<Item>` names `Item` but does not carry
    /// its schema) that no other route describes.
    pub fn schema<T: ToSchema>(mut self) -> Spec {
        self.reference::<T>();
        self
    }

    /// A successful response without a body (`204`).
    pub fn empty(mut self, status: u16, description: &'static str) -> Spec {
        self.responses.push(Response {
            status,
            description,
            schema: None,
        });
        self
    }

    /// Error codes the operation answers besides the ones every route may (bad
    /// JSON, a missing or expired token for its access, rate limits), with their
    /// status: `(409, "out_of_stock")`.
    pub fn errors(mut self, errors: &[(u16, &'static str)]) -> Spec {
        self.errors.extend_from_slice(errors);
        self
    }

    /// `T`'s schema and those it names, kept for the components; a `$ref` to it.
    fn reference<T: ToSchema>(&mut self) -> Value {
        let name = schema_name::<T>();
        let mut named = Vec::new();
        T::schemas(&mut named);
        for (dependency, schema) in named {
            self.schemas
                .insert(dependency, serde_json::to_value(schema).unwrap_or_default());
        }
        self.schemas.insert(
            name.clone(),
            serde_json::to_value(T::schema()).unwrap_or_default(),
        );
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }
}

/// The component name of `T`: its own, or for a generic type the names of it and its
/// arguments run together (`Page<Product>` → `PageProduct`), so `Page<Product>` and
/// `Page<OrderView>` stay two schemas (utoipa names both `Page`).
fn schema_name<T: ToSchema>() -> String {
    let full = std::any::type_name::<T>();
    if !full.contains('<') {
        return T::name().into_owned();
    }
    let mut name = String::new();
    let mut word = String::new();
    for c in full.chars() {
        match c {
            ':' => word.clear(),
            '<' | '>' | ',' | ' ' => name.push_str(&std::mem::take(&mut word)),
            c => word.push(c),
        }
    }
    name + &word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(utoipa::ToSchema)]
    struct Item {
        _id: i64,
    }

    #[derive(utoipa::ToSchema)]
    struct Page<T> {
        _items: Vec<T>,
    }

    #[test]
    fn generic_types_get_a_name_per_argument() {
        assert_eq!(schema_name::<Item>(), "Item");
        assert_eq!(schema_name::<Page<Item>>(), "PageItem");
        let spec = Spec::new().response::<Page<Item>>(200, "a page");
        assert!(
            spec.schemas.contains_key("PageItem"),
            "{:?}",
            spec.schemas.keys()
        );
        assert!(
            spec.schemas["PageItem"]
                .to_string()
                .contains("#/components/schemas/Item")
        );
        // The argument's own schema comes with it only when asked for.
        let spec = spec.schema::<Item>();
        assert!(spec.schemas.contains_key("Item"));
    }
}
