//! Policy in one typed place. Built from configuration today; the admin console edits it later.

#[derive(Debug, Clone)]
pub struct Policy {
    pub session: SessionPolicy,
    pub argon2: Argon2Policy,
    pub signin: SigninPolicy,
    pub registration: RegistrationPolicy,
    pub reset: ResetPolicy,
    pub fraud: FraudPolicy,
    pub helpdesk: HelpdeskPolicy,
    pub retention: RetentionPolicy,
}

/// How long what Converge records is kept (`[retention]`, docs/privacy.md). Every value is in
/// seconds after the row's own time (the event, the last failure, the hand-off, the expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Audit events are deleted this long after they happened.
    pub audit_seconds: i64,
    /// The client address and browser of an audit event are replaced by pseudonyms (a keyed
    /// hash: the same address still reads the same) this long after it happened.
    pub audit_pseudonymise_seconds: i64,
    /// Throttle rows (mistyped names and addresses included) with no failure for this long;
    /// never shorter than the longest throttle window.
    pub throttle_seconds: i64,
    /// Messages handed to the mail server or gateway (calls wait an hour more for the answer).
    pub sent_seconds: i64,
    /// Dead letters.
    pub dead_seconds: i64,
    /// "This wasn't me" links, after they expire.
    pub report_token_seconds: i64,
    pub sync_run_seconds: i64,
    /// What the dev transports kept (`dev_mode`).
    pub dev_message_seconds: i64,
    /// How often one instance runs the sweep.
    pub sweep_every_seconds: i64,
}

/// What the helpdesk console allows.
#[derive(Debug, Clone)]
pub struct HelpdeskPolicy {
    /// A caller verification stays valid this long for follow-up actions on that user.
    pub verification_seconds: i64,
    /// A pending verification (code sent, approval asked) waits this long.
    pub pending_seconds: i64,
    /// Temporary Access Pass lifetime: the default and the most an agent may choose.
    pub tap_seconds: i64,
    pub tap_max_seconds: i64,
    /// Uses of one pass (1: single use).
    pub tap_uses: u32,
    /// Members of these groups (besides administrators and helpdesk staff) are protected:
    /// helpdesk staff cannot act on them, and their MFA reset needs two administrators.
    pub protected_groups: Vec<String>,
    /// A request for a second administrator's approval waits this long.
    pub approval_seconds: i64,
}

/// What a fraud report does.
#[derive(Debug, Clone)]
pub struct FraudPolicy {
    /// How long the account's second factors stay blocked (0: not blocked, only reported).
    pub block_seconds: i64,
}

/// Self-service password reset and unlock.
#[derive(Debug, Clone)]
pub struct ResetPolicy {
    pub enabled: bool,
    /// Security questions may be the second of two gates (never the only one).
    pub questions_as_second_gate: bool,
    /// How many of the user's questions one flow asks (chosen at random).
    pub questions_asked: u32,
    /// A reset flow lives this long (the cookie and the database row).
    pub flow_seconds: i64,
    /// Wrong answers one flow tolerates before it ends.
    pub max_failures_per_flow: u32,
    /// Minimum new-password length for accounts without a second factor (NIST SP 800-63B-4: 15).
    pub min_length_single_factor: usize,
    /// Minimum new-password length for accounts with a second factor (NIST: 8).
    pub min_length_with_mfa: usize,
    /// Reset requests per client address within the window, and per account name per hour.
    pub requests_per_client: u32,
    pub client_window_seconds: i64,
    pub requests_per_account_per_hour: u32,
    /// Leading zero bits of the proof of work the reset page solves (0: off).
    pub proof_of_work_bits: u32,
    /// More refused passwords, one per line.
    pub extra_blocklist_file: Option<std::path::PathBuf>,
    /// A recorded directory write older than this was left by a stopped instance (longer than
    /// any write can take under the directory's timeouts): the recovery pass settles it.
    pub writeback_settled_seconds: i64,
}

