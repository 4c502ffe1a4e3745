//! Password input with a show/hide toggle. An island: the input works as plain HTML before the
//! wasm arrives; the toggle appears once the island has hydrated.

use crate::routes;
use leptos::prelude::*;

#[island]
pub fn PasswordField(
    id: String,
    name: String,
    label: String,
    autocomplete: String,
    show_label: String,
    hide_label: String,
) -> impl IntoView {
    let (visible, set_visible) = signal(false);
    // Effects run only in the browser: the toggle stays hidden until it can work.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let input_type = move || if visible.get() { "text" } else { "password" };
    let toggle_text = {
        let (show, hide) = (show_label.clone(), hide_label.clone());
        move || {
            if visible.get() {
                hide.clone()
            } else {
                show.clone()
            }
        }
    };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <div class="password-row">
                <input
                    id=id.clone()
                    name=name
                    type=input_type
                    autocomplete=autocomplete
                    required=true
                    maxlength="1024"
                    spellcheck="false"
                    autocapitalize="off"
                />
                <button
                    type="button"
                    class="button secondary toggle"
                    aria-controls=id
                    aria-pressed=move || if visible.get() { "true" } else { "false" }
                    hidden=move || !hydrated.get()
                    data-testid=routes::testid::PASSWORD_TOGGLE
                    on:click=move |_| set_visible.update(|v| *v = !*v)
                >
                    {toggle_text}
                </button>
            </div>
        </div>
    }
}
