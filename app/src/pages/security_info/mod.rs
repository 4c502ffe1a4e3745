//! `/security-info`: the one page where users see and manage every method: default, rename,
//! remove, add (same steps as the wizard), review, sign out everywhere else.

use crate::api::{get_overview, get_security_info, Manage, MethodView, Overview, TokenResync};
use crate::components::{AppFrame, ErrorNotice, InfoNotice};
use crate::pages::common::{page_error, page_notice, resync_code_fields};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SecurityInfoPage() -> impl IntoView {
    let t = text::en();
    let error = page_error();
    let notice = page_notice();
    let body = Suspend::new(async move {
        match get_overview().await {
            Ok(o) => view! { <Methods overview=o/> }.into_any(),
            Err(e) => view! { <ErrorNotice code=e.code()/> }.into_any(),
        }
    });
    let contact = Suspend::new(async move {
        let Ok(info) = get_security_info().await else {
            return ().into_any();
        };
        let row = move |label: &'static str, value: Option<String>| {
            view! {
                <div class="kv">
                    <dt>{label}</dt>
                    <dd>{value.unwrap_or_else(|| t.not_set.to_string())}</dd>
                </div>
            }
        };
        view! {
            <section class="panel" aria-labelledby="contact-heading">
                <h2 id="contact-heading">{t.contact_heading}</h2>
                <p class="muted">{t.contact_intro}</p>
                <dl class="kv-list">
                    {row(t.email_label, info.email)}
                    {row(t.mobile_label, info.mobile_phone)}
                    {row(t.alternate_label, info.alternate_phone)}
                    {row(t.office_label, info.office_phone)}
                </dl>
            </section>
        }
        .into_any()
    });
    view! {
        <Title text=format!("{} · {}", t.security_info_title, t.product)/>
        <AppFrame>
            <h1>{t.security_info_title}</h1>
            <p class="lead">{t.security_info_intro}</p>
            {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
            {notice.map(|message| view! { <InfoNotice message/> })}
            <Suspense fallback=|| ()>{body}</Suspense>
            <Suspense fallback=|| ()>{contact}</Suspense>
        </AppFrame>
    }
}

/// A small form posting one management action.
fn action_form(
    action: ServerAction<Manage>,
    what: &'static str,
    id: String,
    label: &'static str,
    class: &'static str,
) -> impl IntoView {
    view! {
        <ActionForm action>
            <input type="hidden" name="action" value=what/>
            <input type="hidden" name="id" value=id/>
            <button type="submit" class=class>{label}</button>
        </ActionForm>
    }
}

#[component]
fn Methods(overview: Overview) -> impl IntoView {
    let t = text::en();
    let s = t.sec;
    let manage = ServerAction::<Manage>::new();
    let review = overview.review_due.then(|| {
        view! {
            <section class="panel review" aria-labelledby="review-heading">
                <h2 id="review-heading">{s.review_heading}</h2>
                <p>{s.review_body}</p>
                <ActionForm action=manage>
                    <input type="hidden" name="action" value="confirm"/>
                    <button type="submit" class="button primary">{s.review_confirm}</button>
                </ActionForm>
            </section>
        }
    });
    let resync = ServerAction::<TokenResync>::new();
    let rows = overview
        .methods
        .iter()
        .map(|m| method_row(m.clone(), manage, resync))
        .collect_view();
    let empty = overview
        .methods
        .is_empty()
        .then(|| view! { <p class="muted">{t.no_methods}</p> });
    let status = if overview.complete {
        s.status_complete
    } else {
        s.status_incomplete
    };
    let options = overview
        .options
        .iter()
        .filter(|o| !(o.full && o.kind != "questions" && o.kind != "pin"))
        .map(|o| {
            let href = format!("{}?flow=info", routes::add_page(&o.kind));
            view! {
                <li>
                    <a class="add-link" href=href>
                        <span class="add-kind">{s.add_label(&o.kind, o.registered)}</span>
                        <span class="muted small">{s.kind_about(&o.kind)}</span>
                    </a>
                </li>
            }
        })
        .collect_view();
    let directory = (!overview.directory_phones.is_empty()).then(|| {
        let items = overview
            .directory_phones
            .iter()
            .map(|(slot, masked)| {
                let href = format!("{}?flow=info&slot={slot}", routes::ADD_PHONE);
                view! {
                    <li>
                        <span>{s.slot_label(slot)} " · " {masked.clone()}</span>
                        " "
                        <a href=href>{s.use_number}</a>
                    </li>
                }
            })
            .collect_view();
        view! {
            <section class="panel" aria-labelledby="dir-phones">
                <h2 id="dir-phones">{s.directory_phones_heading}</h2>
                <ul class="plain-list">{items}</ul>
            </section>
        }
    });
    view! {
        {review}
        <section class="panel" aria-labelledby="methods-heading">
            <h2 id="methods-heading">{t.methods_heading}</h2>
            <p class=if overview.complete { "status ok" } else { "status warn" }>
                {status} " (" {overview.registered} "/" {overview.required} ")"
            </p>
            {empty}
            <ul class="method-list" data-testid=routes::testid::METHOD_LIST>{rows}</ul>
        </section>
        <section class="panel" aria-labelledby="add-heading">
            <h2 id="add-heading">{s.add_method_heading}</h2>
            <ul class="add-list">{options}</ul>
            <p class="muted small">{s.restricted_note}</p>
        </section>
        {directory}
        <section class="panel" aria-labelledby="sessions-heading">
            <h2 id="sessions-heading">{s.sign_out_others}</h2>
            <p class="muted">{s.sign_out_others_about}</p>
            <ActionForm action=manage>
                <input type="hidden" name="action" value="sign_out_others"/>
                <button type="submit" class="button secondary">{s.sign_out_others}</button>
            </ActionForm>
            <p><a href=routes::ACTIVITY>{t.nav_activity}</a></p>
        </section>
    }
}

