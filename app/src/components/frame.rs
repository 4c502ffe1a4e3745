//! The frame around every signed-in page: header with the product, navigation, the user's name
//! and sign-out; then the page's `<main>`.

use crate::api::{whoami, SignOut};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn AppFrame(children: Children) -> impl IntoView {
    let t = text::en();
    let sign_out = ServerAction::<SignOut>::new();
    let me = Suspend::new(async move {
        whoami().await.ok().map(|me| {
            view! {
                <span class="whoami">
                    <span class="visually-hidden">{t.signed_in_as} " "</span>
                    <span data-testid=routes::testid::USER_NAME>{me.display_name}</span>
                </span>
            }
        })
    });
    view! {
        <header class="site-header">
            <div class="site-header-inner">
                <a class="brand" href=routes::HOME>
                    <span class="brand-mark" aria-hidden="true"></span>
                    {t.product}
                </a>
                <nav aria-label=t.nav_label class="site-nav">
                    <A href=routes::SECURITY_INFO>{t.nav_security_info}</A>
                    <A href=routes::ACTIVITY>{t.nav_activity}</A>
                </nav>
                <div class="account">
                    <Suspense fallback=|| ()>{me}</Suspense>
                    <ActionForm action=sign_out>
                        <button type="submit" class="button secondary" data-testid=routes::testid::SIGNOUT>
                            {t.sign_out}
                        </button>
                    </ActionForm>
                </div>
            </div>
        </header>
        <main id="main" class="page" tabindex="-1">
            {children()}
        </main>
    }
}
