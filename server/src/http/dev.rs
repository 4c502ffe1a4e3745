//! `/dev/messages`: what the dev mailbox and dev SMS provider "delivered", for trying Converge
//! without an SMTP server or SMS gateway. Only routed when `sms.dev_page = true`; never enable it
//! in production (it shows codes).

use super::AppState;
use axum::extract::State;
use axum::response::Html;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn messages(State(state): State<AppState>) -> Html<String> {
    let rows = state.store.dev_messages(100).await.unwrap_or_default();
    let mut items = String::new();
    for (channel, to, subject, body, at) in rows {
        items.push_str(&format!(
            "<article class=\"panel\"><h2>{} → {}</h2><p class=\"muted\">{} UTC{}</p><pre>{}</pre></article>",
            escape(&channel),
            escape(&to),
            crate::domain::format_time(at),
            if subject.is_empty() { String::new() } else { format!(" · {}", escape(&subject)) },
            escape(&body)
        ));
    }
    if items.is_empty() {
        items.push_str("<p class=\"muted\">Nothing delivered yet.</p>");
    }
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Dev messages · Converge</title>\
         <link rel=\"stylesheet\" href=\"/pkg/converge.css\"></head><body><main id=\"main\" class=\"page\">\
         <h1>Dev messages</h1><p class=\"lead\">Mail and SMS the dev transports kept instead of sending \
         (newest first). This page exists only because <code>sms.dev_page</code> is on.</p>{items}</main></body></html>"
    ))
}
