//! `/report/<token>` and `/report-recorded`: the "This wasn't me" link from security emails.
//! Opening the link changes nothing (mail scanners open links); the button records the report.

use crate::api::{check_report, ConfirmReport, ReportCheck};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn ReportPage() -> impl IntoView {
    let t = text::en();
    let token = use_params_map().with_untracked(|p| p.get("token").unwrap_or_default());
    let confirm = ServerAction::<ConfirmReport>::new();
    let body = Suspend::new(async move {
        match check_report(token.clone()).await {
            Ok(ReportCheck::Valid { message }) => view! {
                <p>{t.report_intro}</p>
                <p>{t.report_about} " " <strong>{t.for_message(&message)}</strong></p>
                <div data-testid=routes::testid::REPORT_CONFIRM>
                    <ActionForm action=confirm>
                        <input type="hidden" name="token" value=token/>
                        <button type="submit" class="button primary wide">{t.report_button}</button>
                    </ActionForm>
                </div>
            }
            .into_any(),
            Ok(ReportCheck::Invalid) => view! {
                <div class="notice error" role="alert" data-testid=routes::testid::REPORT_INVALID>
                    <p>{t.report_invalid}</p>
                </div>
            }
            .into_any(),
            Err(e) => view! { <crate::components::ErrorNotice code=e.code()/> }.into_any(),
        }
    });
    view! {
        <Title text=format!("{} · {}", t.report_title, t.product)/>
        <main id="main" class="auth-page">
            <section class="card">
                <p class="brand"><span class="brand-mark" aria-hidden="true"></span>{t.product}</p>
                <h1>{t.report_title}</h1>
                <Suspense fallback=|| ()>{body}</Suspense>
            </section>
        </main>
    }
}

#[component]
pub fn ReportRecordedPage() -> impl IntoView {
    let t = text::en();
    view! {
        <Title text=format!("{} · {}", t.report_done_title, t.product)/>
        <main id="main" class="auth-page">
            <section class="card">
                <p class="brand"><span class="brand-mark" aria-hidden="true"></span>{t.product}</p>
                <h1>{t.report_done_title}</h1>
                <div class="notice info" role="status" data-testid=routes::testid::NOTICE>
                    <p>{t.report_done_body}</p>
                </div>
                <p><a href=routes::SIGNIN>{t.signin_title}</a></p>
            </section>
        </main>
    }
}
