//! `/`: signed-in users go to Security info (anonymous visitors are sent to sign-in by the server).

use crate::routes;
use leptos::prelude::*;
use leptos_router::components::Redirect;

#[component]
pub fn Home() -> impl IntoView {
    view! { <Redirect path=routes::SECURITY_INFO/> }
}
