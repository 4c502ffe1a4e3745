//! Error and information notices, announced to screen readers.

use crate::api::ErrorCode;
use crate::{routes, text};
use leptos::prelude::*;

/// A specific, user-facing error with the code users can quote to the helpdesk.
#[component]
pub fn ErrorNotice(code: ErrorCode, #[prop(optional)] testid: &'static str) -> impl IntoView {
    let t = text::en();
    view! {
        <div class="notice error" role="alert" data-testid=testid>
            <p>{t.for_error(code)}</p>
            <p class="code">{t.error_code_prefix} ": " {code.code()}</p>
        </div>
    }
}

#[component]
pub fn InfoNotice(#[prop(into)] message: String) -> impl IntoView {
    view! {
        <div class="notice info" role="status" data-testid=routes::testid::NOTICE>
            <p>{message}</p>
        </div>
    }
}
