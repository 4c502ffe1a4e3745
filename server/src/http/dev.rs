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

/// Where the dev page's call buttons post.
pub const VOICE_ANSWER: &str = "/dev/voice";

#[derive(serde::Deserialize)]
pub struct VoiceAnswer {
    id: String,
    result: String,
}

/// The dev page's Approve / Deny / Report fraud buttons: the same handling as a gateway's
/// signed callback.
pub async fn answer_call(
    State(state): State<AppState>,
    axum::Form(a): axum::Form<VoiceAnswer>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !matches!(a.result.as_str(), "approve" | "deny" | "fraud") {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "approve, deny or fraud\n",
        )
            .into_response();
    }
    let now = state.clock.now();
    let (status, text) = super::voice::record(&state, &a.id, &a.result, now).await;
    if status.is_success() {
        axum::response::Redirect::to("/dev/messages").into_response()
    } else {
        (status, text).into_response()
    }
}

pub async fn messages(State(state): State<AppState>) -> Html<String> {
    let rows = state.store.dev_messages(100).await.unwrap_or_default();
    let mut items = String::new();
    for (channel, to, subject, body, at) in rows {
        // a call: answer it as the person on the phone would (the voice subject is the call id)
        let answer = if channel == "voice" {
            ["approve", "deny", "fraud"]
                .iter()
                .map(|r| {
                    format!(
                        "<form method=\"post\" action=\"{VOICE_ANSWER}\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
                         <input type=\"hidden\" name=\"result\" value=\"{r}\"><button type=\"submit\" class=\"button secondary\" \
                         data-testid=\"dev-voice-{r}\">{}</button></form>",
                        escape(&subject),
                        match *r {
                            "approve" => "Approve (1)",
                            "deny" => "Deny (2)",
                            _ => "Report fraud (3)",
                        }
                    )
                })
                .collect::<String>()
        } else {
            String::new()
        };
        items.push_str(&format!(
            "<article class=\"panel\"><h2>{} → {}</h2><p class=\"muted\">{} UTC{}</p><pre>{}</pre>{}</article>",
            escape(&channel),
            escape(&to),
            crate::domain::format_time(at),
            if subject.is_empty() { String::new() } else { format!(" · {}", escape(&subject)) },
            escape(&body),
            if answer.is_empty() { String::new() } else { format!("<div class=\"row-actions\">{answer}</div>") },
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
