//! The directory sync: imports the users in scope (members of `ldap.groups`, or everyone the
//! user filter finds) into Converge, updates them, and disables those that left.
//!
//! ```text
//!  lease (one running run per directory) ──► read EVERYTHING from the directory (paged, RFC 2696)
//!      │ directory fails ──► run "failed", nothing changed
//!      ▼
//!  plan against the stored users ──► would disable > threshold? ──► disable none, run "held",
//!      │                                                           administrators mailed
//!      ▼
//!  slices of ≤ 40 ms (SQLite: 25 ms apart, so sign-ins get the one writer's lock): creates,
//!  updates, each with its audit line and mail; the last slice: disables, the run's report
//! ```
//! Full runs see the whole scope; incremental runs ask only for entries changed since the last
//! run (`modifyTimestamp` / `uSNChanged`) and cannot see deletions, so a full run happens at
//! least every `full_sync_hours`. A run whose directory read fails applies nothing; one whose
//! database write fails part-way leaves every user either as before or wholly changed,
//! disables nobody (disables come last), and the next run, planned afresh, does the rest.

use super::{domain_root, first, normalize_dn, LdapDirectory, Preset};
use crate::domain::audit::{event, AuditEntry};
use crate::domain::error::DomainError;
use crate::domain::users::{
    DisplayName, EmailAddress, PhoneNumber, Role, User, UserProfile, Username,
};
use crate::notify::messages::Notice;
use crate::notify::Notifier;
use crate::store::audit::append_audit_in;
use crate::store::sync::{
    disable_user_in, rename_user_in, set_principal_in, stamp_external_id_in, sync_run_finish_in,
    SyncRun,
};
use crate::store::users::{upsert_user_in, Upserted};
use crate::store::Store;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Scope, SearchEntry};
use std::collections::{HashMap, HashSet};

/// A running run's heartbeat comes this often; one whose heartbeat stopped for
/// [`STALE_RUN_SECONDS`] was abandoned by a stopped instance and no longer blocks the next run.
/// (On SQLite the heartbeat waits while the run's own write transaction holds the database: a
/// 100,000-user apply takes well under a minute, BENCHMARKS.md.)
const HEARTBEAT_SECONDS: u64 = 10;
const STALE_RUN_SECONDS: i64 = 60;
/// Error lines kept in a run's report.
const REPORT_LINES: usize = 200;

/// Progress callback: (what, how many).
pub type Progress = Box<dyn Fn(&str, u64) + Send + Sync>;

pub struct SyncOptions {
    pub dry_run: bool,
    /// A full run even when an incremental one would do.
    pub full: bool,
    /// `schedule`, `cli`, or an administrator's name.
    pub actor: String,
    /// Called with (what, how many) while reading and applying.
    pub progress: Option<Progress>,
}

pub struct SyncService<'a> {
    pub store: &'a Store,
    pub notifier: &'a Notifier,
    pub ldap: &'a LdapDirectory,
    pub default_country: Option<&'a str>,
}

/// One user as the directory describes them.
#[derive(Debug)]
struct Found {
    profile: UserProfile,
    in_scope: bool,
    /// The entry's immutable id (objectGUID as a UUID, entryUUID), when the directory gives it.
    external_id: Option<String>,
    /// A second sign-in name (`userPrincipalName`), lower-cased.
    principal: Option<String>,
}

/// The configured groups' newest change mark, and whether one of them is gone.
#[derive(Default)]
struct GroupsMark {
    mark: Option<String>,
    missing: bool,
    /// OpenLDAP with `nested_groups`: the groups nested in each configured group, found while
    /// reading their marks (what `nested_members` would find again).
    subgroups: Option<HashMap<String, HashSet<String>>>,
}

enum Change {
    Create(UserProfile),
    Update(Box<User>, UserProfile),
    /// The same directory entry under a new name: (user id, old name, profile).
    Rename(String, String, UserProfile),
    /// A new directory entry under the name of an earlier one (deleted and created again: a
    /// new objectGUID / entryUUID): the earlier portal user is retired, the new one created.
    Recreate(Box<User>, UserProfile),
}

