//! The 404 page.

use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    super::set_status(404);
    let t = text::en();
    view! {
        <Title text=format!("{} · {}", t.not_found_title, t.product)/>
        <main id="main" class="auth-page">
            <section class="card">
                <h1>{t.not_found_title}</h1>
                <p>{t.not_found_body}</p>
                <p><a href=routes::HOME>{t.back_home}</a></p>
            </section>
        </main>
    }
}
