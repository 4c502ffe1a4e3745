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
    if param("notice").as_deref() == Some("recovery_used") {
        let left: u32 = param("left").and_then(|l| l.parse().ok()).unwrap_or(0);
        return Some(format!("{} {left}", s.recovery_used_notice));
    }
    let fixed = match param("notice").as_deref() {
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