#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub idle_timeout_seconds: i64,
    pub absolute_timeout_seconds: i64,
}

#[derive(Debug, Clone)]
pub struct Argon2Policy {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Sign-in verifications running or waiting at once; more are refused (SYS-503).
    pub max_queue: u32,
}

/// One leaky bucket of guessable attempts (docs/throttling.md). Every attempt is counted before
/// any work is done; `free` attempts pass at once, then each needs `delay(n)` seconds after the
/// previous one (doubling from `base_delay_seconds` to `max_delay_seconds`; with a base of 0 the
/// bucket simply refuses while full). One counted attempt is forgotten every `leak_seconds`;
/// refused attempts change nothing. At most `max_in_flight` attempts are evaluated at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub free: u32,
    pub base_delay_seconds: i64,
    pub max_delay_seconds: i64,
    pub leak_seconds: i64,
    pub max_in_flight: u32,
}

impl Bucket {
    /// A plain rate: `n` per `seconds`, refused while full (no delays, no in-flight limit
    /// beyond `n`).
    pub fn rate(n: u32, seconds: i64) -> Bucket {
        let n = n.max(1);
        Bucket {
            free: n,
            base_delay_seconds: 0,
            max_delay_seconds: 0,
            leak_seconds: (seconds / i64::from(n)).max(1),
            max_in_flight: n,
        }
    }

    /// Seconds the attempt after `failures` remembered failures must wait after the previous
    /// attempt: none while `failures < free`, then doubling up to the maximum (or for ever when
    /// the bucket has no delays).
    pub fn delay_after(&self, failures: u32) -> Option<i64> {
        if failures < self.free.max(1) {
            return Some(0);
        }
        if self.base_delay_seconds <= 0 {
            return None;
        }
        let steps = (failures - self.free.max(1)).min(30);
        Some(
            self.base_delay_seconds
                .saturating_mul(1i64 << steps)
                .min(self.max_delay_seconds),
        )
    }
}

/// Throttling of guessable sign-in input, per account and per client address.
#[derive(Debug, Clone)]
pub struct SigninPolicy {
    pub free_attempts: u32,
    pub base_delay_seconds: i64,
    pub max_delay_seconds: i64,
    /// Consecutive failures from strangers (clients without the account's device cookie) that
    /// lock the account for strangers.
    pub lockout_threshold: u32,
    pub client_free_attempts: u32,
    pub client_window_seconds: i64,
    /// One remembered failure of an account is forgotten every this many seconds.
    pub forget_after_seconds: i64,
    /// Attempts evaluated at once per account (the rest are refused at once).
    pub max_in_flight: u32,
    /// Attempts evaluated at once per client address.
    pub client_max_in_flight: u32,
}

impl SigninPolicy {
    /// Failures per account name from strangers, and per known device (each device its own).
    pub fn account_bucket(&self) -> Bucket {
        Bucket {
            free: self.free_attempts.max(1),
            base_delay_seconds: self.base_delay_seconds,
            max_delay_seconds: self.max_delay_seconds,
            leak_seconds: self.forget_after_seconds.max(1),
            max_in_flight: self.max_in_flight.max(1),
        }
    }

    /// Failures per client address: `client_free_attempts` within the window, then delays.
    pub fn client_bucket(&self) -> Bucket {
        let free = self.client_free_attempts.max(1);
        Bucket {
            free,
            base_delay_seconds: self.base_delay_seconds,
            max_delay_seconds: self.max_delay_seconds,
            leak_seconds: (self.client_window_seconds / i64::from(free)).max(1),
            max_in_flight: self.client_max_in_flight.max(1),
        }
    }

    /// "Someone is guessing at your account" mails: at most one a day per account and kind.
    pub fn warning_bucket(&self) -> Bucket {
        Bucket::rate(1, 86_400)
    }
}

