//! `/signin`: username + password. A plain form post (works before any wasm loads); the server
//! answers with a redirect either way, carrying one generic error code on failure.

use crate::api::{ErrorCode, SignIn};
use crate::components::{ErrorNotice, InfoNotice, PasswordField};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SigninPage() -> impl IntoView {
    let t = text::en();
    let query = use_query_map();
    let error = query.with_untracked(|q| {
        q.get(routes::ERROR_PARAM)
            .and_then(|c| ErrorCode::from_code(&c))
    });
    let notice = query.with_untracked(|q| match q.get("notice").as_deref() {
        Some("signed_out") => Some(t.signed_out_notice),
        Some("expired") => Some(t.session_expired_notice),
        _ => None,
    });
    let username = query.with_untracked(|q| q.get(routes::USERNAME_PARAM).unwrap_or_default());
    let action = ServerAction::<SignIn>::new();
    view! {
        <Title text=format!("{} · {}", t.signin_title, t.product)/>
        <main id="main" class="auth-page">
            <section class="card" aria-labelledby="signin-title">
                <p class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    {t.product}
                </p>
                <h1 id="signin-title">{t.signin_title}</h1>
                <p class="muted">{t.signin_intro}</p>
                {error.map(|code| view! { <ErrorNotice code testid=routes::testid::SIGNIN_ERROR/> })}
                {notice.map(|message| view! { <InfoNotice message/> })}
                <div data-testid=routes::testid::SIGNIN_FORM>
                    <ActionForm action>
                        <div class="field">
                            <label for="username">{t.username_label}</label>
                            <input
                                id="username"
                                name="username"
                                type="text"
                                autocomplete="username"
                                autocapitalize="off"
                                spellcheck="false"
                                required=true
                                maxlength="256"
                                value=username
                            />
                        </div>
                        <PasswordField
                            id="password".to_string()
                            name="password".to_string()
                            label=t.password_label.to_string()
                            autocomplete="current-password".to_string()
                            show_label=t.show_password.to_string()
                            hide_label=t.hide_password.to_string()
                        />
                        <button type="submit" class="button primary wide">{t.signin_button}</button>
                    </ActionForm>
                </div>
                <p class="forgot"><a href=routes::RESET data-testid=routes::testid::RESET_LINK>{t.reset.forgot_link}</a></p>
                // passwordless: offered once the script runs (a passkey needs JavaScript)
                <form
                    id="passkey-discover"
                    class="passkey-form"
                    data-mode="discover"
                    hidden=true
                    data-msg-unsupported=t.sec.passkey_unsupported
                    data-msg-cancelled=t.sec.passkey_cancelled
                    data-msg-working=t.sec.passkey_working
                >
                    <div class="or-divider" aria-hidden="true"><span>{t.sec.or}</span></div>
                    <p class="passkey-status" role="status" aria-live="polite"></p>
                    <button type="submit" class="button secondary wide" data-testid=routes::testid::PASSKEY_SIGNIN>
                        {t.sec.passkey_signin}
                    </button>
                </form>
                <script src="/passkey.js" defer=true></script>
                <p class="muted small">{t.tagline}</p>
            </section>
        </main>
    }
}
