//! New password and confirmation with live feedback (length, match, username) and a show/hide
//! toggle. An island: before the wasm arrives the two inputs work as plain HTML and the rules are
//! listed as text; the server checks everything again (and the blocklist) on submit.

use crate::{routes, text};
use leptos::prelude::*;

#[island]
pub fn NewPasswordFields(min_length: u32, complexity: bool, username: String) -> impl IntoView {
    let t = text::en();
    let r = t.reset;
    let (password, set_password) = signal(String::new());
    let (confirm, set_confirm) = signal(String::new());
    let (visible, set_visible) = signal(false);
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let min = min_length as usize;
    let count = move || password.with(|p| p.chars().count());
    let long_enough = move || count() >= min;
    let matches = move || !confirm.with(String::is_empty) && password.get() == confirm.get();
    let user = username.to_lowercase();
    let no_name =
        move || user.chars().count() < 3 || !password.with(|p| p.to_lowercase().contains(&user));
    let complex = move || password.with(|p| crate::api::meets_complexity(p));
    let input_type = move || if visible.get() { "text" } else { "password" };
    let mark = move |ok: bool| if ok { "rule ok" } else { "rule" };
    let min_text = r.rule_length.replace("{min}", &min.to_string());
    view! {
        <div class="field">
            <label for="new-password">{r.new_password_label}</label>
            <div class="password-row">
                <input
                    id="new-password"
                    name="password"
                    type=input_type
                    autocomplete="new-password"
                    required=true
                    minlength=min.to_string()
                    maxlength="256"
                    spellcheck="false"
                    autocapitalize="off"
                    aria-describedby="password-rules"
                    on:input=move |ev| set_password.set(event_target_value(&ev))
                />
                <button
                    type="button"
                    class="button secondary toggle"
                    aria-controls="new-password"
                    aria-pressed=move || if visible.get() { "true" } else { "false" }
                    hidden=move || !hydrated.get()
                    data-testid=routes::testid::PASSWORD_TOGGLE
                    on:click=move |_| set_visible.update(|v| *v = !*v)
                >
                    {move || if visible.get() { t.hide_password } else { t.show_password }}
                </button>
            </div>
        </div>
        <div class="field">
            <label for="confirm-password">{r.confirm_label}</label>
            <input
                id="confirm-password"
                name="confirm"
                type=input_type
                autocomplete="new-password"
                required=true
                maxlength="256"
                spellcheck="false"
                autocapitalize="off"
                on:input=move |ev| set_confirm.set(event_target_value(&ev))
            />
        </div>
        <ul id="password-rules" class="rules" aria-live="polite" data-testid=routes::testid::PASSWORD_RULES>
            <li class=move || mark(long_enough())>
                {min_text}
                <span class="count" hidden=move || !hydrated.get()>
                    " (" {move || r.characters.replace("{n}", &count().to_string())} ")"
                </span>
            </li>
            {complexity.then(|| view! { <li class=move || mark(complex())>{r.rule_complexity}</li> })}
            <li class=move || mark(matches())>{r.rule_match}</li>
            <li class=move || mark(no_name())>{r.rule_name}</li>
            <li class="rule-note">{r.rule_common}</li>
        </ul>
    }
}