/// Longest password accepted anywhere; longer input is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// The kinds of security info a user can register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    Totp,
    Passkey,
    Phone,
    Email,
    Questions,
    Pin,
    /// A hardware OATH token (TOTP or HOTP) from the imported inventory.
    Token,
    /// A set of single-use recovery codes (NIST SP 800-63B-4 "recovery codes").
    Recovery,
}

impl MethodKind {
    pub const ALL: [MethodKind; 8] = [
        MethodKind::Totp,
        MethodKind::Passkey,
        MethodKind::Phone,
        MethodKind::Email,
        MethodKind::Questions,
        MethodKind::Pin,
        MethodKind::Token,
        MethodKind::Recovery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Totp => "totp",
            MethodKind::Passkey => "passkey",
            MethodKind::Phone => "phone",
            MethodKind::Email => "email",
            MethodKind::Questions => "questions",
            MethodKind::Pin => "pin",
            MethodKind::Token => "token",
            MethodKind::Recovery => "recovery",
        }
    }

    pub fn parse(s: &str) -> Option<MethodKind> {
        MethodKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Can this method be the second factor at portal sign-in? (Email never is; questions and
    /// PIN only serve helpdesk verification and PIN mode.)
    pub fn signs_in(self) -> bool {
        matches!(
            self,
            MethodKind::Totp
                | MethodKind::Passkey
                | MethodKind::Phone
                | MethodKind::Token
                | MethodKind::Recovery
        )
    }

    /// Can it be the default sign-in method? (Recovery codes are the fallback, never the
    /// method offered first.)
    pub fn can_be_default(self) -> bool {
        self.signs_in() && self != MethodKind::Recovery
    }

    /// A code computed by something the user holds (an app or a hardware token): what a
    /// gateway or an application can ask for, and what the helpdesk checks as "a code".
    pub fn is_otp(self) -> bool {
        matches!(self, MethodKind::Totp | MethodKind::Token)
    }

    /// Does this method count toward the number required for password reset? Questions count
    /// only next to another method; a PIN never does.
    pub fn counts_for_reset(self) -> bool {
        !matches!(self, MethodKind::Pin)
    }
}

/// TOTP parameters (RFC 6238).
#[derive(Debug, Clone)]
pub struct TotpPolicy {
    pub algorithm: TotpAlgorithm,
    pub digits: u32,
    pub period_seconds: u64,
    /// Issuer shown in the authenticator app.
    pub issuer: String,
    pub max_devices: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl TotpAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            TotpAlgorithm::Sha1 => "SHA1",
            TotpAlgorithm::Sha256 => "SHA256",
            TotpAlgorithm::Sha512 => "SHA512",
        }
    }
}

/// What users must register, and the rules for registering it.
#[derive(Debug, Clone)]
pub struct RegistrationPolicy {
    pub allowed: Vec<MethodKind>,
    /// Kinds every user must have (e.g. `[totp]`).
    pub mandatory: Vec<MethodKind>,
    /// Methods (of different kinds) needed for password reset: 1 or 2.
    pub required: u32,
    /// Users in admin roles always need this many (2).
    pub admin_required: u32,
    pub snooze_max: u32,
    pub snooze_window_seconds: i64,
    /// Every this many seconds users are asked to review their info (0: never).
    pub reconfirm_seconds: i64,
    /// Changes to security info need a second factor proven within this many seconds.
    pub fresh_mfa_seconds: i64,
    pub totp: TotpPolicy,
    pub max_passkeys: u32,
    /// Administrator-defined questions (English; more locales later).
    pub questions: Vec<String>,
    pub questions_required: u32,
    pub allow_custom_questions: bool,
    pub pin_min_length: u32,
    pub pin_max_length: u32,
    pub pin_max_failures: u32,
    /// Phone verification at sign-in also asks for the PIN.
    pub pin_mode: bool,
    /// May users change or remove phone numbers that came from the directory?
    pub users_edit_directory_phones: bool,
    pub code_ttl_seconds: i64,
    pub code_max_failures: u32,
    /// Pending setups (an app not yet confirmed, a passkey ceremony) expire after this.
    pub pending_ttl_seconds: i64,
    /// HOTP tokens: how many counters ahead of the last accepted one a code is looked for.
    pub hotp_look_ahead: u64,
    /// HOTP resynchronisation from two consecutive codes looks this far ahead.
    pub hotp_resync_window: u64,
    /// Do recovery codes count towards `required` (and the reset-capable figure)?
    pub recovery_codes_count: bool,
    /// Codes in one set of recovery codes.
    pub recovery_codes: u32,
}

