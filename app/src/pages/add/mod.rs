//! `/security-info/add/*`: adding one method. The same pages serve the wizard (`?flow=setup`,
//! with its progress) and the Security info page. Every step is a plain form post except the
//! passkey ceremony, which needs the browser's WebAuthn API.

use crate::api::{
    get_overview, get_pending_code, get_recovery_codes, get_totp_setup, CodeConfirm, CodeResend,
    EmailStart, PhoneStart, RecoveryGenerate, SetPin, SetQuestions, TokenActivate, TotpConfirm,
    TotpStart,
};
use crate::components::{AppFrame, ErrorNotice};
use crate::pages::common::{back_for, page_error, page_flow, param};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

/// "Step k of n" while in the wizard.
#[component]
fn Progress(flow: String) -> impl IntoView {
    let s = text::en().sec;
    let inner = Suspend::new(async move {
        if flow != "setup" {
            return ().into_any();
        }
        let Ok(o) = get_overview().await else {
            return ().into_any();
        };
        let n = o.required.max(o.registered + 1);
        let k = (o.registered + 1).min(n);
        view! {
            <p class="progress" aria-live="polite">
                {s.step_of(k, n)}
            </p>
        }
        .into_any()
    });
    view! { <Suspense fallback=|| ()>{inner}</Suspense> }
}

/// The frame of every add page: title, progress, the last error, cancel.
#[component]
fn AddFrame(title: &'static str, children: Children) -> impl IntoView {
    let t = text::en();
    let flow = page_flow();
    let error = page_error();
    let back = back_for(&flow);
    view! {
        <Title text=format!("{title} · {}", t.product)/>
        <AppFrame>
            <div class="narrow">
                <Progress flow=flow.clone()/>
                <h1>{title}</h1>
                {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
                {children()}
                <p class="cancel-row">
                    <a href=back>{t.sec.cancel}</a>
                </p>
            </div>
        </AppFrame>
    }
}

fn flow_input() -> impl IntoView {
    view! { <input type="hidden" name="flow" value=page_flow()/> }
}

fn code_input(label: &'static str) -> impl IntoView {
    code_input_named("code", label, true)
}

/// A one-time code field (`name` and id), 6–8 digits as apps and tokens show them.
pub(crate) fn code_input_named(
    name: &'static str,
    label: &'static str,
    focus: bool,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=name>{label}</label>
            <input
                id=name
                name=name
                type="text"
                inputmode="numeric"
                autocomplete="one-time-code"
                pattern="[0-9 ]{6,9}"
                maxlength="9"
                required=true
                autofocus=focus
                data-testid=routes::testid::CODE_INPUT
            />
        </div>
    }
}

#[component]
pub fn AddAppPage() -> impl IntoView {
    let s = text::en().sec;
    let setup = param("setup");
    let body = match setup {
        None => {
            let start = ServerAction::<TotpStart>::new();
            let name = param("name").unwrap_or_else(|| s.totp_name_default.to_string());
            view! {
                <p>{s.kind_totp_about}</p>
                <ActionForm action=start>
                    {flow_input()}
                    <div class="field">
                        <label for="name">{s.totp_name_label}</label>
                        <input id="name" name="name" type="text" maxlength="40" required=true value=name aria-describedby="name-hint"/>
                        <p id="name-hint" class="hint">{s.totp_name_hint}</p>
                    </div>
                    <button type="submit" class="button primary">{s.totp_next}</button>
                </ActionForm>
            }
            .into_any()
        }
        Some(id) => {
            let confirm = ServerAction::<TotpConfirm>::new();
            let inner = Suspend::new(async move {
                let v = match get_totp_setup(id).await {
                    Ok(v) => v,
                    Err(e) => return view! { <ErrorNotice code=e.code()/> }.into_any(),
                };
                view! {
                    <ol class="steps">
                        <li>
                            <p>{s.totp_scan}</p>
                            <div class="qr" role="img" aria-label=s.qr_alt data-testid=routes::testid::QR inner_html=v.qr_svg></div>
                        </li>
                        <li>
                            <p>{s.totp_manual}</p>
                            <p><code class="key" data-testid=routes::testid::TOTP_KEY>{v.key}</code></p>
                            <p class="small muted">{s.totp_account} ": " {v.issuer} " · " {v.account}</p>
                        </li>
                        <li>
                            <ActionForm action=confirm>
                                {flow_input()}
                                <input type="hidden" name="id" value=v.id/>
                                {code_input(s.totp_code_label)}
                                <button type="submit" class="button primary">{s.verify}</button>
                            </ActionForm>
                        </li>
                    </ol>
                }
                .into_any()
            });
            view! { <Suspense fallback=|| ()>{inner}</Suspense> }.into_any()
        }
    };
    view! { <AddFrame title=s.totp_title>{body}</AddFrame> }
}

