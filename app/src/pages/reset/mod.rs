//! Self-service password reset and unlock: `/reset` (who are you), `/reset/verify` (prove 1 or 2
//! registered methods), `/reset/finish` (new password, or unlock), `/reset/done`. Every step is a
//! plain form post; only the passkey choice needs JavaScript.

use crate::api::{
    get_reset_challenge, get_reset_view, ResetCancel, ResetChoice, ResetCode, ResetPassword,
    ResetQuestions, ResetSend, ResetStart, ResetUnlock, ResetView,
};
use crate::components::{ErrorNotice, InfoNotice, NewPasswordFields};
use crate::pages::common::{page_error, param, recovery_code_field};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

/// The card every reset page sits in.
#[component]
fn ResetCard(title: &'static str, children: Children) -> impl IntoView {
    let t = text::en();
    view! {
        <Title text=format!("{} · {}", title, t.product)/>
        <main id="main" class="auth-page">
            <section class="card" aria-labelledby="reset-title">
                <p class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    {t.product}
                </p>
                <h1 id="reset-title">{title}</h1>
                {children()}
            </section>
        </main>
    }
}

/// "Cancel": ends the flow and its cookie.
fn cancel_form() -> impl IntoView {
    let r = text::en().reset;
    let action = ServerAction::<ResetCancel>::new();
    view! {
        <ActionForm action>
            <button type="submit" class="button link">{r.cancel}</button>
        </ActionForm>
    }
}

/// The flow is gone (expired, finished, ended): say why and offer to start again.
fn flow_gone(e: crate::api::ApiError) -> AnyView {
    let r = text::en().reset;
    view! {
        <ErrorNotice code=e.code() testid=routes::testid::ERROR/>
        <p><a href=routes::RESET>{r.start_again}</a></p>
    }
    .into_any()
}

#[component]
pub fn ResetPage() -> impl IntoView {
    let t = text::en();
    let r = t.reset;
    let error = page_error();
    let action = ServerAction::<ResetStart>::new();
    let challenge = Resource::new_blocking(|| (), |_| get_reset_challenge());
    view! {
        <ResetCard title=r.title>
            <p class="muted">{r.intro}</p>
            {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
            <div data-testid=routes::testid::RESET_FORM>
                <ActionForm action attr:id="reset-start">
                    <div class="field">
                        <label for="login">{r.login_label}</label>
                        <input id="login" name="login" type="text" autocomplete="username"
                            autocapitalize="off" spellcheck="false" required=true maxlength="256" autofocus=true/>
                    </div>
                    <fieldset class="field">
                        <legend>{r.why_legend}</legend>
                        <label class="choice">
                            <input type="radio" name="unlock" value="0" checked=true/>
                            {r.why_reset}
                        </label>
                        <label class="choice">
                            <input type="radio" name="unlock" value="1"/>
                            {r.why_unlock}
                        </label>
                    </fieldset>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            match challenge.await {
                                Ok(c) if c.bits > 0 => view! {
                                    <input type="hidden" name="proof" value=c.challenge.clone()
                                        data-pow=c.challenge data-bits=c.bits.to_string()/>
                                    <p class="pow-status muted small" role="status" aria-live="polite"
                                        data-msg-working=r.checking></p>
                                    <noscript><p class="notice warn">{r.needs_js}</p></noscript>
                                    <script src="/reset.js" defer=true></script>
                                }
                                .into_any(),
                                _ => ().into_any(),
                            }
                        })}
                    </Suspense>
                    <button type="submit" class="button primary wide">{r.next}</button>
                </ActionForm>
            </div>
            <p><a href=routes::SIGNIN>{r.back_to_signin}</a></p>
        </ResetCard>
    }
}

fn choice_text(c: &ResetChoice) -> String {
    let r = text::en().reset;
    let what = if c.detail.is_empty() {
        c.name.clone()
    } else {
        c.detail.clone()
    };
    match c.kind.as_str() {
        "questions" => r.questions_choice.to_string(),
        _ => format!("{} · {what}", r.choice_label(&c.kind)),
    }
}

