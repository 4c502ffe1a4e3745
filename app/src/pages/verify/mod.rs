//! `/signin/verify`: the second step of sign-in, and re-authentication (`?next=`) before changes
//! to security info. Shows the default method first, with "Use another method".

use crate::api::{
    get_verify, MethodView, SignOut, VerifyCode, VerifyRecovery, VerifySend, VerifyTap,
};
use crate::components::ErrorNotice;
use crate::pages::common::{page_error, param, recovery_code_field};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn VerifyPage() -> impl IntoView {
    let t = text::en();
    let s = t.sec;
    let error = page_error();
    let method = param("method");
    let next = param("next");
    let sent = param("sent").is_some();
    let call = param("sent").as_deref() == Some("call");
    let reauth = next.is_some();
    let next_value = next.clone().unwrap_or_default();
    let body = Suspend::new(async move {
        let v = match get_verify(method, reauth).await {
            Ok(v) => v,
            Err(e) => return view! { <ErrorNotice code=e.code()/> }.into_any(),
        };
        let Some(current) = v.current.clone() else {
            return view! { <p><a href=routes::SECURITY_INFO>{s.back_to_security_info}</a></p> }
                .into_any();
        };
        let challenge = challenge(current, (sent, call), v.pin_mode, next_value.clone());
        let others = (!v.others.is_empty()).then(|| {
            let links = v
                .others
                .iter()
                .map(|m| {
                    let mut href =
                        format!("{}?{}", routes::VERIFY, routes::query_pair("method", &m.id));
                    if !next_value.is_empty() {
                        href.push('&');
                        href.push_str(&routes::query_pair("next", &next_value));
                    }
                    view! { <li><a href=href>{label(m)}</a></li> }
                })
                .collect_view();
            view! {
                <details class="other-methods">
                    <summary>{s.verify_other}</summary>
                    <ul class="plain-list">{links}</ul>
                </details>
            }
        });
        // recovery codes: for a user who has none of the other methods at hand
        let recovery = (v.recovery && !reauth).then(|| {
            let action = ServerAction::<VerifyRecovery>::new();
            view! {
                <details class="other-methods" open=param("recovery").is_some() data-testid=routes::testid::RECOVERY_FORM>
                    <summary>{s.use_recovery}</summary>
                    <ActionForm action>
                        {recovery_code_field("recovery-code", false)}
                        <button type="submit" class="button primary">{s.verify}</button>
                    </ActionForm>
                </details>
            }
        });
        view! { {challenge} {others} {recovery} }.into_any()
    });
    let sign_out = ServerAction::<SignOut>::new();
    // a Temporary Access Pass from the helpdesk, for users who can't use any of their methods
    let tap = (!reauth).then(|| {
        let h = t.helpdesk;
        let action = ServerAction::<VerifyTap>::new();
        view! {
            <details class="other-methods" open=param("tap").is_some() data-testid=routes::testid::TAP_FORM>
                <summary>{h.tap_title}</summary>
                <p class="muted small">{h.tap_intro}</p>
                <ActionForm action>
                    <div class="field">
                        <label for="tap-pass">{h.tap_label}</label>
                        <input id="tap-pass" name="pass" type="text" autocomplete="off"
                            autocapitalize="characters" spellcheck="false" required=true maxlength="40"/>
                    </div>
                    <button type="submit" class="button primary">{h.tap_button}</button>
                </ActionForm>
            </details>
        }
    });
    let cancel = if reauth {
        view! { <p><a href=routes::SECURITY_INFO>{s.cancel}</a></p> }.into_any()
    } else {
        view! {
            <ActionForm action=sign_out>
                <button type="submit" class="button link">{s.cancel_signin}</button>
            </ActionForm>
        }
        .into_any()
    };
    view! {
        <Title text=format!("{} · {}", s.verify_title, t.product)/>
        <main id="main" class="auth-page">
            <section class="card" aria-labelledby="verify-title" data-testid=routes::testid::VERIFY_FORM>
                <p class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    {t.product}
                </p>
                <h1 id="verify-title">{s.verify_title}</h1>
                <p class="muted">{if reauth { s.reauth_intro } else { s.verify_intro }}</p>
                {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
                <Suspense fallback=|| ()>{body}</Suspense>
                {tap}
                {cancel}
            </section>
        </main>
    }
}

fn label(m: &MethodView) -> String {
    let s = text::en().sec;
    if m.detail.is_empty() {
        format!("{} · {}", s.kind_label(&m.kind), m.name)
    } else {
        format!("{} · {}", s.kind_label(&m.kind), m.detail)
    }
}

fn challenge(m: MethodView, (sent, call): (bool, bool), pin_mode: bool, next: String) -> AnyView {
    let s = text::en().sec;
    let heading = view! { <p class="current-method"><strong>{label(&m)}</strong></p> };
    let id = m.id.clone();
    // a code to type (`prompt`), or, after a call, none: approving the call on the phone
    // proves the step
    let code_form = |prompt: Option<&'static str>, pin: bool| {
        let action = ServerAction::<VerifyCode>::new();
        let (id, next) = (id.clone(), next.clone());
        let (pin_id, button, class, testid) = match prompt {
            Some(_) => ("pin", s.verify, "button primary wide", None),
            None => (
                "pin-call",
                s.voice_approved_button,
                "button secondary wide",
                Some("call-approved"),
            ),
        };
        let code = match prompt {
            Some(prompt) => view! {
                <div class="field">
                    <label for="code">{prompt}</label>
                    <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                        pattern="[0-9 ]{6,9}" maxlength="9" required=true autofocus=true
                        data-testid=routes::testid::CODE_INPUT/>
                </div>
            }
            .into_any(),
            None => view! { <input type="hidden" name="code" value=""/> }.into_any(),
        };
        view! {
            <ActionForm action>
                <input type="hidden" name="method" value=id/>
                <input type="hidden" name="next" value=next/>
                {code}
                {pin.then(|| view! {
                    <div class="field">
                        <label for=pin_id>{s.verify_pin_label}</label>
                        <input id=pin_id name="pin" type="password" inputmode="numeric" autocomplete="off" maxlength="16" required=true/>
                    </div>
                })}
                <button type="submit" class=class data-testid=testid>{button}</button>
            </ActionForm>
        }
    };
    let send_form = |how: &'static str, label: &'static str, primary: bool| {
        let action = ServerAction::<VerifySend>::new();
        let (id, next) = (id.clone(), next.clone());
        view! {
            <ActionForm action>
                <input type="hidden" name="method" value=id/>
                <input type="hidden" name="how" value=how/>
                <input type="hidden" name="next" value=next/>
                <button type="submit" class=if primary { "button primary wide" } else { "button secondary wide" }>{label}</button>
            </ActionForm>
        }
    };
    match m.kind.as_str() {
        "totp" => view! { {heading} {code_form(Some(s.verify_totp), false)} }.into_any(),
        "token" => view! { {heading} {code_form(Some(s.verify_token), false)} }.into_any(),
        "phone" => {
            let sends = view! {
                {send_form("sms", s.verify_send_text, !sent)}
                {send_form("voice", s.verify_send_call, false)}
            };
            if sent {
                view! {
                    {heading} {code_form(Some(s.code_label), pin_mode)}
                    {call.then(|| code_form(None, pin_mode))}
                    <div class="resend">{sends}</div>
                }
                .into_any()
            } else {
                view! { {heading} {sends} }.into_any()
            }
        }
        "email" => {
            if sent {
                view! { {heading} {code_form(Some(s.code_label), false)} {send_form("email", s.code_resend, false)} }.into_any()
            } else {
                view! { {heading} {send_form("email", s.verify_send_email, true)} }.into_any()
            }
        }
        "passkey" => view! {
            {heading}
            <form
                id="passkey-authenticate"
                class="passkey-form"
                data-mode="authenticate"
                data-next=next.clone()
                data-msg-unsupported=s.passkey_unsupported
                data-msg-cancelled=s.passkey_cancelled
                data-msg-working=s.passkey_working
            >
                <p class="passkey-status" role="status" aria-live="polite"></p>
                <p class="passkey-nojs notice warn">{s.passkey_needs_js}</p>
                <button type="submit" class="button primary wide" data-testid=routes::testid::PASSKEY_BUTTON hidden=true>{s.passkey_use}</button>
            </form>
            <script src="/passkey.js" defer=true></script>
        }
        .into_any(),
        _ => ().into_any(),
    }
}