impl SyncService<'_> {
    fn progress(&self, opts: &SyncOptions, what: &str, n: u64) {
        if let Some(p) = &opts.progress {
            p(what, n);
        }
    }

    /// Runs one sync and returns its report (also kept in the database).
    pub async fn run(&self, opts: &SyncOptions, now: i64) -> Result<SyncRun, DomainError> {
        let cfg = &self.ldap.config;
        let (stored, last_full) = self.store.sync_position(&cfg.source).await?;
        // AD: uSNChanged counts per domain controller, so a mark is kept with the DC's
        // invocationId (`<usn>@<id>`); another DC (failover, a restored one) means a full run
        let (high_water, marked_by) = split_mark(stored.as_deref());
        let dc = self.ldap.dc_identity().await?;
        let other_dc = matches!((&marked_by, &dc), (Some(a), Some(b)) if a != b);
        if other_dc {
            tracing::info!(source = %cfg.source, "another domain controller answers: a full run");
        }
        let mut full = opts.full
            || other_dc
            || high_water.is_none()
            || last_full.is_none_or(|t| now - t >= cfg.full_sync_seconds);
        // the groups' own marks, read before the entries. Membership changes do not reliably
        // touch the member's entry (OpenLDAP's memberof overlay leaves modifyTimestamp alone on
        // a re-add; AD's memberOf is a back link): a group changed (or gone) since the last run
        // means a full run. The marks then join the position: a group changed after its members
        // (AD's uSNChanged is one counter for the whole domain) would otherwise look newer than
        // every mark, making every run a full one; a change after this read is newer.
        // (A failed read stops a would-be incremental run before it starts; a full run records
        // the failure.)
        let groups = match self.groups_mark().await {
            Err(e) if !full => return Err(e),
            groups => groups,
        };
        if let (false, Ok(g), Some(mark)) = (full, &groups, &high_water) {
            full = g.missing
                || g.mark
                    .as_deref()
                    .is_some_and(|m| newer(cfg.preset, m, mark));
        }
        let mut run = SyncRun {
            id: uuid::Uuid::new_v4().to_string(),
            source: cfg.source.clone(),
            kind: if full { "full" } else { "incremental" }.into(),
            dry_run: opts.dry_run,
            status: "running".into(),
            actor: opts.actor.clone(),
            started_at: now,
            ..Default::default()
        };
        if !self.store.sync_run_start(&run, STALE_RUN_SECONDS).await? {
            return Err(DomainError::Invalid(format!(
                "another sync of {} is running; try again when it has finished (a run left by a \
                 stopped instance counts as abandoned {} seconds after its last heartbeat)",
                cfg.source, STALE_RUN_SECONDS
            )));
        }
        let started = std::time::Instant::now();
        let heartbeat = {
            let (store, id) = (self.store.clone(), run.id.clone());
            tokio::spawn(async move {
                let period = std::time::Duration::from_secs(HEARTBEAT_SECONDS);
                loop {
                    tokio::time::sleep(period).await;
                    let at = now + started.elapsed().as_secs() as i64;
                    if let Err(e) = store.sync_heartbeat(&id, at).await {
                        tracing::debug!(error = %e, "sync heartbeat not written (tried again)");
                    }
                }
            })
        };
        let applied = match groups {
            Ok(g) => {
                self.read_and_apply(
                    &mut run,
                    opts,
                    (high_water, g.mark, full),
                    (dc.as_deref(), g.subgroups),
                    now,
                )
                .await
            }
            Err(e) => Err(e),
        };
        heartbeat.abort();
        record_run(&run, applied.is_ok(), started.elapsed().as_secs_f64());
        match applied {
            Ok(()) => Ok(run),
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "directory sync failed; nobody was disabled");
                self.store
                    .sync_run_failed(&run.id, &e.to_string(), now)
                    .await?;
                Err(e)
            }
        }
    }

    async fn read_and_apply(
        &self,
        run: &mut SyncRun,
        opts: &SyncOptions,
        (position, groups_mark, full): (Option<String>, Option<String>, bool),
        (dc, subgroups): (Option<&str>, Option<HashMap<String, HashSet<String>>>),
        now: i64,
    ) -> Result<(), DomainError> {
        let since = position.clone().filter(|_| !full);
        let (found, high_water, mut report) = self.read(opts, since.as_deref(), subgroups).await?;
        run.seen = found.len() as i64;
        // the newest of the entries', the groups' and the old position: the position never
        // moves back (a full run may see only older entries)
        let mut newest = None;
        for mark in [high_water, groups_mark, position].iter().flatten() {
            keep_newest(self.ldap.config.preset, &mut newest, mark);
        }
        run.high_water = match (newest, dc) {
            (Some(mark), Some(dc)) => format!("{mark}@{dc}"),
            (mark, _) => mark.unwrap_or_default(),
        };
        let cfg = &self.ldap.config;
        let names: Vec<String> = found
            .iter()
            .map(|f| f.profile.username.as_str().to_string())
            .collect();
        // a full run compares with everyone (to find who left); an incremental one only with
        // the entries that changed
        let existing = self
            .store
            .users_from_source(&cfg.source, since.is_some().then_some(names.as_slice()))
            .await?;
        let taken: HashSet<String> = self
            .store
            .usernames_not_from(&cfg.source, &names)
            .await?
            .into_iter()
            .collect();

        // users are matched by the directory's id first: a renamed entry is the same person
        let identities = self.store.identities(&cfg.source).await?;
        let known_ids: HashMap<&str, (&String, &String)> = identities
            .iter()
            .filter_map(|(name, i)| i.external_id.as_deref().map(|x| (x, (&i.id, name))))
            .collect();
        let mut stamps: Vec<(&str, &str)> = Vec::new();
        let mut principals: Vec<(&str, Option<&str>)> = Vec::new();

        // plan
        let mut changes = Vec::new();
        let mut to_disable: Vec<&User> = Vec::new();
        let mut in_scope: HashSet<&str> = HashSet::new();
        for f in &found {
            let name = f.profile.username.as_str();
            let known = f.external_id.as_deref().and_then(|x| known_ids.get(x));
            // the second sign-in name follows the entry (to its new name after a rename)
            let held = identities
                .get(known.map_or(name, |(_, old)| old.as_str()))
                .and_then(|i| i.principal.as_deref());
            if f.in_scope && f.principal.as_deref() != held {
                principals.push((name, f.principal.as_deref()));
            }
            if let Some((id, old)) = known.filter(|(_, old)| *old != name) {
                if !f.in_scope {
                    continue; // renamed and out of scope: a full run disables the old name
                }
                in_scope.insert(old.as_str());
                if taken.contains(name) || existing.contains_key(name) {
                    report.push(format!(
                        "{name}: renamed from {old} in the directory, but another user has this name; not renamed"
                    ));
                } else {
                    changes.push(Change::Rename(
                        id.to_string(),
                        old.to_string(),
                        f.profile.clone(),
                    ));
                }
                continue;
            }
            if let (Some(x), None) = (f.external_id.as_deref(), known) {
                // the name's portal user came from another entry: this is someone new
                let earlier = existing.get(name).filter(|_| {
                    identities
                        .get(name)
                        .and_then(|i| i.external_id.as_deref())
                        .is_some_and(|old| old != x)
                });
                if let (Some(earlier), true) = (earlier, f.in_scope) {
                    in_scope.insert(name);
                    changes.push(Change::Recreate(
                        Box::new(earlier.clone()),
                        f.profile.clone(),
                    ));
                    stamps.push((name, x));
                    principals.push((name, f.principal.as_deref()));
                    continue;
                }
                stamps.push((name, x));
            }
            if !f.in_scope {
                if let Some(u) = existing.get(name).filter(|u| u.enabled) {
                    to_disable.push(u);
                }
                continue;
            }
            in_scope.insert(name);
            match existing.get(name) {
                None if taken.contains(name) => report.push(format!(
                    "{name}: a local user with this name exists; not imported"
                )),
                None => changes.push(Change::Create(f.profile.clone())),
                Some(u) if differs(u, &f.profile) => {
                    changes.push(Change::Update(Box::new(u.clone()), f.profile.clone()))
                }
                Some(_) => run.unchanged += 1,
            }
        }
        if since.is_none() {
            // a full run sees the whole scope: whoever is missing left it
            let mut gone: Vec<&User> = existing
                .values()
                .filter(|u| u.enabled && !in_scope.contains(u.username.as_str()))
                .collect();
            to_disable.append(&mut gone);
        }
        to_disable.sort_by(|a, b| a.username.cmp(&b.username));
        to_disable.dedup_by(|a, b| a.id == b.id);
        let held = to_disable.len() as u64 > u64::from(cfg.disable_threshold);
        run.errors = report.len() as i64;

        if opts.dry_run {
            for c in &changes {
                match c {
                    Change::Create(p) => report.push(format!("would create {}", p.username)),
                    Change::Update(u, _) => report.push(format!("would update {}", u.username)),
                    Change::Rename(_, old, p) => {
                        report.push(format!("would rename {old} to {}", p.username))
                    }
                    Change::Recreate(_, p) => report.push(format!(
                        "would retire the earlier {0} (a new directory entry is named {0})",
                        p.username
                    )),
                }
            }
            for u in &to_disable {
                report.push(format!(
                    "would disable {}{}",
                    u.username,
                    if held {
                        " (held: above the threshold)"
                    } else {
                        ""
                    }
                ));
            }
            run.created = changes
                .iter()
                .filter(|c| matches!(c, Change::Create(_) | Change::Recreate(..)))
                .count() as i64;
            run.updated = changes.len() as i64 - run.created;
            run.disabled = if held { 0 } else { to_disable.len() as i64 };
            run.status = if held { "held" } else { "done" }.into();
            run.finished_at = now;
            report.truncate(REPORT_LINES);
            run.report = report;
            let mut tx = self.store.begin().await?;
            sync_run_finish_in(&mut tx, run).await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            return Ok(());
        }

        // apply: in slices of at most SLICE each (a user's change, audit line and mail always
        // in one), disables and the run's record in the last one (a failed run disables nobody)
        let mut tx = Slices::begin(self.store).await?;
        let total = changes.len() as u64;
        let mut mails = false;
        for (i, change) in changes.iter().enumerate() {
            let profile = match change {
                Change::Create(p)
                | Change::Update(_, p)
                | Change::Rename(_, _, p)
                | Change::Recreate(_, p) => p,
            };
            if let Change::Recreate(earlier, _) = change {
                // kept (history, audit) under a name nobody can sign in with, disabled
                let retired = format!(
                    "{}#{}",
                    earlier.username,
                    earlier.id.chars().take(8).collect::<String>()
                );
                rename_user_in(tx.conn(), &earlier.id, &retired, now).await?;
                set_principal_in(tx.conn(), &cfg.source, &retired, None).await?;
                let retired_user = User {
                    username: retired.clone(),
                    ..(**earlier).clone()
                };
                disable_in(
                    tx.conn(),
                    &retired_user,
                    &format!("sync:{}", opts.actor),
                    &format!(
                        "{} sync: {} was deleted and created again in the directory (a new \
                         entry id): the new account starts afresh, this one is kept as {retired}",
                        cfg.source, earlier.username
                    ),
                    now,
                )
                .await?;
                run.disabled += 1;
            }
            if let Change::Rename(id, old, p) = change {
                rename_user_in(tx.conn(), id, p.username.as_str(), now).await?;
                let mut e = AuditEntry::new(event::USER_UPDATED, true, now);
                e.user_id = Some(id.clone());
                e.username = Some(p.username.as_str().to_string());
                e.actor = Some(format!("sync:{}", opts.actor));
                e.reason = Some(format!("{} sync: renamed from {old}", cfg.source));
                append_audit_in(tx.conn(), &e).await?;
            }
            let (id, outcome) = upsert_user_in(tx.conn(), profile, None, &cfg.source, now).await?;
            let outcome = match (change, outcome) {
                (Change::Rename(..), Upserted::Unchanged) => Upserted::Updated,
                (_, o) => o,
            };
            let ev = match outcome {
                Upserted::Created => {
                    run.created += 1;
                    event::USER_CREATED
                }
                Upserted::Updated => {
                    run.updated += 1;
                    event::USER_UPDATED
                }
                Upserted::Unchanged => {
                    run.unchanged += 1;
                    continue;
                }
            };
            let mut e = AuditEntry::new(ev, true, now);
            e.user_id = Some(id.clone());
            e.username = Some(profile.username.as_str().to_string());
            e.actor = Some(format!("sync:{}", opts.actor));
            e.reason = Some(format!("{} sync", cfg.source));
            append_audit_in(tx.conn(), &e).await?;
            let user = user_of(&id, profile, &cfg.source, now);
            let notice = match change {
                // a new directory user has registered nothing yet: invite them to
                Change::Create(_) | Change::Recreate(..) if cfg.mail_new_users => {
                    Some(Notice::UserEnrollment)
                }
                Change::Update(before, _) if cfg.mail_updated_users => {
                    let changes = phone_changes(before, profile);
                    Some(Notice::UpdatedUser {
                        changes,
                        changed_at: crate::domain::format_time(now),
                    })
                    .filter(
                        |n| matches!(n, Notice::UpdatedUser { changes, .. } if !changes.is_empty()),
                    )
                }
                _ => None,
            };
            if let Some(notice) = notice {
                mails |= self
                    .notifier
                    .email_user_in(tx.conn(), &user, &notice, now)
                    .await?
                    .is_some();
            }
            let done = i as u64 + 1;
            if done.is_multiple_of(1000) || done == total {
                self.progress(opts, "applied", done);
            }
            tx.next().await?;
        }
        if held {
            run.held_disables = to_disable.iter().map(|u| u.id.clone()).collect();
            run.status = "held".into();
            let admins = crate::store::users::admins(self.store).await?;
            let notice = Notice::SyncHeld {
                run_id: run.id.clone(),
                source: cfg.source.clone(),
                would_disable: to_disable.len() as u64,
                usernames: to_disable
                    .iter()
                    .take(50)
                    .map(|u| u.username.clone())
                    .collect(),
                started_at: crate::domain::format_time(run.started_at),
            };
            for admin in &admins {
                mails |= self
                    .notifier
                    .email_user_in(tx.conn(), admin, &notice, now)
                    .await?
                    .is_some();
            }
            let mut e = AuditEntry::new(event::SYNC_HELD, true, now);
            e.actor = Some(format!("sync:{}", opts.actor));
            e.reason = Some(format!(
                "{}: {} users would be disabled (threshold {}); run {}",
                cfg.source,
                to_disable.len(),
                cfg.disable_threshold,
                run.id
            ));
            append_audit_in(tx.conn(), &e).await?;
        } else {
            for u in &to_disable {
                disable_in(
                    tx.conn(),
                    u,
                    &format!("sync:{}", opts.actor),
                    "left the directory scope",
                    now,
                )
                .await?;
                run.disabled += 1;
            }
            run.status = "done".into();
        }
        // the directory's ids of users that had none (new ones, or the first run after an upgrade)
        for (name, external_id) in &stamps {
            stamp_external_id_in(tx.conn(), &cfg.source, name, external_id).await?;
            tx.next().await?;
        }
        for (name, principal) in &principals {
            set_principal_in(tx.conn(), &cfg.source, name, *principal).await?;
            tx.next().await?;
        }
        run.finished_at = now;
        let mut e = AuditEntry::new(event::SYNC_RUN, true, now);
        e.actor = Some(format!("sync:{}", opts.actor));
        e.reason = Some(format!(
            "{} {} run {}: {} created, {} updated, {} disabled, {} errors",
            cfg.source, run.kind, run.id, run.created, run.updated, run.disabled, run.errors
        ));
        append_audit_in(tx.conn(), &e).await?;
        report.truncate(REPORT_LINES);
        run.report = report;
        sync_run_finish_in(tx.conn(), run).await?;
        tx.commit().await?;
        if mails {
            self.notifier.wake();
        }
        Ok(())
    }

    /// Reads the users from the directory: every entry in scope (full) or every entry changed
    /// since `since` (incremental). Returns them, the new high-water mark and error lines.
    /// `subgroups`: the nested groups `groups_mark` found already (OpenLDAP).
    async fn read(
        &self,
        opts: &SyncOptions,
        since: Option<&str>,
        subgroups: Option<HashMap<String, HashSet<String>>>,
    ) -> Result<(Vec<Found>, Option<String>, Vec<String>), DomainError> {
        let cfg = &self.ldap.config;
        let a = &cfg.attrs;
        let nested = match subgroups {
            Some(found) => found,
            None => self.nested_members().await?,
        };
        let filter = match since {
            // incremental: every changed entry; scope is decided here, so leavers are seen
            Some(mark) => format!(
                "(&{}({}>={}))",
                cfg.user_filter,
                a.changed,
                ldap3::ldap_escape(mark)
            ),
            None => format!("(&{}{})", cfg.user_filter, self.scope_filter(&nested)),
        };
        let attrs = self.attributes();
        let mut ldap = self.ldap.service().await?;
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(cfg.page_size)),
        ];
        let mut search = ldap
            .streaming_search_with(adapters, &cfg.base_dn, Scope::Subtree, &filter, attrs)
            .await
            .map_err(|e| DomainError::Directory(format!("sync search: {e}")))?;
        let mut found = Vec::new();
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        let mut high: Option<String> = None;
        while let Some(entry) = search
            .next()
            .await
            .map_err(|e| DomainError::Directory(format!("sync search: {e}")))?
        {
            let entry = SearchEntry::construct(entry);
            if let Some(mark) = first(&entry, &a.changed) {
                keep_newest(cfg.preset, &mut high, mark);
            }
            match self.parse_entry(&entry, &nested) {
                Ok(f) => {
                    if seen.insert(f.profile.username.as_str().to_string()) {
                        found.push(f);
                    } else {
                        errors.push(format!(
                            "{}: more than one entry has this username; the first was used",
                            f.profile.username
                        ));
                    }
                }
                Err(why) => errors.push(format!("{}: {why}", entry.dn)),
            }
            if found.len().is_multiple_of(5000) && !found.is_empty() {
                self.progress(opts, "read", found.len() as u64);
            }
        }
        let done = search.finish().await;
        if done.rc == 4 {
            return Err(DomainError::Directory(format!(
                "sync search: the directory stopped after {} entries (sizeLimitExceeded): lift the \
                 size limit for {} (OpenLDAP: limits dn.exact=\"{}\" size=unlimited)",
                found.len() + errors.len(),
                cfg.bind_dn,
                cfg.bind_dn
            )));
        }
        done.success()
            .map_err(|e| DomainError::Directory(format!("sync search: {e}")))?;
        self.ldap.release(ldap);
        self.progress(opts, "read", found.len() as u64);
        Ok((found, high, errors))
    }

    /// With `nested_groups`, what each configured group holds through nesting (normalised
    /// DNs): on AD its members at any depth (one DN-only paged search per group with
    /// LDAP_MATCHING_RULE_IN_CHAIN); on OpenLDAP the groups nested in it (memberOf lists
    /// direct memberships only; see `subgroups`). Empty without `nested_groups`.
    async fn nested_members(&self) -> Result<HashMap<String, HashSet<String>>, DomainError> {
        let cfg = &self.ldap.config;
        let mut out = HashMap::new();
        if !cfg.nested_groups {
            return Ok(out);
        }
        let mut ldap = self.ldap.service().await?;
        if cfg.preset == Preset::OpenLdap {
            for g in self.groups() {
                let inside = self.subgroups(&mut ldap, g, vec!["1.1"]).await?;
                out.insert(
                    g.clone(),
                    inside.iter().map(|e| normalize_dn(&e.dn)).collect(),
                );
            }
            self.ldap.release(ldap);
            return Ok(out);
        }
        for g in self.groups() {
            let filter = format!("(&{}{})", cfg.user_filter, in_chain(g));
            let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(cfg.page_size)),
            ];
            let mut search = ldap
                .streaming_search_with(adapters, &cfg.base_dn, Scope::Subtree, &filter, vec!["1.1"])
                .await
                .map_err(|e| DomainError::Directory(format!("nested groups: {e}")))?;
            let mut members = HashSet::new();
            while let Some(entry) = search
                .next()
                .await
                .map_err(|e| DomainError::Directory(format!("nested groups: {e}")))?
            {
                members.insert(normalize_dn(&SearchEntry::construct(entry).dn));
            }
            search
                .finish()
                .await
                .success()
                .map_err(|e| DomainError::Directory(format!("nested groups: {e}")))?;
            out.insert(normalize_dn(g), members);
        }
        self.ldap.release(ldap);
        Ok(out)
    }

    /// OpenLDAP: the groups nested in `group` at any depth, found through the memberOf the
    /// memberof overlay keeps on member groups too: one search per level (at most 16 levels).
    async fn subgroups(
        &self,
        ldap: &mut ldap3::Ldap,
        group: &str,
        attrs: Vec<&str>,
    ) -> Result<Vec<SearchEntry>, DomainError> {
        let cfg = &self.ldap.config;
        let mut seen = HashSet::from([normalize_dn(group)]);
        let mut level = vec![group.to_string()];
        let mut out = Vec::new();
        for _ in 0..16 {
            if level.is_empty() {
                break;
            }
            let any: String = level
                .iter()
                .map(|g| {
                    format!(
                        "({}={})",
                        cfg.attrs.member_of,
                        ldap3::ldap_escape(g.as_str())
                    )
                })
                .collect();
            let filter =
                format!("(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))(|{any}))");
            let (entries, _) = ldap
                .with_timeout(cfg.timeout)
                .search(&domain_root(group), Scope::Subtree, &filter, attrs.clone())
                .await
                .and_then(|r| r.success())
                .map_err(|e| DomainError::Directory(format!("nested groups: {e}")))?;
            level.clear();
            for e in entries.into_iter().map(SearchEntry::construct) {
                if seen.insert(normalize_dn(&e.dn)) {
                    level.push(e.dn.clone());
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    fn parse_entry(
        &self,
        e: &SearchEntry,
        nested: &HashMap<String, HashSet<String>>,
    ) -> Result<Found, String> {
        let cfg = &self.ldap.config;
        let a = &cfg.attrs;
        let username =
            Username::parse(first(e, &a.username).ok_or_else(|| format!("no {}", a.username))?)
                .map_err(|why| format!("{}: {why}", a.username))?;
        let display = first(e, &a.display_name)
            .or_else(|| first(e, "cn"))
            .unwrap_or(username.as_str());
        let display_name =
            DisplayName::parse(display).map_err(|why| format!("{}: {why}", a.display_name))?;
        // an unusable address or number is left out (and reported), the user is still imported
        let email = first(e, &a.mail).and_then(|m| EmailAddress::parse(m).ok());
        let phone = |attr: &str| {
            first(e, attr).and_then(|n| PhoneNumber::parse(n, self.default_country).ok())
        };
        let mut memberships: Vec<String> = e
            .attrs
            .get(&a.member_of)
            .map(|v| v.iter().map(|d| normalize_dn(d)).collect())
            .unwrap_or_default();
        // a configured group the entry belongs to through nesting counts as a membership: it is
        // among the group's members at any depth (AD), or in a group nested in it (OpenLDAP)
        let dn = normalize_dn(&e.dn);
        let through: Vec<String> = nested
            .iter()
            .filter(|(_, inside)| {
                inside.contains(&dn) || memberships.iter().any(|m| inside.contains(m))
            })
            .map(|(g, _)| g.clone())
            .collect();
        memberships.extend(through);
        let in_scope = cfg.groups.is_empty() || memberships.iter().any(|g| cfg.groups.contains(g));
        let role = if memberships.iter().any(|g| cfg.admin_groups.contains(g)) {
            Role::Admin
        } else if memberships.iter().any(|g| cfg.helpdesk_groups.contains(g)) {
            Role::Helpdesk
        } else {
            Role::User
        };
        let enabled = match cfg.preset {
            Preset::OpenLdap => first(e, &a.lock) != Some(super::OPENLDAP_PERMANENT_LOCK),
            Preset::ActiveDirectory => first(e, "userAccountControl")
                .and_then(|v| v.parse::<u32>().ok())
                .is_none_or(|uac| uac & 2 == 0),
        };
        let mut groups = memberships;
        groups.sort();
        groups.dedup();
        let external_id = match cfg.preset {
            // objectGUID is 16 bytes in AD's mixed-endian GUID layout
            Preset::ActiveDirectory => e
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&a.external_id))
                .and_then(|(_, v)| v.first())
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                .map(|b| uuid::Uuid::from_bytes_le(b).to_string()),
            Preset::OpenLdap => first(e, &a.external_id).map(|v| v.to_ascii_lowercase()),
        };
        // a principal that is no valid sign-in name is left out (the username still works)
        let principal = Some(a.principal.as_str())
            .filter(|p| !p.is_empty())
            .and_then(|p| first(e, p))
            .and_then(|v| Username::parse(v).ok())
            .map(|u| u.as_str().to_string())
            .filter(|p| p != username.as_str());
        Ok(Found {
            external_id,
            principal,
            profile: UserProfile {
                username,
                display_name,
                email,
                mobile_phone: phone(&a.mobile),
                alternate_phone: None,
                office_phone: phone(&a.phone),
                groups,
                enabled,
                role,
            },
            in_scope,
        })
    }

    /// The configured groups (scope, admin, helpdesk).
    fn groups(&self) -> HashSet<&String> {
        let cfg = &self.ldap.config;
        cfg.groups
            .iter()
            .chain(&cfg.admin_groups)
            .chain(&cfg.helpdesk_groups)
            .collect()
    }

    /// The newest change mark among the configured groups (scope, administrators, helpdesk)
    /// and, with `nested_groups`, the groups nested in them; and whether a configured group is
    /// gone.
    async fn groups_mark(&self) -> Result<GroupsMark, DomainError> {
        let cfg = &self.ldap.config;
        let groups = self.groups();
        let mut out = GroupsMark::default();
        if groups.is_empty() {
            return Ok(out);
        }
        let mut ldap = self.ldap.service().await?;
        for g in groups {
            let res = ldap
                .search(
                    g,
                    Scope::Base,
                    "(objectClass=*)",
                    vec![cfg.attrs.changed.as_str()],
                )
                .await
                .map_err(|e| DomainError::Directory(format!("group check: {e}")))?;
            // 32: noSuchObject — a configured group that is gone changed the scope too
            out.missing |= res.1.rc == 32;
            let mut entries: Vec<SearchEntry> =
                res.0.into_iter().map(SearchEntry::construct).collect();
            // and every group nested in it, wherever it lives in the domain
            if cfg.nested_groups && cfg.preset == Preset::OpenLdap {
                let inside = self
                    .subgroups(&mut ldap, g, vec![cfg.attrs.changed.as_str()])
                    .await?;
                out.subgroups.get_or_insert_with(HashMap::new).insert(
                    g.clone(),
                    inside.iter().map(|e| normalize_dn(&e.dn)).collect(),
                );
                entries.extend(inside);
            }
            if cfg.nested_groups && cfg.preset == Preset::ActiveDirectory {
                let nested = format!("(&(objectClass=group){})", in_chain(g));
                entries.extend(
                    ldap.search(
                        &domain_root(g),
                        Scope::Subtree,
                        &nested,
                        vec![cfg.attrs.changed.as_str()],
                    )
                    .await
                    .map_err(|e| DomainError::Directory(format!("group check: {e}")))?
                    .0
                    .into_iter()
                    .map(SearchEntry::construct),
                );
            }
            for e in entries {
                if let Some(v) = first(&e, &cfg.attrs.changed) {
                    keep_newest(cfg.preset, &mut out.mark, v);
                }
            }
        }
        self.ldap.release(ldap);
        Ok(out)
    }

    /// For `converge check-config`: binds as the service account and shows what the first user
    /// in scope maps to.
    pub async fn check(&self) -> Result<Vec<String>, DomainError> {
        let cfg = &self.ldap.config;
        let ldap = self.ldap.service().await?;
        self.ldap.release(ldap);
        let mut lines = vec![format!(
            "ldap: bound as {} ({} preset), base {}",
            cfg.bind_dn,
            match cfg.preset {
                Preset::OpenLdap => "openldap",
                Preset::ActiveDirectory => "active_directory",
            },
            cfg.base_dn
        )];
        let sample = self.read_first().await?;
        match sample {
            None => lines.push(format!(
                "ldap: no user matches {} in scope (check base_dn, user_filter, groups)",
                cfg.user_filter
            )),
            Some((dn, Ok(f))) => {
                let p = &f.profile;
                let opt = |o: Option<&str>| o.unwrap_or("-").to_string();
                lines.push(format!("ldap: sample user {dn}"));
                lines.push(format!(
                    "  username {} · display name {} · email {} · mobile {} · office {} · role {} · {}",
                    p.username,
                    p.display_name.as_str(),
                    opt(p.email.as_ref().map(|e| e.as_str())),
                    opt(p.mobile_phone.as_ref().map(|x| x.as_str())),
                    opt(p.office_phone.as_ref().map(|x| x.as_str())),
                    p.role.as_str(),
                    if p.enabled { "enabled" } else { "disabled" }
                ));
                lines.push(format!("  groups: {}", p.groups.join("; ")));
            }
            Some((dn, Err(why))) => {
                lines.push(format!("ldap: sample user {dn} cannot be imported: {why}"))
            }
        }
        Ok(lines)
    }

    async fn read_first(&self) -> Result<Option<(String, Result<Found, String>)>, DomainError> {
        let cfg = &self.ldap.config;
        let mut ldap = self.ldap.service().await?;
        let nested = self.nested_members().await?;
        let filter = format!("(&{}{})", cfg.user_filter, self.scope_filter(&nested));
        let res = ldap
            .with_search_options(ldap3::SearchOptions::new().sizelimit(1))
            .search(&cfg.base_dn, Scope::Subtree, &filter, self.attributes())
            .await
            .map_err(|e| DomainError::Directory(format!("search: {e}")))?;
        self.ldap.release(ldap);
        // 4: sizeLimitExceeded is expected with a limit of one
        if res.1.rc != 0 && res.1.rc != 4 {
            return Err(DomainError::Directory(format!(
                "search: rc {} {}",
                res.1.rc, res.1.text
            )));
        }
        Ok(res.0.into_iter().next().map(|e| {
            let e = SearchEntry::construct(e);
            let parsed = self.parse_entry(&e, &nested);
            (e.dn, parsed)
        }))
    }

    /// Members of a scope group: through nesting on AD (the matching rule), of the group or
    /// a group nested in it on OpenLDAP (`nested`), directly without `nested_groups`.
    fn scope_filter(&self, nested: &HashMap<String, HashSet<String>>) -> String {
        let cfg = &self.ldap.config;
        if cfg.groups.is_empty() {
            return String::new();
        }
        let member = |g: &str| format!("({}={})", cfg.attrs.member_of, ldap3::ldap_escape(g));
        let any: String = cfg
            .groups
            .iter()
            .map(|g| match cfg.preset {
                Preset::ActiveDirectory if cfg.nested_groups => in_chain(g),
                Preset::ActiveDirectory => member(g),
                Preset::OpenLdap => std::iter::once(g)
                    .chain(nested.get(g).into_iter().flatten())
                    .map(|d| member(d))
                    .collect(),
            })
            .collect();
        format!("(|{any})")
    }

    fn attributes(&self) -> Vec<String> {
        let cfg = &self.ldap.config;
        let a = &cfg.attrs;
        let mut attrs: Vec<String> = [
            &a.username,
            &a.display_name,
            "cn",
            &a.mail,
            &a.mobile,
            &a.phone,
            &a.member_of,
            &a.changed,
            &a.lock,
            &a.external_id,
            &a.principal,
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
        .collect();
        if cfg.preset == Preset::ActiveDirectory {
            attrs.push("userAccountControl".into());
        }
        attrs
    }

    /// Disables the users a held run would have disabled, unless they are back in the
    /// directory's scope meanwhile.
    pub async fn approve(
        &self,
        run_id: &str,
        actor: &str,
        now: i64,
    ) -> Result<SyncRun, DomainError> {
        let cfg = &self.ldap.config;
        let mut run = self
            .store
            .sync_run(run_id)
            .await?
            .filter(|r| r.source == cfg.source)
            .ok_or_else(|| {
                DomainError::Invalid(format!("no sync run {run_id} of {}", cfg.source))
            })?;
        if run.status != "held" || run.dry_run {
            return Err(DomainError::Invalid(format!(
                "run {run_id} is {}{}, not held: nothing to approve",
                run.status,
                if run.dry_run { " (dry run)" } else { "" }
            )));
        }
        let existing = self.store.users_from_source(&cfg.source, None).await?;
        let by_id: HashMap<&str, &User> = existing.values().map(|u| (u.id.as_str(), u)).collect();
        let (found, _, _) = self
            .read(
                &SyncOptions {
                    dry_run: true,
                    full: true,
                    actor: actor.into(),
                    progress: None,
                },
                None,
                None,
            )
            .await?;
        let back: HashSet<&str> = found
            .iter()
            .filter(|f| f.in_scope)
            .map(|f| f.profile.username.as_str())
            .collect();
        let mut tx = self.store.begin().await?;
        let mut disabled = 0;
        for id in &run.held_disables {
            let Some(u) = by_id
                .get(id.as_str())
                .filter(|u| u.enabled && !back.contains(u.username.as_str()))
            else {
                continue;
            };
            disable_in(
                &mut tx,
                u,
                actor,
                &format!("left the directory scope (approved run {run_id})"),
                now,
            )
            .await?;
            disabled += 1;
        }
        run.disabled = disabled;
        run.status = "approved".into();
        let mut e = AuditEntry::new(event::SYNC_APPROVED, true, now);
        e.actor = Some(actor.to_string());
        e.reason = Some(format!("run {run_id}: {disabled} users disabled"));
        append_audit_in(&mut tx, &e).await?;
        sync_run_finish_in(&mut tx, &run).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        Ok(run)
    }
}

async fn disable_in(
    tx: &mut sqlx::AnyConnection,
    u: &User,
    actor: &str,
    why: &str,
    now: i64,
) -> Result<(), DomainError> {
    disable_user_in(tx, &u.id, now).await?;
    let mut e = AuditEntry::new(event::USER_DISABLED, true, now);
    e.user_id = Some(u.id.clone());
    e.username = Some(u.username.clone());
    e.actor = Some(actor.to_string());
    e.reason = Some(why.to_string());
    append_audit_in(tx, &e).await?;
    Ok(())
}

/// AD's LDAP_MATCHING_RULE_IN_CHAIN: members of `group` through any depth of nesting.
fn in_chain(group: &str) -> String {
    format!(
        "(memberOf:1.2.840.113556.1.4.1941:={})",
        ldap3::ldap_escape(group)
    )
}

/// How long one slice of a sync's writes may hold the database, and (SQLite) the pause after
/// it: SQLite has one writer at a time, and a sign-in waiting for it polls at most every 25 ms
/// in its first 100 ms of waiting, so it gets its turn in the pause.
const SLICE: std::time::Duration = std::time::Duration::from_millis(40);
const SLICE_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// The apply phase's transactions, one slice after another.
struct Slices<'s> {
    store: &'s Store,
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    since: std::time::Instant,
}

impl<'s> Slices<'s> {
    async fn begin(store: &'s Store) -> Result<Slices<'s>, DomainError> {
        Ok(Slices {
            store,
            tx: Some(store.begin().await?),
            since: std::time::Instant::now(),
        })
    }

    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.tx
            .as_deref_mut()
            .expect("a transaction is open between slices")
    }

    /// Commits the slice and opens the next once this one has held the database long enough.
    async fn next(&mut self) -> Result<(), DomainError> {
        if self.since.elapsed() < SLICE {
            return Ok(());
        }
        self.commit_slice().await?;
        if self.store.dialect() == crate::store::Dialect::Sqlite {
            tokio::time::sleep(SLICE_PAUSE).await;
        }
        self.tx = Some(self.store.begin().await?);
        self.since = std::time::Instant::now();
        Ok(())
    }

    async fn commit_slice(&mut self) -> Result<(), DomainError> {
        crate::faults::point(crate::faults::SYNC_BEFORE_COMMIT).await;
        if let Some(tx) = self.tx.take() {
            tx.commit().await.map_err(crate::store::StoreError::from)?;
        }
        Ok(())
    }

    async fn commit(mut self) -> Result<(), DomainError> {
        self.commit_slice().await
    }
}

/// A stored position: the change mark and, on AD, the invocationId of the DC that gave it.
fn split_mark(stored: Option<&str>) -> (Option<String>, Option<String>) {
    match stored.map(|s| s.split_once('@').unwrap_or((s, ""))) {
        None => (None, None),
        Some((mark, dc)) => (
            Some(mark.to_string()),
            Some(dc.to_string()).filter(|d| !d.is_empty()),
        ),
    }
}

/// Is change mark `a` later than `b`? (`uSNChanged` is a number, `modifyTimestamp` a
/// GeneralizedTime that sorts as text.)
/// Keeps in `slot` the newer of it and `mark`.
fn keep_newest(preset: Preset, slot: &mut Option<String>, mark: &str) {
    if slot.as_deref().is_none_or(|s| newer(preset, mark, s)) {
        *slot = Some(mark.to_string());
    }
}

fn newer(preset: Preset, a: &str, b: &str) -> bool {
    match preset {
        Preset::ActiveDirectory => a.parse::<u64>().unwrap_or(0) > b.parse::<u64>().unwrap_or(0),
        Preset::OpenLdap => a > b,
    }
}

fn differs(u: &User, p: &UserProfile) -> bool {
    let s = |o: &Option<String>| o.clone();
    u.display_name != p.display_name.as_str()
        || s(&u.email) != p.email.as_ref().map(|e| e.as_str().to_string())
        || s(&u.mobile_phone) != p.mobile_phone.as_ref().map(|x| x.as_str().to_string())
        || s(&u.office_phone) != p.office_phone.as_ref().map(|x| x.as_str().to_string())
        || u.enabled != p.enabled
        || u.role != p.role
        || u.groups != p.groups
}

/// The user as stored after an upsert (for addressing mail in the same transaction).
fn user_of(id: &str, p: &UserProfile, source: &str, now: i64) -> User {
    User {
        id: id.to_string(),
        username: p.username.as_str().to_string(),
        display_name: p.display_name.as_str().to_string(),
        email: p.email.as_ref().map(|e| e.as_str().to_string()),
        mobile_phone: p.mobile_phone.as_ref().map(|x| x.as_str().to_string()),
        alternate_phone: None,
        office_phone: p.office_phone.as_ref().map(|x| x.as_str().to_string()),
        groups: p.groups.clone(),
        enabled: p.enabled,
        role: p.role,
        source: source.to_string(),
        locked_at: None,
        created_at: now,
        updated_at: now,
        confirmed_at: 0,
        snooze_count: 0,
        snooze_first_at: 0,
        blocked_until: 0,
    }
}

/// "Mobile phone: +31•••••••78 → +31•••••••12" lines for `updated_user`.
fn phone_changes(before: &User, after: &UserProfile) -> Vec<String> {
    let show = |n: Option<&str>| {
        n.map(crate::notify::mask_number)
            .unwrap_or_else(|| "none".into())
    };
    let mut out = Vec::new();
    for (label, old, new) in [
        (
            "Mobile phone",
            before.mobile_phone.as_deref(),
            after.mobile_phone.as_ref().map(|x| x.as_str()),
        ),
        (
            "Office phone",
            before.office_phone.as_deref(),
            after.office_phone.as_ref().map(|x| x.as_str()),
        ),
    ] {
        if old != new {
            out.push(format!("{label}: {} → {}", show(old), show(new)));
        }
    }
    out
}

/// The run's figures for `/metrics` (a dry run changes nothing, so counts no changes).
fn record_run(run: &SyncRun, ok: bool, seconds: f64) {
    use crate::instruments::{count, observe, SYNC_CHANGES, SYNC_RUNS, SYNC_SECONDS};
    let result = if !ok {
        "failed"
    } else if run.status == "held" {
        "held"
    } else {
        "done"
    };
    count(SYNC_RUNS, &[("kind", &run.kind), ("result", result)], 1);
    observe(SYNC_SECONDS, &[("kind", &run.kind)], seconds);
    if ok && !run.dry_run {
        for (change, n) in [
            ("created", run.created),
            ("updated", run.updated),
            ("disabled", run.disabled),
        ] {
            count(SYNC_CHANGES, &[("change", change)], n.max(0) as u64);
        }
    }
}
