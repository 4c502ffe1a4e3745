//! The helpdesk console: `/helpdesk` (search, approvals), `/helpdesk/user?id=` (the user card:
//! verify the caller, then act), `/helpdesk/audit` (filter and export). Plain forms and links
//! only: everything works before any wasm loads.

use crate::api::{
    card_path, helpdesk_audit, helpdesk_card, helpdesk_home, ApprovalItem, AuditLine, AuditQuery,
    HelpdeskAct, HelpdeskDecide, HelpdeskToken, HelpdeskVerifyCheck, HelpdeskVerifyStart, UserCard,
    VerificationInfo,
};
use crate::components::{AppFrame, ErrorNotice, InfoNotice};
use crate::pages::common::{page_error, param, resync_code_fields};
use crate::{routes, text};
use leptos::prelude::*;
use leptos_meta::Title;

fn notice() -> Option<&'static str> {
    let h = text::en().helpdesk;
    match param("notice").as_deref() {
        Some("done") => Some(h.notice_done),
        Some("tap") => Some(h.notice_done),
        Some("approval_requested") => Some(h.notice_approval_requested),
        Some("approved") => Some(h.notice_approved),
        Some("rejected") => Some(h.notice_rejected),
        Some("verified") => Some(h.notice_verified),
        Some("token_assigned") => Some(h.notice_token_assigned),
        Some("token_resynced") => Some(h.notice_token_resynced),
        _ => None,
    }
}