fn method_row(
    m: MethodView,
    manage: ServerAction<Manage>,
    resync: ServerAction<TokenResync>,
) -> impl IntoView {
    let t = text::en();
    let s = t.sec;
    let default = m
        .is_default
        .then(|| view! { <span class="badge">{s.default_badge}</span> });
    let directory = m
        .from_directory
        .then(|| view! { <span class="badge muted-badge">{s.from_directory}</span> });
    let make_default = (m.signs_in && !m.is_default).then(|| {
        action_form(
            manage,
            "default",
            m.id.clone(),
            s.set_default,
            "button secondary small",
        )
    });
    let rename_id = format!("rename-{}", m.id);
    let (id_for_rename, name_for_rename) = (m.id.clone(), m.name.clone());
    // an event-based (HOTP) hardware token can fall behind: two consecutive codes set it right
    let resync_id = m.id.clone();
    let resync = m.resync_serial.is_some().then(move || {
        view! {
            <details class="inline-details">
                <summary class="button secondary small">{s.resync_summary}</summary>
                <p class="small">{s.resync_intro}</p>
                <ActionForm action=resync>
                    <input type="hidden" name="id" value=resync_id.clone()/>
                    {resync_code_fields(&resync_id, "one-time-code")}
                    <button type="submit" class="button primary small">{s.save}</button>
                </ActionForm>
            </details>
        }
    });
    let rename = (m.kind != "questions" && m.kind != "pin" && m.kind != "recovery").then(move || {
        view! {
            <details class="inline-details">
                <summary class="button secondary small">{s.rename}</summary>
                <ActionForm action=manage>
                    <input type="hidden" name="action" value="rename"/>
                    <input type="hidden" name="id" value=id_for_rename/>
                    <label for=rename_id.clone()>{s.rename_label}</label>
                    <input id=rename_id name="name" type="text" maxlength="40" required=true value=name_for_rename/>
                    <button type="submit" class="button primary small">{s.save}</button>
                </ActionForm>
            </details>
        }
    });
    let remove = view! {
        <details class="inline-details">
            <summary class="button danger small">{s.remove}</summary>
            <p>{s.remove_confirm}</p>
            {action_form(manage, "remove", m.id.clone(), s.remove, "button danger small")}
        </details>
    };
    let last_used = m
        .last_used
        .clone()
        .unwrap_or_else(|| s.never_used.to_string());
    let detail =
        (!m.detail.is_empty()).then(|| view! { <span class="muted">{m.detail.clone()}</span> });
    view! {
        <li class="method" data-testid=routes::testid::METHOD_ROW data-kind=m.kind.clone()>
            <div class="method-main">
                <strong>{s.kind_label(&m.kind)}</strong>
                " · "
                <span class="method-name">{m.name.clone()}</span>
                " "
                {default}
                {directory}
                <div class="small">{detail}</div>
                <div class="small muted">
                    {s.col_added} ": " {m.added_on.clone()} " · " {s.col_last_used} ": " {last_used}
                </div>
            </div>
            <div class="method-actions">{make_default} {resync} {rename} {remove}</div>
        </li>
    }
}