/// The second half of adding a phone or an email: enter the code, or ask for a new one.
#[component]
fn CodeStep(id: String, page: &'static str) -> impl IntoView {
    let s = text::en().sec;
    let confirm = ServerAction::<CodeConfirm>::new();
    let resend = ServerAction::<CodeResend>::new();
    let inner = Suspend::new(async move {
        let c = match get_pending_code(id).await {
            Ok(c) => c,
            Err(e) => return view! { <ErrorNotice code=e.code()/> }.into_any(),
        };
        let sent = if c.channel == "voice" {
            s.code_by_call
        } else {
            s.code_sent_to
        };
        let phone = page == "phone";
        let id2 = c.id.clone();
        view! {
            <p role="status">{sent} " " <strong>{c.destination}</strong> ". " {s.code_expires}</p>
            <ActionForm action=confirm>
                {flow_input()}
                <input type="hidden" name="id" value=c.id.clone()/>
                <input type="hidden" name="page" value=page/>
                {code_input(s.code_label)}
                <button type="submit" class="button primary">{s.verify}</button>
            </ActionForm>
            <ActionForm action=resend>
                {flow_input()}
                <input type="hidden" name="id" value=id2/>
                <input type="hidden" name="page" value=page/>
                {phone.then(|| view! {
                    <fieldset class="choices">
                        <legend>{s.phone_how_label}</legend>
                        <label><input type="radio" name="how" value="sms" checked=true/> " " {s.phone_by_text}</label>
                        <label><input type="radio" name="how" value="voice"/> " " {s.phone_by_call}</label>
                    </fieldset>
                })}
                <button type="submit" class="button secondary">{s.code_resend}</button>
            </ActionForm>
        }
        .into_any()
    });
    view! { <Suspense fallback=|| ()>{inner}</Suspense> }
}

#[component]
pub fn AddPhonePage() -> impl IntoView {
    let s = text::en().sec;
    let body = match param("code") {
        Some(id) => view! { <CodeStep id page="phone"/> }.into_any(),
        None => {
            let start = ServerAction::<PhoneStart>::new();
            let slot = param("slot").unwrap_or_else(|| "mobile".into());
            let number = param("number").unwrap_or_default();
            let extension = param("extension").unwrap_or_default();
            let option = move |value: &'static str| {
                let selected = slot == value;
                view! { <option value=value selected=selected>{s.slot_label(value)}</option> }
            };
            view! {
                <p>{s.kind_phone_about}</p>
                <p class="notice warn small">{s.restricted_note}</p>
                <ActionForm action=start>
                    {flow_input()}
                    <div class="field">
                        <label for="slot">{s.phone_type_label}</label>
                        <select id="slot" name="slot">
                            {option("mobile")}
                            {option("alternate")}
                            {option("office")}
                        </select>
                    </div>
                    <div class="field">
                        <label for="number">{s.phone_number_label}</label>
                        <input id="number" name="number" type="tel" autocomplete="tel" maxlength="40" required=true value=number aria-describedby="number-hint"/>
                        <p id="number-hint" class="hint">{s.phone_number_hint}</p>
                    </div>
                    <div class="field">
                        <label for="extension">{s.phone_ext_label}</label>
                        <input id="extension" name="extension" type="text" inputmode="numeric" maxlength="10" value=extension/>
                    </div>
                    <fieldset class="choices">
                        <legend>{s.phone_how_label}</legend>
                        <label><input type="radio" name="how" value="sms" checked=true/> " " {s.phone_by_text}</label>
                        <label><input type="radio" name="how" value="voice"/> " " {s.phone_by_call}</label>
                    </fieldset>
                    <button type="submit" class="button primary">{s.send_code}</button>
                </ActionForm>
            }
            .into_any()
        }
    };
    view! { <AddFrame title=s.phone_title>{body}</AddFrame> }
}