#[component]
pub fn ResetVerifyPage() -> impl IntoView {
    let r = text::en().reset;
    let error = page_error();
    let chosen = param("method");
    let sent = param("sent").is_some();
    let call = param("sent").as_deref() == Some("call");
    let to = param("to").unwrap_or_default();
    let passed = param("notice").as_deref() == Some("passed");
    let view = Resource::new_blocking(|| (), |_| get_reset_view());
    let body = move || {
        let chosen = chosen.clone();
        let to = to.clone();
        Suspend::new(async move {
            let v = match view.await {
                Ok(v) => v,
                Err(e) => return flow_gone(e),
            };
            if v.stage != "prove" {
                return view! { <p><a class="button primary" href=routes::RESET_FINISH>{r.next}</a></p> }
                    .into_any();
            }
            prove(v, chosen, (sent, call), to).into_any()
        })
    };
    view! {
        <ResetCard title=r.verify_title>
            {passed.then(|| view! { <InfoNotice message=r.passed_notice/> })}
            {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
            <Suspense fallback=|| ()>{body}</Suspense>
            {cancel_form()}
        </ResetCard>
    }
}

fn prove(v: ResetView, chosen: Option<String>, sent: (bool, bool), to: String) -> impl IntoView {
    let r = text::en().reset;
    let current = chosen
        .and_then(|id| v.choices.iter().find(|c| c.id == id).cloned())
        .or_else(|| v.choices.first().cloned());
    let step = r
        .step
        .replace("{n}", &v.gate.to_string())
        .replace("{of}", &v.gates.to_string());
    let links = v
        .choices
        .iter()
        .map(|c| {
            let href = format!("{}?{}", routes::RESET_VERIFY, routes::query_pair("method", &c.id));
            let here = current.as_ref().is_some_and(|cur| cur.id == c.id);
            view! {
                <li>
                    <a href=href aria-current=if here { Some("true") } else { None }>{choice_text(c)}</a>
                </li>
            }
        })
        .collect_view();
    let form = current.map(|c| challenge(c, &v.questions, sent, to));
    view! {
        <p class="step">{step}</p>
        <p class="muted">{r.verify_intro}</p>
        <nav aria-label=r.choose_legend>
            <ul class="plain-list choices" data-testid=routes::testid::RESET_CHOICES>{links}</ul>
        </nav>
        {form}
    }
}

fn code_form(id: String, label: &'static str) -> impl IntoView {
    let r = text::en().reset;
    let action = ServerAction::<ResetCode>::new();
    view! {
        <ActionForm action>
            <input type="hidden" name="method" value=id/>
            <div class="field">
                <label for="code">{label}</label>
                <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                    pattern="[0-9 ]{6,9}" maxlength="9" required=true autofocus=true
                    data-testid=routes::testid::CODE_INPUT/>
            </div>
            <button type="submit" class="button primary wide">{r.verify_button}</button>
        </ActionForm>
    }
}

/// After a call: approving it on the phone proves the gate, nothing to type.
fn approved_form(id: String) -> impl IntoView {
    let s = text::en().sec;
    let action = ServerAction::<ResetCode>::new();
    view! {
        <ActionForm action>
            <input type="hidden" name="method" value=id/>
            <input type="hidden" name="code" value=""/>
            <button type="submit" class="button secondary wide" data-testid="call-approved">{s.voice_approved_button}</button>
        </ActionForm>
    }
}

fn send_form(id: String, how: &'static str, label: &'static str, primary: bool) -> impl IntoView {
    let action = ServerAction::<ResetSend>::new();
    view! {
        <ActionForm action>
            <input type="hidden" name="method" value=id/>
            <input type="hidden" name="how" value=how/>
            <button type="submit" class=if primary { "button primary wide" } else { "button secondary wide" }>{label}</button>
        </ActionForm>
    }
}

fn challenge(
    c: ResetChoice,
    questions: &[String],
    (sent, call): (bool, bool),
    to: String,
) -> AnyView {
    let t = text::en();
    let r = t.reset;
    let heading = view! { <h2 class="current-method">{choice_text(&c)}</h2> };
    let sent_note = (sent && !to.is_empty()).then(|| {
        view! {
            <div class="notice info" role="status" data-testid=routes::testid::NOTICE>
                <p>{r.sent_to.replace("{to}", &to)}</p>
            </div>
        }
    });
    let id = c.id.clone();
    match c.kind.as_str() {
        "email" if sent => view! {
            {heading} {sent_note} <p class="muted small">{r.sent_email_hint}</p>
            {code_form(id.clone(), r.code_label)}
            <div class="resend">{send_form(id, "email", r.resend, false)}</div>
        }
        .into_any(),
        "email" => view! { {heading} {send_form(id, "email", r.send_email, true)} }.into_any(),
        "phone" if sent => view! {
            {heading} {sent_note}
            {code_form(id.clone(), r.code_label)}
            {call.then(|| approved_form(id.clone()))}
            <div class="resend">
                {send_form(id.clone(), "sms", r.send_text, false)}
                {send_form(id, "voice", r.send_call, false)}
            </div>
        }
        .into_any(),
        "phone" => view! {
            {heading}
            {send_form(id.clone(), "sms", r.send_text, true)}
            {send_form(id, "voice", r.send_call, false)}
        }
        .into_any(),
        "totp" => view! { {heading} {code_form(id, r.app_code_label)} }.into_any(),
        "token" => view! { {heading} {code_form(id, r.token_code_label)} }.into_any(),
        "recovery" => {
            let action = ServerAction::<ResetCode>::new();
            view! {
                {heading}
                <ActionForm action>
                    <input type="hidden" name="method" value=id/>
                    {recovery_code_field("code", true)}
                    <button type="submit" class="button primary wide">{r.verify_button}</button>
                </ActionForm>
            }
            .into_any()
        }
        "questions" => {
            let action = ServerAction::<ResetQuestions>::new();
            let fields = questions
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let field = format!("a{}", i + 1);
                    view! {
                        <div class="field">
                            <label for=field.clone()>{q.clone()}</label>
                            <input id=field.clone() name=field type="text" autocomplete="off"
                                spellcheck="false" required=true maxlength="200"/>
                        </div>
                    }
                })
                .collect_view();
            view! {
                {heading}
                <p class="muted small">{r.questions_intro}</p>
                <ActionForm action>
                    <input type="hidden" name="method" value=id/>
                    {fields}
                    <button type="submit" class="button primary wide">{r.verify_button}</button>
                </ActionForm>
            }
            .into_any()
        }
        "passkey" => view! {
            {heading}
            <form
                id="passkey-reset"
                class="passkey-form"
                data-mode="reset"
                data-msg-unsupported=t.sec.passkey_unsupported
                data-msg-cancelled=t.sec.passkey_cancelled
                data-msg-working=t.sec.passkey_working
            >
                <p class="passkey-status" role="status" aria-live="polite"></p>
                <p class="passkey-nojs notice warn">{t.sec.passkey_needs_js}</p>
                <button type="submit" class="button primary wide" data-testid=routes::testid::PASSKEY_BUTTON hidden=true>{t.sec.passkey_use}</button>
            </form>
            <script src="/passkey.js" defer=true></script>
        }
        .into_any(),
        _ => ().into_any(),
    }
}

