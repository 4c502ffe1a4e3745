//! `/setup`: the registration wizard users are taken into at sign-in when they don't meet the
//! registration policy (or their review is due). Step k of n, a choice among allowed methods,
//! "Not now" while the policy allows, and a summary to confirm at the end.

use crate::api::{get_overview, Manage, Overview};
use crate::components::{AppFrame, ErrorNotice, InfoNotice};
use crate::pages::common::{page_error, page_notice};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SetupPage() -> impl IntoView {
    let t = text::en();
    let s = t.sec;
    let error = page_error();
    let notice = page_notice();
    let body = Suspend::new(async move {
        match get_overview().await {
            Ok(o) if o.complete => view! { <Summary overview=o/> }.into_any(),
            Ok(o) => view! { <Choose overview=o/> }.into_any(),
            Err(e) => view! { <ErrorNotice code=e.code()/> }.into_any(),
        }
    });
    view! {
        <Title text=format!("{} · {}", s.wizard_title, t.product)/>
        <AppFrame>
            <div class="narrow" data-testid=routes::testid::WIZARD>
                {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
                {notice.map(|message| view! { <InfoNotice message/> })}
                <Suspense fallback=|| ()>{body}</Suspense>
            </div>
        </AppFrame>
    }
}

fn registered_list(o: &Overview) -> impl IntoView {
    let s = text::en().sec;
    let items = o
        .methods
        .iter()
        .map(|m| {
            let detail = if m.detail.is_empty() {
                m.name.clone()
            } else {
                format!("{} · {}", m.name, m.detail)
            };
            view! { <li><strong>{s.kind_label(&m.kind)}</strong> " · " {detail}</li> }
        })
        .collect_view();
    view! { <ul class="plain-list done-list" data-testid=routes::testid::METHOD_LIST>{items}</ul> }
}

#[component]
fn Choose(overview: Overview) -> impl IntoView {
    let s = text::en().sec;
    let manage = ServerAction::<Manage>::new();
    let n = overview.required.max(overview.registered + 1);
    let k = (overview.registered + 1).min(n);
    let options = overview
        .options
        .iter()
        .filter(|o| !o.full && !o.registered)
        .map(|o| {
            let href = format!("{}?flow=setup", routes::add_page(&o.kind));
            let required = o
                .mandatory
                .then(|| view! { <span class="badge">{s.wizard_required_label}</span> });
            view! {
                <li>
                    <a class="add-link" href=href>
                        <span class="add-kind">{s.kind_label(&o.kind)} " " {required}</span>
                        <span class="muted small">{s.kind_about(&o.kind)}</span>
                    </a>
                </li>
            }
        })
        .collect_view();
    let already = (!overview.methods.is_empty()).then(|| registered_list(&overview));
    let snooze = overview.can_snooze.then(|| {
        view! {
            <ActionForm action=manage>
                <input type="hidden" name="action" value="snooze"/>
                <button type="submit" class="button link">
                    {s.wizard_snooze} " (" {overview.snoozes_left} " " {s.wizard_snoozes_left} ")"
                </button>
            </ActionForm>
        }
    });
    view! {
        <p class="progress">{s.step_of(k, n)}</p>
        <h1>{s.wizard_title}</h1>
        <p class="lead">{s.wizard_intro}</p>
        {already}
        <h2>{s.wizard_choose}</h2>
        <ul class="add-list">{options}</ul>
        <p class="muted small">{s.restricted_note}</p>
        {snooze}
    }
}

#[component]
fn Summary(overview: Overview) -> impl IntoView {
    let s = text::en().sec;
    let manage = ServerAction::<Manage>::new();
    let more = overview
        .options
        .iter()
        .any(|o| !o.full && !o.registered)
        .then(|| view! { <p><a href=format!("{}", routes::SECURITY_INFO)>{s.add_method_heading}</a></p> });
    view! {
        <div data-testid=routes::testid::WIZARD_DONE>
            <h1>{s.wizard_done_title}</h1>
            <p class="lead">{s.wizard_done_body}</p>
            {registered_list(&overview)}
            <ActionForm action=manage>
                <input type="hidden" name="action" value="confirm"/>
                <button type="submit" class="button primary">{s.wizard_finish}</button>
            </ActionForm>
            {more}
        </div>
    }
}