impl RegistrationPolicy {
    pub fn required_for(&self, is_admin: bool) -> u32 {
        if is_admin {
            self.required.max(self.admin_required)
        } else {
            self.required
        }
    }

    /// How many methods of `kind` one user may have (questions and PIN are replaced, not added).
    pub fn max_of(&self, kind: MethodKind) -> u32 {
        match kind {
            MethodKind::Totp => self.totp.max_devices,
            MethodKind::Passkey => self.max_passkeys,
            MethodKind::Phone => 3,
            MethodKind::Email => 2,
            MethodKind::Token => 5,
            MethodKind::Questions | MethodKind::Pin | MethodKind::Recovery => u32::MAX,
        }
    }

    /// Does a registered method of `kind` count towards `required`? Recovery codes only when
    /// the policy says so; a PIN never.
    pub fn counts(&self, kind: MethodKind) -> bool {
        kind.counts_for_reset() && (kind != MethodKind::Recovery || self.recovery_codes_count)
    }

    pub fn allows(&self, kind: MethodKind) -> bool {
        self.allowed.contains(&kind)
    }
}

/// How a gateway (a RADIUS client) asks for the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    /// The password, then an Access-Challenge for the code (or a method choice).
    Challenge,
    /// The password immediately followed by the 6-digit app code, in one request.
    Concat,
}

impl GatewayMode {
    pub fn parse(s: &str) -> Option<GatewayMode> {
        match s {
            "challenge" => Some(GatewayMode::Challenge),
            "concat" => Some(GatewayMode::Concat),
            _ => None,
        }
    }
}

/// What one gateway may do (`[[radius.clients]]`, without its address and secret).
#[derive(Debug, Clone)]
pub struct GatewayClientPolicy {
    pub name: String,
    pub mode: GatewayMode,
    /// Who may sign in through it (empty: every user).
    pub groups: Vec<String>,
    /// Users without any method pass on their password alone (audited per use). Off by default.
    pub allow_unregistered: bool,
}

impl GatewayClientPolicy {
    pub fn admits(&self, groups: &[String]) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| in_group(groups, g))
    }
}

/// Is a user with `groups` (directory DNs, or plain names for local users) in `wanted`? A
/// configured name matches the whole DN or its first value (`vpn-users` matches
/// `cn=vpn-users,ou=groups,dc=example,dc=org`), ignoring case.
pub fn in_group(groups: &[String], wanted: &str) -> bool {
    let wanted = wanted.trim();
    groups.iter().any(|g| {
        g.eq_ignore_ascii_case(wanted)
            || g.split(',')
                .next()
                .and_then(|rdn| rdn.split_once('='))
                .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case(wanted))
    })
}

/// Timing of gateway sign-ins (`[radius]`).
#[derive(Debug, Clone)]
pub struct GatewayPolicy {
    /// A challenge's State is good this long.
    pub challenge_seconds: i64,
    /// An on/off method (a call) is waited for this long before the request is answered.
    pub hold_seconds: i64,
}

/// The REST API (`[api]`): MFA challenges of applications and token guessing.
#[derive(Debug, Clone)]
pub struct ApiPolicy {
    /// A challenge can be answered this long.
    pub challenge_seconds: i64,
    /// The most a status request waits for a phone call's answer (long poll).
    pub max_wait_seconds: i64,
    /// Wrong tokens from one client address (refused while full, before any lookup).
    pub token_failures: Bucket,
}
