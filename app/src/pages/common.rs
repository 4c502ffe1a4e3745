//! What every security page reads from its address: the error of the last attempt, a notice,
//! the flow it belongs to (the wizard or Security info), and single parameters.

use crate::api::ErrorCode;
use crate::{routes, text};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// `?error=CODE` → the error to show.
pub fn page_error() -> Option<ErrorCode> {
    param(routes::ERROR_PARAM).and_then(|c| ErrorCode::from_code(&c))
}

/// `?notice=…` → the confirmation to show.
pub fn page_notice() -> Option<String> {
    let s = text::en().sec;
    let notice = param("notice");
    if notice.as_deref() == Some("recovery_used") {
        let left: u32 = param("left").and_then(|l| l.parse().ok()).unwrap_or(0);
        return Some(format!("{} {left}", s.recovery_used_notice));
    }
    let fixed = match notice.as_deref() {
        Some("added") => Some(s.added_notice),
        Some("removed") => Some(s.removed_notice),
        Some("saved") => Some(s.saved_notice),
        Some("confirmed") => Some(s.confirmed_notice),
        Some("others_signed_out") => Some(s.others_signed_out_notice),
        Some("helpdesk_answered") => Some(text::en().helpdesk.prompt_answered),
        Some("resynced") => Some(s.resynced_notice),
        _ => None,
    };
    fixed.map(str::to_string)
}

/// `setup` inside the wizard, `info` from the Security info page.
pub fn page_flow() -> String {
    match param(routes::FLOW_PARAM).as_deref() {
        Some("setup") => "setup".into(),
        _ => "info".into(),
    }
}

/// One query parameter (non-empty), read once when the page renders.
pub fn param(name: &str) -> Option<String> {
    use_query_map()
        .with_untracked(|q| q.get(name))
        .filter(|v| !v.is_empty())
}

/// Where "Cancel" / "Back" leads for a flow.
pub fn back_for(flow: &str) -> &'static str {
    if flow == "setup" {
        routes::SETUP
    } else {
        routes::SECURITY_INFO
    }
}

/// The field a recovery code is typed in (the second sign-in step, a reset gate).
pub fn recovery_code_field(id: &'static str, focus: bool) -> impl IntoView {
    let s = text::en().sec;
    view! {
        <div class="field">
            <label for=id>{s.recovery_code_label}</label>
            <input id=id name="code" type="text" autocomplete="off" autocapitalize="none"
                spellcheck="false" maxlength="40" required=true autofocus=focus
                aria-describedby="recovery-hint"/>
            <p id="recovery-hint" class="hint">{s.recovery_code_hint}</p>
        </div>
    }
}

/// The two consecutive codes an HOTP token is resynchronised from (fields `first`, `second`);
/// `key` keeps the ids unique on a page with several tokens. `autocomplete`: `one-time-code` for
/// the holder, `off` for the helpdesk typing what a caller reads out.
pub fn resync_code_fields(key: &str, autocomplete: &'static str) -> impl IntoView {
    let s = text::en().sec;
    let (first, second) = (format!("first-{key}"), format!("second-{key}"));
    view! {
        <div class="field inline">
            <label for=first.clone()>{s.resync_first}</label>
            <input id=first name="first" type="text" inputmode="numeric" autocomplete=autocomplete
                pattern="[0-9 ]{6,9}" maxlength="9" required=true/>
        </div>
        <div class="field inline">
            <label for=second.clone()>{s.resync_second}</label>
            <input id=second name="second" type="text" inputmode="numeric" autocomplete=autocomplete
                pattern="[0-9 ]{6,9}" maxlength="9" required=true/>
        </div>
    }
}
