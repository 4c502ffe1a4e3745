//! Converge UI. Pages render on the server (islands mode); only the few interactive widgets
//! (`#[island]` components) are shipped to the browser as wasm. Nothing here touches a database:
//! server functions reach the backend through the port in `ssr.rs`.
#![deny(clippy::unwrap_used)]
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod pages;
pub mod routes;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod text;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The HTML document around every page (server side only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::provide_request_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="stylesheet" href="/pkg/converge.css"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let t = text::en();
    view! {
        <Title text=t.product/>
        <a class="skip-link" href="#main">{t.skip_to_content}</a>
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/") view=pages::home::Home ssr=SsrMode::Async/>
                <Route path=path!("/signin") view=pages::signin::SigninPage ssr=SsrMode::Async/>
                <Route
                    path=path!("/security-info")
                    view=pages::security_info::SecurityInfoPage
                    ssr=SsrMode::Async
                />
                <Route path=path!("/activity") view=pages::activity::ActivityPage ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=pages::setup::SetupPage ssr=SsrMode::Async/>
                <Route path=path!("/signin/verify") view=pages::verify::VerifyPage ssr=SsrMode::Async/>
                <Route
                    path=path!("/security-info/add/app")
                    view=pages::add::AddAppPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/security-info/add/passkey")
                    view=pages::add::AddPasskeyPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/security-info/add/phone")
                    view=pages::add::AddPhonePage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/security-info/add/email")
                    view=pages::add::AddEmailPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/security-info/add/questions")
                    view=pages::add::AddQuestionsPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/security-info/add/pin")
                    view=pages::add::AddPinPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/security-info/add/token")
                    view=pages::add::AddTokenPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/security-info/add/recovery")
                    view=pages::add::AddRecoveryPage
                    ssr=SsrMode::Async
                />
                <Route path=path!("/reset") view=pages::reset::ResetPage ssr=SsrMode::Async/>
                <Route path=path!("/reset/verify") view=pages::reset::ResetVerifyPage ssr=SsrMode::Async/>
                <Route path=path!("/reset/finish") view=pages::reset::ResetFinishPage ssr=SsrMode::Async/>
                <Route path=path!("/reset/done") view=pages::reset::ResetDonePage ssr=SsrMode::Async/>
                <Route path=path!("/helpdesk") view=pages::helpdesk::HelpdeskPage ssr=SsrMode::Async/>
                <Route
                    path=path!("/helpdesk/user")
                    view=pages::helpdesk::HelpdeskUserPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/helpdesk/audit")
                    view=pages::helpdesk::HelpdeskAuditPage
                    ssr=SsrMode::Async
                />
                <Route path=path!("/report/:token") view=pages::report::ReportPage ssr=SsrMode::Async/>
                <Route
                    path=path!("/report-recorded")
                    view=pages::report::ReportRecordedPage
                    ssr=SsrMode::Async
                />
            </Routes>
        </Router>
    }
}

/// Browser entry point: hydrates the islands only.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