#[component]
pub fn AddEmailPage() -> impl IntoView {
    let s = text::en().sec;
    let body = match param("code") {
        Some(id) => view! { <CodeStep id page="email"/> }.into_any(),
        None => {
            let start = ServerAction::<EmailStart>::new();
            let address = param("address").unwrap_or_default();
            view! {
                <p>{s.kind_email_about}</p>
                <ActionForm action=start>
                    {flow_input()}
                    <div class="field">
                        <label for="address">{s.email_address_label}</label>
                        <input id="address" name="address" type="email" autocomplete="email" maxlength="254" required=true value=address/>
                    </div>
                    <button type="submit" class="button primary">{s.send_code}</button>
                </ActionForm>
            }
            .into_any()
        }
    };
    view! { <AddFrame title=s.email_title>{body}</AddFrame> }
}

#[component]
pub fn AddQuestionsPage() -> impl IntoView {
    let s = text::en().sec;
    let action = ServerAction::<SetQuestions>::new();
    let inner = Suspend::new(async move {
        let o = match get_overview().await {
            Ok(o) => o,
            Err(e) => return view! { <ErrorNotice code=e.code()/> }.into_any(),
        };
        let rows = (1..=o.questions_required.min(6))
            .map(|i| {
                let pool = o.questions.clone();
                let qid = format!("q{i}");
                let aid = format!("a{i}");
                let cid = format!("c{i}");
                let custom = o.allow_custom_questions.then(|| view! {
                    <div class="field">
                        <label for=cid.clone()>{s.custom_question_label}</label>
                        <input id=cid.clone() name=cid type="text" maxlength="200"/>
                    </div>
                });
                let options = pool
                    .into_iter()
                    .enumerate()
                    .map(|(j, q)| {
                        // a different default question in each row
                        let selected = j + 1 == i as usize;
                        view! { <option value=q.clone() selected=selected>{q.clone()}</option> }
                    })
                    .collect_view();
                view! {
                    <fieldset class="question">
                        <legend>{s.question_label} " " {i}</legend>
                        <div class="field">
                            <label for=qid.clone()>{s.question_label}</label>
                            <select id=qid.clone() name=qid.clone() required=true>{options}</select>
                        </div>
                        {custom}
                        <div class="field">
                            <label for=aid.clone()>{s.answer_label}</label>
                            <input id=aid.clone() name=aid.clone() type="text" autocomplete="off" maxlength="200" minlength="3" required=true/>
                        </div>
                    </fieldset>
                }
            })
            .collect_view();
        view! {
            <p>{s.questions_intro}</p>
            <ActionForm action>
                {flow_input()}
                {rows}
                <button type="submit" class="button primary">{s.save}</button>
            </ActionForm>
        }
        .into_any()
    });
    view! {
        <AddFrame title=s.questions_title>
            <Suspense fallback=|| ()>{inner}</Suspense>
        </AddFrame>
    }
}

#[component]
pub fn AddPinPage() -> impl IntoView {
    let s = text::en().sec;
    let action = ServerAction::<SetPin>::new();
    view! {
        <AddFrame title=s.pin_title>
            <p>{s.pin_intro}</p>
            <ActionForm action>
                {flow_input()}
                <div class="field">
                    <label for="pin">{s.pin_label}</label>
                    <input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" pattern="[0-9]*" maxlength="16" required=true/>
                </div>
                <div class="field">
                    <label for="confirm">{s.pin_confirm_label}</label>
                    <input id="confirm" name="confirm" type="password" inputmode="numeric" autocomplete="off" pattern="[0-9]*" maxlength="16" required=true/>
                </div>
                <button type="submit" class="button primary">{s.save}</button>
            </ActionForm>
        </AddFrame>
    }
}