fn flags_text(flags: &[String]) -> String {
    let h = text::en().helpdesk;
    if flags.is_empty() {
        return h.status_active.to_string();
    }
    flags
        .iter()
        .map(|f| match f.as_str() {
            "disabled" => h.status_disabled,
            "locked" => h.status_locked,
            "blocked" => h.status_blocked,
            "protected" => h.status_protected,
            _ => "",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[component]
pub fn HelpdeskPage() -> impl IntoView {
    let t = text::en();
    let h = t.helpdesk;
    let q = param("q").unwrap_or_default();
    let error = page_error();
    let searched = q.trim().chars().count() >= 2;
    let q_for_fetch = q.clone();
    let decide = ServerAction::<HelpdeskDecide>::new();
    let body = Suspend::new(async move {
        let home = match helpdesk_home(q_for_fetch).await {
            Ok(home) => home,
            Err(e) => {
                return view! { <ErrorNotice code=e.code() testid=routes::testid::ERROR/> }
                    .into_any()
            }
        };
        let results = searched.then(|| {
            if home.hits.is_empty() {
                return view! { <p class="muted">{h.no_results}</p> }.into_any();
            }
            let rows = home
                .hits
                .iter()
                .map(|u| {
                    let href = card_path(&u.id);
                    view! {
                        <tr>
                            <td><a href=href>{u.display_name.clone()}</a></td>
                            <td>{u.username.clone()}</td>
                            <td>{u.email.clone()}</td>
                            <td>{flags_text(&u.flags)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <div class="table-wrap">
                    <table data-testid=routes::testid::HELPDESK_RESULTS>
                        <caption class="visually-hidden">{h.search_label}</caption>
                        <thead><tr>
                            <th scope="col">{h.col_name}</th>
                            <th scope="col">{h.col_username}</th>
                            <th scope="col">{h.col_email}</th>
                            <th scope="col">{h.col_status}</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            }
            .into_any()
        });
        let approvals = home
            .is_admin
            .then(|| approvals_panel(home.approvals.clone(), decide));
        view! { {results} {approvals} }.into_any()
    });
    view! {
        <Title text=format!("{} · {}", h.title, t.product)/>
        <AppFrame>
            <h1>{h.title}</h1>
            <p class="lead">{h.intro}</p>
            {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
            {notice().map(|message| view! { <InfoNotice message/> })}
            <section class="panel" aria-labelledby="search-heading">
                <h2 id="search-heading" class="visually-hidden">{h.search_label}</h2>
                <form method="get" action=routes::HELPDESK role="search"
                    data-testid=routes::testid::HELPDESK_SEARCH>
                    <div class="field">
                        <label for="q">{h.search_label}</label>
                        <input id="q" name="q" type="search" value=q.clone() minlength="2"
                            maxlength="100" autocomplete="off" aria-describedby="q-hint" required=true/>
                        <p id="q-hint" class="muted small">{h.search_hint}</p>
                    </div>
                    <button type="submit" class="button primary">{h.search_button}</button>
                </form>
                <p><a href=routes::HELPDESK_AUDIT>{h.audit_link}</a></p>
            </section>
            <Suspense fallback=|| ()>{body}</Suspense>
        </AppFrame>
    }
}

fn approvals_panel(items: Vec<ApprovalItem>, decide: ServerAction<HelpdeskDecide>) -> AnyView {
    let h = text::en().helpdesk;
    let body = if items.is_empty() {
        view! { <p class="muted">{h.approvals_empty}</p> }.into_any()
    } else {
        let rows = items
            .into_iter()
            .map(|a| {
                let (id1, id2) = (a.id.clone(), a.id.clone());
                view! {
                    <tr>
                        <td><a href=card_path(&a.user_id)>{a.username.clone()}</a></td>
                        <td>{action_label(&a.action)}</td>
                        <td>{a.requested_by.clone()}</td>
                        <td><time>{a.requested_at.clone()}</time></td>
                        <td class="row-actions">
                            <ActionForm action=decide>
                                <input type="hidden" name="approval" value=id1/>
                                <input type="hidden" name="decision" value="approve"/>
                                <button type="submit" class="button primary small">{h.approve}</button>
                            </ActionForm>
                            <ActionForm action=decide>
                                <input type="hidden" name="approval" value=id2/>
                                <input type="hidden" name="decision" value="reject"/>
                                <button type="submit" class="button secondary small">{h.reject}</button>
                            </ActionForm>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table>
                    <caption class="visually-hidden">{h.approvals_title}</caption>
                    <thead><tr>
                        <th scope="col">{h.col_username}</th>
                        <th scope="col">{h.col_action}</th>
                        <th scope="col">{h.col_requested_by}</th>
                        <th scope="col">{h.col_requested_at}</th>
                        <th scope="col"><span class="visually-hidden">{h.col_action}</span></th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="approvals-heading" data-testid=routes::testid::HELPDESK_APPROVALS>
            <h2 id="approvals-heading">{h.approvals_title}</h2>
            {body}
        </section>
    }
    .into_any()
}

fn action_label(action: &str) -> &'static str {
    let h = text::en().helpdesk;
    match action {
        "reset_link" => h.action_reset_link,
        "reregister" => h.action_reregister,
        "tap" => h.action_tap,
        "unlock" => h.action_unlock,
        "unblock" => h.action_unblock,
        "sign_out" => h.action_sign_out,
        _ => "",
    }
}

#[component]
pub fn HelpdeskUserPage() -> impl IntoView {
    let t = text::en();
    let h = t.helpdesk;
    let id = param("id").unwrap_or_default();
    let error = page_error();
    let start = ServerAction::<HelpdeskVerifyStart>::new();
    let check = ServerAction::<HelpdeskVerifyCheck>::new();
    let act = ServerAction::<HelpdeskAct>::new();
    let decide = ServerAction::<HelpdeskDecide>::new();
    let body = Suspend::new(async move {
        let card = match helpdesk_card(id).await {
            Ok(c) => c,
            Err(e) => {
                return view! { <ErrorNotice code=e.code() testid=routes::testid::ERROR/> }
                    .into_any()
            }
        };
        card_view(card, start, check, act, decide).into_any()
    });
    view! {
        <Title text=format!("{} · {}", h.title, t.product)/>
        <AppFrame>
            <p><a href=routes::HELPDESK>{h.back}</a></p>
            {error.map(|code| view! { <ErrorNotice code testid=routes::testid::ERROR/> })}
            {notice().map(|message| view! { <InfoNotice message/> })}
            <Suspense fallback=|| ()>{body}</Suspense>
        </AppFrame>
    }
}

fn card_view(
    c: UserCard,
    start: ServerAction<HelpdeskVerifyStart>,
    check: ServerAction<HelpdeskVerifyCheck>,
    act: ServerAction<HelpdeskAct>,
    decide: ServerAction<HelpdeskDecide>,
) -> impl IntoView {
    let t = text::en();
    let h = t.helpdesk;
    let s = t.sec;
    let mut flags = vec![];
    if !c.enabled {
        flags.push("disabled".to_string());
    }
    if c.locked {
        flags.push("locked".to_string());
    }
    if c.blocked_until.is_some() {
        flags.push("blocked".to_string());
    }
    if c.protected {
        flags.push("protected".to_string());
    }
    let registration = if c.complete {
        h.registration_complete
    } else {
        h.registration_incomplete
    }
    .replace("{n}", &c.registered.to_string())
    .replace("{m}", &c.required.to_string());
    let methods = if c.methods.is_empty() {
        view! { <p class="muted">{h.no_methods}</p> }.into_any()
    } else {
        let rows = c
            .methods
            .iter()
            .map(|m| {
                view! {
                    <tr>
                        <td>{s.kind_label(&m.kind)} " · " {m.name.clone()}</td>
                        <td>{m.detail.clone()}</td>
                        <td><time>{m.added_on.clone()}</time></td>
                        <td>{m.last_used.clone().unwrap_or_else(|| h.never.to_string())}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table>
                    <caption class="visually-hidden">{h.methods_title}</caption>
                    <thead><tr>
                        <th scope="col">{h.col_method}</th>
                        <th scope="col">{h.col_detail}</th>
                        <th scope="col">{h.col_added}</th>
                        <th scope="col">{h.col_last_used}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let new_tap = c.new_tap.clone().map(|(pass, until)| {
        view! {
            <div class="notice success" role="status" data-testid=routes::testid::HELPDESK_TAP>
                <p>{h.tap_shown_once}</p>
                <p class="code-display"><code>{pass}</code></p>
                <p>{h.tap_valid_until.replace("{until}", &until)}</p>
            </div>
        }
    });
    let approvals = (!c.approvals.is_empty()).then(|| approvals_panel(c.approvals.clone(), decide));
    view! {
        <h1>{c.display_name.clone()} " "<span class="muted">"(" {c.username.clone()} ")"</span></h1>
        {new_tap}
        <section class="panel" aria-labelledby="account-heading">
            <h2 id="account-heading">{h.account_title}</h2>
            <dl class="facts">
                <dt>{h.label_status}</dt><dd>{flags_text(&flags)}</dd>
                <dt>{h.label_role}</dt><dd>{c.role.clone()}</dd>
                <dt>{h.label_source}</dt><dd>{c.source.clone()}</dd>
                <dt>{h.label_email}</dt><dd>{c.email.clone()}</dd>
                <dt>{h.label_phone}</dt><dd>{c.phone.clone()}</dd>
                {c.blocked_until.clone().map(|b| view! { <dt>{h.label_blocked_until}</dt><dd>{b} " UTC"</dd> })}
                <dt>{h.label_registration}</dt><dd>{registration}</dd>
            </dl>
            {c.protected.then(|| view! { <p class="notice warn">{h.protected_note}</p> })}
            {c.tap_until.clone().map(|u| view! { <p class="muted">{h.tap_active.replace("{until}", &u)}</p> })}
        </section>
        <section class="panel" aria-labelledby="methods-heading">
            <h2 id="methods-heading">{h.methods_title}</h2>
            {methods}
        </section>
        {verify_panel(&c, start, check)}
        {actions_panel(&c, act)}
        {approvals}
        {audit_table(h.signins_title, "signins-heading", c.signins.clone(), false)}
        {audit_table(h.timeline_title, "timeline-heading", c.timeline.clone(), false)}
    }
}

fn verify_panel(
    c: &UserCard,
    start: ServerAction<HelpdeskVerifyStart>,
    check: ServerAction<HelpdeskVerifyCheck>,
) -> impl IntoView {
    let t = text::en();
    let h = t.helpdesk;
    let s = t.sec;
    let state = c
        .verification
        .clone()
        .map(|v| verification_state(&c.id, v, check));
    let uid = c.id.clone();
    let choices = c
        .methods
        .iter()
        .filter(|m| m.kind != "passkey")
        .map(|m| {
            let label = if m.detail.is_empty() {
                format!("{} · {}", s.kind_label(&m.kind), m.name)
            } else {
                format!("{} · {}", s.kind_label(&m.kind), m.detail)
            };
            let buttons = match m.kind.as_str() {
                "phone" => view! {
                    <button type="submit" name="how" value="sms" class="button secondary small">{h.send_text}</button>
                    <button type="submit" name="how" value="voice" class="button secondary small">{h.send_call}</button>
                }
                .into_any(),
                "email" => view! {
                    <button type="submit" class="button secondary small">{h.send_email}</button>
                }
                .into_any(),
                _ => view! {
                    <button type="submit" class="button secondary small">{h.start}</button>
                }
                .into_any(),
            };
            let (uid, mid) = (uid.clone(), m.id.clone());
            view! {
                <li>
                    <ActionForm action=start>
                        <input type="hidden" name="user" value=uid/>
                        <input type="hidden" name="method" value=mid/>
                        <span>{label}</span> " " {buttons}
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    let portal = c.portal.then(|| {
        view! {
            <li>
                <ActionForm action=start>
                    <input type="hidden" name="user" value=uid/>
                    <input type="hidden" name="method" value="portal"/>
                    <span>{h.portal_choice}</span> " "
                    <button type="submit" class="button secondary small">{h.start}</button>
                </ActionForm>
            </li>
        }
    });
    view! {
        <section class="panel" aria-labelledby="verify-heading" data-testid=routes::testid::HELPDESK_VERIFY>
            <h2 id="verify-heading">{h.verify_title}</h2>
            <p class="muted">{h.verify_intro}</p>
            {state}
            <h3>{h.verify_choice_legend}</h3>
            <ul class="plain-list verify-choices">{choices} {portal}</ul>
        </section>
    }
}

fn verification_state(
    user: &str,
    v: VerificationInfo,
    check: ServerAction<HelpdeskVerifyCheck>,
) -> AnyView {
    let h = text::en().helpdesk;
    let user = user.to_string();
    let fill = |s: &str| {
        s.replace("{method}", &v.method)
            .replace(
                "{at}",
                if v.decided_at.is_empty() {
                    &v.started_at
                } else {
                    &v.decided_at
                },
            )
            .replace("{until}", &v.valid_until)
    };
    let testid = routes::testid::HELPDESK_STATE;
    match v.state.as_str() {
        "verified" => view! {
            <div class="notice success" role="status" data-testid=testid data-state="verified">
                <p>{fill(h.state_verified)}</p>
            </div>
        }
        .into_any(),
        "failed" => view! {
            <div class="notice error" role="alert" data-testid=testid data-state="failed">
                <p>{fill(h.state_failed)}</p>
            </div>
        }
        .into_any(),
        "denied" => view! {
            <div class="notice error" role="alert" data-testid=testid data-state="denied">
                <p>{fill(h.state_denied)}</p>
            </div>
        }
        .into_any(),
        "expired" => view! {
            <div class="notice warn" role="status" data-testid=testid data-state="expired">
                <p>{fill(h.state_expired)}</p>
            </div>
        }
        .into_any(),
        _ if v.channel == "portal" => view! {
            <div class="notice info" role="status" data-testid=testid data-state="pending">
                // the agent's screen follows the caller's answer
                <meta http-equiv="refresh" content="5"/>
                <p>{h.portal_waiting.replace("{code}", &v.approval_code)}</p>
                <p><a href=card_path(&user)>{h.check_again}</a></p>
            </div>
        }
        .into_any(),
        _ => {
            let fields = if v.channel == "questions" {
                v.questions
                    .iter()
                    .enumerate()
                    .map(|(i, q)| {
                        let name = format!("a{}", i + 1);
                        let fid = format!("hd-{name}");
                        view! {
                            <div class="field">
                                <label for=fid.clone()>{q.clone()}</label>
                                <input id=fid name=name type="text" autocomplete="off" required=true maxlength="200"/>
                            </div>
                        }
                    })
                    .collect_view()
                    .into_any()
            } else {
                let (label, kind) = match v.channel.as_str() {
                    "app" => (h.app_label, "one-time-code"),
                    "pin" => (h.pin_label, "off"),
                    _ => (h.code_label, "off"),
                };
                view! {
                    <div class="field">
                        <label for="hd-a1">{label}</label>
                        <input id="hd-a1" name="a1" type="text" inputmode="numeric" autocomplete=kind
                            required=true maxlength="12" data-testid=routes::testid::CODE_INPUT autofocus=true/>
                    </div>
                }
                .into_any()
            };
            let intro = match v.channel.as_str() {
                "sms" | "voice" | "email" => Some(h.code_sent.replace("{to}", &v.destination)),
                "questions" => Some(h.questions_intro.to_string()),
                _ => None,
            };
            view! {
                <div data-testid=testid data-state="pending">
                    {intro.map(|i| view! { <p>{i}</p> })}
                    <ActionForm action=check>
                        <input type="hidden" name="user" value=user/>
                        <input type="hidden" name="verification" value=v.id/>
                        {fields}
                        <button type="submit" class="button primary">{h.check}</button>
                    </ActionForm>
                </div>
            }
            .into_any()
        }
    }
}

fn actions_panel(c: &UserCard, act: ServerAction<HelpdeskAct>) -> impl IntoView {
    let h = text::en().helpdesk;
    let disabled = !c.verified;
    let uid = c.id.clone();
    let (tap_uid, tap_max, tap_default) = (
        c.id.clone(),
        c.tap_max_minutes.to_string(),
        c.tap_minutes.to_string(),
    );
    let simple = move |action: &'static str,
                       label: &'static str,
                       help: Option<&'static str>,
                       danger: bool| {
        let class = if danger {
            "button danger"
        } else {
            "button secondary"
        };
        let uid = uid.clone();
        view! {
            <li>
                <ActionForm action=act>
                    <input type="hidden" name="user" value=uid/>
                    <input type="hidden" name="action" value=action/>
                    <button type="submit" class=class disabled=disabled>{label}</button>
                    {help.map(|x| view! { <p class="muted small">{x}</p> })}
                </ActionForm>
            </li>
        }
    };
    let minutes_note = h
        .actions_locked
        .replace("{minutes}", &c.verification_minutes.to_string());
    view! {
        <section class="panel" aria-labelledby="actions-heading" data-testid=routes::testid::HELPDESK_ACTIONS>
            <h2 id="actions-heading">{h.actions_title}</h2>
            {disabled.then(|| view! { <p class="muted">{minutes_note}</p> })}
            <ul class="plain-list action-list">
                {simple("reset_link", h.action_reset_link, Some(h.action_reset_link_help), false)}
                <li>
                    <ActionForm action=act>
                        <input type="hidden" name="user" value=tap_uid/>
                        <input type="hidden" name="action" value="tap"/>
                        <div class="field inline">
                            <label for="tap-minutes">{h.tap_minutes_label}</label>
                            <input id="tap-minutes" name="minutes" type="number" min="1"
                                max=tap_max value=tap_default/>
                        </div>
                        <button type="submit" class="button secondary" disabled=disabled>{h.action_tap}</button>
                        <p class="muted small">{h.action_tap_help}</p>
                    </ActionForm>
                </li>
                {c.locked.then(|| simple("unlock", h.action_unlock, None, false))}
                {c.blocked_until.is_some().then(|| simple("unblock", h.action_unblock, None, false))}
                {token_forms(c, disabled)}
                {simple("sign_out", h.action_sign_out, None, false)}
                {simple("reregister", h.action_reregister, Some(h.action_reregister_help), true)}
            </ul>
        </section>
    }
}

/// Hand out an inventory token; resynchronise each of the user's HOTP tokens.
fn token_forms(c: &UserCard, disabled: bool) -> impl IntoView {
    let h = text::en().helpdesk;
    let uid = c.id.clone();
    let assign = ServerAction::<HelpdeskToken>::new();
    let resyncs = c
        .methods
        .iter()
        .filter_map(|m| Some((m.name.clone(), m.resync_serial.clone()?)))
        .map(|(name, serial)| {
            let action = ServerAction::<HelpdeskToken>::new();
            let uid = uid.clone();
            let title = h.token_resync_title.replace("{token}", &name);
            let fields = resync_code_fields(&serial, "off");
            view! {
                <li>
                    <details class="inline-details">
                        <summary class="button secondary">{title}</summary>
                        <ActionForm action>
                            <input type="hidden" name="user" value=uid/>
                            <input type="hidden" name="serial" value=serial/>
                            <p class="muted small">{h.token_resync_help}</p>
                            {fields}
                            <button type="submit" class="button secondary" disabled=disabled>{h.action_token_resync}</button>
                        </ActionForm>
                    </details>
                </li>
            }
        })
        .collect_view();
    let assign_uid = c.id.clone();
    view! {
        <li>
            <ActionForm action=assign>
                <input type="hidden" name="user" value=assign_uid/>
                <div class="field inline">
                    <label for="token-serial">{h.token_assign_label}</label>
                    <input id="token-serial" name="serial" type="text" autocomplete="off" maxlength="64" required=true aria-describedby="token-serial-hint"/>
                </div>
                <button type="submit" class="button secondary" disabled=disabled>{h.action_token_assign}</button>
                <p id="token-serial-hint" class="muted small">{h.token_assign_hint}</p>
            </ActionForm>
        </li>
        {resyncs}
    }
}

fn audit_table(
    title: &'static str,
    id: &'static str,
    lines: Vec<AuditLine>,
    testid: bool,
) -> impl IntoView {
    let t = text::en();
    let h = t.helpdesk;
    let body = if lines.is_empty() {
        view! { <p class="muted">{h.audit_empty}</p> }.into_any()
    } else {
        let rows = lines
            .into_iter()
            .map(|l| {
                let result = if l.success { t.result_success } else { t.result_failure };
                view! {
                    <tr class=if l.success { "ok" } else { "failed" } data-event=l.event.clone()>
                        <td><time>{l.at}</time></td>
                        <td>{t.for_event(&l.event).to_string()} <span class="muted small">" (" {l.event.clone()} ")"</span></td>
                        <td>{result}</td>
                        <td>{l.username}</td>
                        <td>{l.actor}</td>
                        <td class="reason">{l.reason}</td>
                        <td>{l.client_ip}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table data-testid=if testid { routes::testid::AUDIT_TABLE } else { "" }>
                    <caption class="visually-hidden">{title}</caption>
                    <thead><tr>
                        <th scope="col">{h.col_time}</th>
                        <th scope="col">{h.col_event}</th>
                        <th scope="col">{h.col_result}</th>
                        <th scope="col">{h.col_username}</th>
                        <th scope="col">{h.col_actor}</th>
                        <th scope="col">{h.col_reason}</th>
                        <th scope="col">{h.col_address}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby=id>
            <h2 id=id>{title}</h2>
            {body}
        </section>
    }
}

#[component]
pub fn HelpdeskAuditPage() -> impl IntoView {
    let t = text::en();
    let h = t.helpdesk;
    let q = AuditQuery {
        user: param("user").unwrap_or_default(),
        actor: param("actor").unwrap_or_default(),
        event: param("event").unwrap_or_default(),
        from: param("from").unwrap_or_default(),
        to: param("to").unwrap_or_default(),
    };
    let query_string = [
        ("user", &q.user),
        ("actor", &q.actor),
        ("event", &q.event),
        ("from", &q.from),
        ("to", &q.to),
    ]
    .iter()
    .map(|(k, v)| routes::query_pair(k, v))
    .collect::<Vec<_>>()
    .join("&");
    let csv = format!("{}?format=csv&{query_string}", routes::HELPDESK_EXPORT);
    let jsonl = format!("{}?format=jsonl&{query_string}", routes::HELPDESK_EXPORT);
    let fetch = q.clone();
    let body = Suspend::new(async move {
        match helpdesk_audit(fetch).await {
            Ok(lines) => audit_table(h.audit_title, "audit-results", lines, true).into_any(),
            Err(e) => {
                view! { <ErrorNotice code=e.code() testid=routes::testid::ERROR/> }.into_any()
            }
        }
    });
    view! {
        <Title text=format!("{} · {}", h.audit_title, t.product)/>
        <AppFrame>
            <p><a href=routes::HELPDESK>{h.back}</a></p>
            <h1>{h.audit_title}</h1>
            <p class="lead">{h.audit_intro}</p>
            <section class="panel">
                <form method="get" action=routes::HELPDESK_AUDIT class="filter-form">
                    <div class="field"><label for="f-user">{h.filter_user}</label>
                        <input id="f-user" name="user" type="text" value=q.user.clone() autocomplete="off"/></div>
                    <div class="field"><label for="f-actor">{h.filter_actor}</label>
                        <input id="f-actor" name="actor" type="text" value=q.actor.clone() autocomplete="off"/></div>
                    <div class="field"><label for="f-event">{h.filter_event}</label>
                        <input id="f-event" name="event" type="text" value=q.event.clone() autocomplete="off"/></div>
                    <div class="field"><label for="f-from">{h.filter_from}</label>
                        <input id="f-from" name="from" type="date" value=q.from.clone()/></div>
                    <div class="field"><label for="f-to">{h.filter_to}</label>
                        <input id="f-to" name="to" type="date" value=q.to.clone()/></div>
                    <button type="submit" class="button primary">{h.filter_button}</button>
                </form>
                <p>
                    <a href=csv download="converge-audit.csv">{h.export_csv}</a>
                    " · "
                    <a href=jsonl download="converge-audit.jsonl">{h.export_jsonl}</a>
                </p>
            </section>
            <Suspense fallback=|| ()>{body}</Suspense>
        </AppFrame>
    }
}
