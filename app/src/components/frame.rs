//! The frame around every signed-in page: header with the product, navigation, the user's name
//! and sign-out; then the page's `<main>`.

use crate::api::{helpdesk_prompt, whoami, HelpdeskPromptAnswer, SignOut};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn AppFrame(children: Children) -> impl IntoView {
    let t = text::en();
    let sign_out = ServerAction::<SignOut>::new();
    let answer = ServerAction::<HelpdeskPromptAnswer>::new();
    // whoami reads the request's context only (no database): each part asks for itself
    let who = Suspend::new(async move {
        whoami().await.ok().map(|me| {
            view! {
                <span class="whoami">
                    <span class="visually-hidden">{t.signed_in_as} " "</span>
                    <span data-testid=routes::testid::USER_NAME>{me.display_name}</span>
                </span>
            }
        })
    });
    let helpdesk_link = Suspend::new(async move {
        whoami()
            .await
            .ok()
            .filter(|me| me.role == "helpdesk" || me.role == "admin")
            .map(|_| view! { <A href=routes::HELPDESK>{t.helpdesk.nav}</A> })
    });
    // the helpdesk is verifying this user: "Is that you?"
    let prompt = Suspend::new(async move {
        helpdesk_prompt().await.ok().flatten().map(|p| {
            let h = t.helpdesk;
            let text = h.prompt_text.replace("{agent}", &p.agent);
            let id = p.id.clone();
            let picks = p
                .choices
                .into_iter()
                .map(|n| {
                    let id = id.clone();
                    view! {
                        <ActionForm action=answer>
                            <input type="hidden" name="id" value=id/>
                            <input type="hidden" name="answer" value=n.clone()/>
                            <button type="submit" class="button secondary number-pick">{n}</button>
                        </ActionForm>
                    }
                })
                .collect_view();
            view! {
                <section class="notice warn prompt" role="alert" aria-labelledby="prompt-title"
                    data-testid=routes::testid::APPROVAL_PROMPT>
                    <h2 id="prompt-title">{h.prompt_title}</h2>
                    <p>{text}</p>
                    <div class="row-actions" role="group" aria-label=h.prompt_pick>{picks}</div>
                    <div class="row-actions">
                        <ActionForm action=answer>
                            <input type="hidden" name="id" value=p.id/>
                            <input type="hidden" name="answer" value="no"/>
                            <button type="submit" class="button danger">{h.prompt_no}</button>
                        </ActionForm>
                    </div>
                </section>
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
                    <Suspense fallback=|| ()>{helpdesk_link}</Suspense>
                </nav>
                <div class="account">
                    <Suspense fallback=|| ()>{who}</Suspense>
                    <ActionForm action=sign_out>
                        <button type="submit" class="button secondary" data-testid=routes::testid::SIGNOUT>
                            {t.sign_out}
                        </button>
                    </ActionForm>
                </div>
            </div>
        </header>
        <main id="main" class="page" tabindex="-1">
            <Suspense fallback=|| ()>{prompt}</Suspense>
            {children()}
        </main>
    }
}
