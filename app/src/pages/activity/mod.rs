//! `/activity`: the signed-in user's own audit trail.

use crate::api::my_activity;
use crate::components::{AppFrame, ErrorNotice};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ActivityPage() -> impl IntoView {
    let t = text::en();
    let table = Suspend::new(async move {
        let items = match my_activity().await {
            Ok(items) => items,
            Err(e) => return view! { <ErrorNotice code=e.code()/> }.into_any(),
        };
        if items.is_empty() {
            return view! { <p class="muted">{t.activity_empty}</p> }.into_any();
        }
        let rows = items
            .into_iter()
            .map(|item| {
                let result = if item.success {
                    t.result_success
                } else {
                    t.result_failure
                };
                view! {
                    <tr class=if item.success { "ok" } else { "failed" }>
                        <td><time>{item.at}</time></td>
                        <td>{t.for_event(&item.event)}</td>
                        <td>{result}</td>
                        <td>{item.client_ip}</td>
                        <td class="ua">{item.user_agent}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table data-testid=routes::testid::ACTIVITY_TABLE>
                    <caption class="visually-hidden">{t.activity_title}</caption>
                    <thead>
                        <tr>
                            <th scope="col">{t.col_time}</th>
                            <th scope="col">{t.col_event}</th>
                            <th scope="col">{t.col_result}</th>
                            <th scope="col">{t.col_address}</th>
                            <th scope="col">{t.col_device}</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    });
    view! {
        <Title text=format!("{} · {}", t.activity_title, t.product)/>
        <AppFrame>
            <h1>{t.activity_title}</h1>
            <p class="lead">{t.activity_intro}</p>
            <Suspense fallback=|| ()>{table}</Suspense>
        </AppFrame>
    }
}