/// Passkeys: the ceremony runs in `public/passkey.js`; the page says clearly when it can't.
#[component]
pub fn AddPasskeyPage() -> impl IntoView {
    let s = text::en().sec;
    view! {
        <AddFrame title=s.passkey_title>
            <p>{s.kind_passkey_about}</p>
            <form
                id="passkey-register"
                class="passkey-form"
                data-mode="register"
                data-flow=page_flow()
                data-msg-unsupported=s.passkey_unsupported
                data-msg-cancelled=s.passkey_cancelled
                data-msg-working=s.passkey_working
            >
                <div class="field">
                    <label for="passkey-name">{s.passkey_name_label}</label>
                    <input id="passkey-name" name="name" type="text" maxlength="40" required=true value=s.passkey_name_default/>
                </div>
                <p class="passkey-status" role="status" aria-live="polite"></p>
                <p class="passkey-nojs notice warn">{s.passkey_needs_js}</p>
                <button type="submit" class="button primary" data-testid=routes::testid::PASSKEY_BUTTON hidden=true>{s.passkey_create}</button>
            </form>
            <script src="/passkey.js" defer=true></script>
        </AddFrame>
    }
}

/// A hardware token from the organisation's inventory: serial number and the code it shows.
#[component]
pub fn AddTokenPage() -> impl IntoView {
    let s = text::en().sec;
    let action = ServerAction::<TokenActivate>::new();
    let serial = param("serial").unwrap_or_default();
    view! {
        <AddFrame title=s.token_title>
            <p>{s.token_intro}</p>
            <ActionForm action>
                {flow_input()}
                <div class="field">
                    <label for="serial">{s.token_serial_label}</label>
                    <input id="serial" name="serial" type="text" autocomplete="off" maxlength="64" required=true autofocus=true value=serial aria-describedby="serial-hint"/>
                    <p id="serial-hint" class="hint">{s.token_serial_hint}</p>
                </div>
                {code_input_named("code", s.token_code_label, false)}
                <div class="field">
                    <label for="name">{s.token_name_label}</label>
                    <input id="name" name="name" type="text" maxlength="40"/>
                </div>
                <button type="submit" class="button primary">{s.token_activate}</button>
            </ActionForm>
        </AddFrame>
    }
}

/// Recovery codes: create a set (after a fresh second factor), then see it once with a text
/// file to download and a print button.
#[component]
pub fn AddRecoveryPage() -> impl IntoView {
    let s = text::en().sec;
    let body = if param("show").is_some() {
        let inner = Suspend::new(async move {
            let codes = match get_recovery_codes().await {
                Ok(c) => c,
                Err(e) => return view! { <ErrorNotice code=e.code()/> }.into_any(),
            };
            if codes.is_empty() {
                return view! { <p class="notice warn" role="status">{s.recovery_gone}</p> }
                    .into_any();
            }
            let file = format!(
                "{}\n{}\n\n{}\n",
                s.recovery_file_heading,
                s.recovery_file_note,
                codes.join("\n")
            );
            let href = format!(
                "data:text/plain;charset=utf-8,{}",
                routes::percent_encode(&file)
            );
            let items = codes
                .into_iter()
                .map(|c| view! { <li><code>{c}</code></li> })
                .collect_view();
            view! {
                <p class="notice warn" role="status">{s.recovery_shown_once}</p>
                <ol class="recovery-codes" data-testid=routes::testid::RECOVERY_CODES>{items}</ol>
                <p class="actions">
                    <a class="button" href=href download="recovery-codes.txt">{s.recovery_download}</a>
                    " "
                    <button type="button" class="button" data-print=true hidden=true>{s.recovery_print}</button>
                </p>
                <p><a class="button primary" href=routes::after_add(&page_flow())>{s.recovery_done}</a></p>
                <script src="/print.js" defer=true></script>
            }
            .into_any()
        });
        view! { <Suspense fallback=|| ()>{inner}</Suspense> }.into_any()
    } else {
        let action = ServerAction::<RecoveryGenerate>::new();
        view! {
            <p>{s.recovery_intro}</p>
            <p class="hint">{s.recovery_replace_warning}</p>
            <ActionForm action>
                {flow_input()}
                <button type="submit" class="button primary">{s.recovery_create}</button>
            </ActionForm>
        }
        .into_any()
    };
    view! { <AddFrame title=s.recovery_title>{body}</AddFrame> }
}
