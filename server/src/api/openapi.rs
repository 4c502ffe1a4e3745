//! The API's contract: an OpenAPI 3.1 document derived from the handlers and their types
//! (utoipa: derive macros beside the code, no runtime router of its own, and 3.1 output), and a
//! reference page rendered on the server from the same document (no script, no CDN, readable
//! with a screen reader and before anything loads).

use crate::http::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use converge_app::api::ErrorCode;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Converge API",
        version = "1",
        description = "Management of users and their security info, and MFA as a service for \
            the organisation's own applications. Authenticate with `Authorization: Bearer \
            cvg_…` (a token from `converge api-token create`); each operation names the scope \
            it needs. Errors are RFC 9457 problem documents whose `code` is the stable code \
            the portal shows. POSTs that create something accept an `Idempotency-Key`."
    ),
    paths(
        super::mfa::start, super::mfa::verify, super::mfa::status,
        super::users::list, super::users::get, super::users::create,
        super::users::disable, super::users::enable, super::users::set_role,
        super::users::unlock, super::users::unblock,
        super::users::methods, super::users::remove_method, super::users::reregister,
        super::users::temporary_access_pass, super::users::reset_link,
        super::ops::audit, super::ops::sync_runs, super::ops::approve_sync_run,
        super::ops::dead_letters, super::ops::retry_dead_letter,
    ),
    modifiers(&Token),
    tags(
        (name = "mfa", description = "Verify a user's second factor for an application"),
        (name = "users", description = "Users, their methods, passes and reset links"),
        (name = "operations", description = "Audit trail, directory sync, outbox"),
    )
)]
pub struct ApiDoc;

struct Token;

impl Modify for Token {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as served (`servers` names this instance's public URL).
pub fn document_json(public_url: &str) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    doc["servers"] = serde_json::json!([{ "url": public_url.trim_end_matches('/') }]);
    doc
}

pub async fn document(State(state): State<AppState>) -> Response {
    let body = serde_json::to_vec_pretty(&document_json(state.config.public_url.as_str()))
        .unwrap_or_default();
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `#/components/schemas/Name` as a link, or the inline type.
fn schema_ref(v: &Value) -> String {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(items) = v.get("items") {
        return format!("array of {}", schema_ref(items));
    }
    if let Some(one) = v.get("oneOf").and_then(Value::as_array) {
        return one.iter().map(schema_ref).collect::<Vec<_>>().join(" or ");
    }
    match v.get("type") {
        Some(Value::String(t)) => {
            let values = v
                .get("enum")
                .and_then(Value::as_array)
                .map(|e| {
                    format!(
                        " ({})",
                        e.iter()
                            .filter_map(Value::as_str)
                            .map(esc)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .unwrap_or_default();
            format!("{}{values}", esc(t))
        }
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(esc)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "object".into(),
    }
}

fn text(v: &Value, key: &str) -> String {
    esc(v.get(key).and_then(Value::as_str).unwrap_or(""))
}

fn operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let id = format!("{method}-{}", path.replace(['/', '{', '}'], "-"));
    out.push_str(&format!(
        "<section class=\"op\" aria-labelledby=\"{id}\"><h3 id=\"{id}\"><code>{} {}</code></h3><p>{}</p>",
        method.to_uppercase(),
        esc(path),
        text(op, "summary")
    ));
    let desc = text(op, "description");
    if !desc.is_empty() {
        out.push_str(&format!("<p>{desc}</p>"));
    }
    if let Some(scopes) = op.pointer("/security/0/token").and_then(Value::as_array) {
        let s: Vec<String> = scopes.iter().filter_map(Value::as_str).map(esc).collect();
        out.push_str(&format!("<p>Scope: <code>{}</code></p>", s.join(", ")));
    }
    if let Some(params) = op.get("parameters").and_then(Value::as_array) {
        out.push_str("<table><caption>Parameters</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">In</th><th scope=\"col\">Type</th><th scope=\"col\">Required</th><th scope=\"col\">Description</th></tr></thead><tbody>");
        for p in params {
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(p, "name"),
                text(p, "in"),
                p.get("schema").map(schema_ref).unwrap_or_default(),
                if p.get("required").and_then(Value::as_bool) == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                text(p, "description")
            ));
        }
        out.push_str("</tbody></table>");
    }
    if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
        out.push_str(&format!("<p>Body (JSON): {}</p>", schema_ref(body)));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str("<ul class=\"responses\">");
        for (status, r) in responses {
            let schema = r
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.values().next())
                .and_then(|c| c.get("schema"))
                .map(schema_ref)
                .unwrap_or_default();
            out.push_str(&format!(
                "<li><strong>{}</strong> {} {schema}</li>",
                esc(status),
                text(r, "description")
            ));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

/// The reference page.
pub async fn reference(State(state): State<AppState>) -> Html<String> {
    let doc = document_json(state.config.public_url.as_str());
    let mut out = String::new();
    out.push_str(&format!(
        "<h1>{}</h1><p>{}</p><p>The machine-readable document: <a href=\"openapi.json\">openapi.json</a> (OpenAPI 3.1). Server: <code>{}</code>.</p>",
        text(&doc["info"], "title"),
        text(&doc["info"], "description"),
        esc(doc.pointer("/servers/0/url").and_then(Value::as_str).unwrap_or("")),
    ));
    out.push_str("<nav aria-label=\"Contents\"><ul><li><a href=\"#operations\">Operations</a></li><li><a href=\"#schemas\">Schemas</a></li><li><a href=\"#errors\">Error codes</a></li></ul></nav>");
    out.push_str("<h2 id=\"operations\">Operations</h2>");
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in ["get", "post", "put", "delete"] {
                if let Some(op) = item.get(method) {
                    operation(&mut out, method, path, op);
                }
            }
        }
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, s) in schemas {
            out.push_str(&format!(
                "<section aria-labelledby=\"schema-{0}\"><h3 id=\"schema-{0}\">{0}</h3><p>{1}</p>",
                esc(name),
                text(s, "description")
            ));
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = s
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                out.push_str("<table><thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Type</th><th scope=\"col\">Required</th><th scope=\"col\">Description</th></tr></thead><tbody>");
                for (field, p) in props {
                    out.push_str(&format!(
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        schema_ref(p),
                        if required.contains(&field.as_str()) {
                            "yes"
                        } else {
                            "no"
                        },
                        text(p, "description")
                    ));
                }
                out.push_str("</tbody></table>");
            } else {
                out.push_str(&format!("<p>{}</p>", schema_ref(s)));
            }
            out.push_str("</section>");
        }
    }
    out.push_str("<h2 id=\"errors\">Error codes</h2><table><thead><tr><th scope=\"col\">Code</th><th scope=\"col\">Meaning</th></tr></thead><tbody>");
    let t = converge_app::text::en();
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "<tr id=\"error-{0}\"><td><code>{0}</code></td><td>{1}</td></tr>",
            code.code(),
            esc(t.for_error(code))
        ));
    }
    out.push_str("</tbody></table>");
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Converge API reference</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/pkg/converge.css\"></head><body>\
         <main id=\"main\" class=\"api-reference\">{out}</main></body></html>"
    ))
}
