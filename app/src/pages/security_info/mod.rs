//! `/security-info`: the one page where users see and (with the registration capability) manage
//! their methods. Today it lists the contact details on file.

use crate::api::get_security_info;
use crate::components::{AppFrame, ErrorNotice};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SecurityInfoPage() -> impl IntoView {
    let t = text::en();
    let info = Suspend::new(async move {
        let info = match get_security_info().await {
            Ok(info) => info,
            Err(e) => return view! { <ErrorNotice code=e.code()/> }.into_any(),
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
            <section class="panel" aria-labelledby="methods-heading">
                <h2 id="methods-heading">{t.methods_heading}</h2>
                <ul class="method-list" data-testid=routes::testid::METHOD_LIST></ul>
                <p class="muted">{t.no_methods}</p>
            </section>
            <Suspense fallback=|| ()>{info}</Suspense>
        </AppFrame>
    }
}