#[component]
pub fn ResetFinishPage() -> impl IntoView {
    let r = text::en().reset;
    let error = page_error();
    let view = Resource::new_blocking(|| (), |_| get_reset_view());
    let body = move || {
        Suspend::new(async move {
            let v = match view.await {
                Ok(v) => v,
                Err(e) => return flow_gone(e),
            };
            match v.stage.as_str() {
                "password" => {
                    let action = ServerAction::<ResetPassword>::new();
                    let intro = r.new_password_intro.replace("{min}", &v.min_length.to_string());
                    view! {
                        <h2>{r.new_password_title}</h2>
                        <p class="muted">{intro}</p>
                        <ActionForm action>
                            <NewPasswordFields min_length=v.min_length complexity=v.complexity username=v.username/>
                            <button type="submit" class="button primary wide">{r.save_password}</button>
                        </ActionForm>
                    }
                    .into_any()
                }
                "unlock" => {
                    let action = ServerAction::<ResetUnlock>::new();
                    view! {
                        <h2>{r.unlock_title}</h2>
                        <p class="muted">{r.unlock_intro}</p>
                        <ActionForm action>
                            <button type="submit" class="button primary wide">{r.unlock_button}</button>
                        </ActionForm>
                    }
                    .into_any()
                }
                _ => view! { <p><a class="button primary" href=routes::RESET_VERIFY>{r.next}</a></p> }
                    .into_any(),
            }
        })
    };
    view! {
        <ResetCard title=r.title>
            {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
            <Suspense fallback=|| ()>{body}</Suspense>
            {cancel_form()}
        </ResetCard>
    }
}

#[component]
pub fn ResetDonePage() -> impl IntoView {
    let r = text::en().reset;
    let unlock = param("done").as_deref() == Some("unlock");
    let (title, body) = if unlock {
        (r.done_unlock_title, r.done_unlock_body)
    } else {
        (r.done_reset_title, r.done_reset_body)
    };
    view! {
        <ResetCard title>
            <div class="notice success" role="status" data-testid=routes::testid::RESET_DONE>
                <p>{body}</p>
            </div>
            <p><a class="button primary wide" href=routes::SIGNIN>{r.go_signin}</a></p>
        </ResetCard>
    }
}
