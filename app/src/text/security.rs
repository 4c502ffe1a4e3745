//! Strings of security info: the wizard, the Security info page, adding methods, the second
//! sign-in step. `strings!` declares the struct and its English value together; another language
//! is another value of [`SecurityTexts`], and the compiler insists every field is translated.

strings!(SecurityTexts, EN {
    kind_totp: "Authenticator app",
    kind_passkey: "Passkey or security key",
    kind_phone: "Phone",
    kind_email: "Email",
    kind_questions: "Security questions",
    kind_pin: "PIN",
    kind_token: "Hardware token",
    kind_recovery: "Recovery codes",
    kind_totp_about: "A code from an app such as Microsoft Authenticator, Google Authenticator or FreeOTP. Works without signal.",
    kind_passkey_about: "Sign in with your fingerprint, face, screen lock or a security key. The strongest choice.",
    kind_phone_about: "A code by text message or phone call.",
    kind_email_about: "A code by email, used to reset your password and for notifications. Not for signing in.",
    kind_questions_about: "Answers only you know, used by the helpdesk to verify you and as a second reset step.",
    kind_pin_about: "A number only you know, used by the helpdesk to verify you.",
    kind_token_about: "A small device from your organisation that shows a code when you press its button (an OATH token). Works without a phone.",
    kind_recovery_about: "Ten single-use codes to keep on paper or in a password manager, for when you have none of your other methods with you.",
    slot_mobile: "Mobile phone",
    slot_alternate: "Alternate mobile phone",
    slot_office: "Office phone",
    sms_code: "{org}: your code is {code}. It works once, for {minutes} minutes. Never share it.",
    sms_helpdesk_code: "{org} helpdesk: your verification code is {code}. Read it only to the helpdesk agent you are on a call with. It works for {minutes} minutes.",
    sms_phone_removed: "{org}: this number was removed from your account's security info. If that wasn't you, contact your helpdesk now.",
    voice_code: "This is {org}. Your code is: {digits}. Again: {digits}. Press 1 to approve, 2 if you did not ask for it, 3 to report fraud.",
    voice_approved_button: "I approved the call",
    restricted_note: "Text messages and calls are a restricted method (NIST SP 800-63B): they can be intercepted. An authenticator app or a passkey is safer.",

    // Security info page
    col_method: "Method",
    col_details: "Details",
    col_added: "Added",
    col_last_used: "Last used",
    never_used: "Not yet",
    default_badge: "Default sign-in method",
    from_directory: "From your organisation's directory",
    set_default: "Make default",
    rename: "Rename",
    rename_label: "New name",
    save: "Save",
    remove: "Remove",
    remove_confirm: "Remove this method? You will get an email about it.",
    add_method_heading: "Add a method",
    add_totp: "Add an authenticator app",
    add_passkey: "Add a passkey or security key",
    add_phone: "Add a phone",
    add_email: "Add an email address",
    add_questions: "Add security questions",
    add_pin: "Add a PIN",
    add_token: "Add a hardware token",
    add_recovery: "Create recovery codes",
    change_recovery: "Create new recovery codes",
    change_questions: "Change security questions",
    change_pin: "Change PIN",
    added_notice: "Your security info was updated. We sent you an email about the change.",
    removed_notice: "The method was removed. We sent you an email about the change.",
    saved_notice: "Saved.",
    confirmed_notice: "Thank you for confirming your security info.",
    others_signed_out_notice: "You were signed out everywhere else.",
    sign_out_others: "Sign out everywhere else",
    sign_out_others_about: "Ends every other session of your account, for example on a lost or shared device.",
    review_heading: "Is your security info still correct?",
    review_body: "Please check the methods below. If they are all still yours and up to date, confirm.",
    review_confirm: "Yes, it's correct",
    status_heading: "Password reset readiness",
    status_complete: "You have registered enough methods to reset your password yourself.",
    status_incomplete: "Register more methods so you can reset your password yourself.",
    directory_phones_heading: "Phone numbers from your organisation",
    use_number: "Verify and use this number",
    max_reached: "You have the maximum number of these.",
    not_allowed: "Not offered by your organisation.",

    // wizard
    wizard_title: "Keep your account secure",
    wizard_intro: "Your organisation asks you to set up methods to prove it's you. You can use them to sign in and to reset your password if you forget it.",
    wizard_step: "Step",
    wizard_of: "of",
    wizard_required_label: "Required by your organisation",
    wizard_done_title: "You're all set",
    wizard_done_body: "You have set up these methods. You can change them at any time on the Security info page.",
    wizard_finish: "Done",
    wizard_snooze: "Not now",
    wizard_snoozes_left: "times left to postpone",
    wizard_choose: "Choose a method to add",
    wizard_continue: "Continue",

    // add: authenticator app
    totp_title: "Set up an authenticator app",
    totp_name_label: "Name this device",
    totp_name_hint: "For example: Work phone. You can add one app per device.",
    totp_name_default: "Authenticator app",
    totp_next: "Next",
    totp_scan: "Scan this QR code with your authenticator app.",
    totp_manual: "Can't scan it? Enter this key in the app instead:",
    totp_account: "Account",
    totp_code_label: "Enter the 6-digit code the app shows",
    verify: "Verify",
    qr_alt: "QR code for your authenticator app",

    // add: phone
    phone_title: "Add a phone",
    phone_type_label: "Which phone",
    phone_number_label: "Phone number",
    phone_number_hint: "Include the country code, for example +31 6 1234 5678.",
    phone_ext_label: "Extension (office phone, optional)",
    phone_how_label: "How should we send the code?",
    phone_by_text: "Text me a code",
    phone_by_call: "Call me with a code",
    send_code: "Send code",
    code_sent_to: "We sent a code to",
    code_by_call: "We are calling",
    code_label: "Enter the 6-digit code",
    code_resend: "Send a new code",
    code_expires: "The code works once, for 10 minutes.",

    // add: email
    email_title: "Add an email address",
    email_address_label: "Email address",

    // add: questions
    questions_title: "Set up security questions",
    questions_intro: "Choose different questions and answer each one. Answers are not case-sensitive. We store them scrambled and never show them again.",
    question_label: "Question",
    answer_label: "Answer",
    choose_question: "Choose a question",
    custom_question_label: "Or write your own question (optional)",

    // add: PIN
    pin_title: "Set a PIN",
    pin_intro: "Digits only. Avoid repeated or consecutive digits and numbers from your phone.",
    pin_label: "PIN",
    pin_confirm_label: "PIN again",

    // add: passkey
    passkey_title: "Add a passkey or security key",
    passkey_name_label: "Name it",
    passkey_name_default: "Passkey",
    passkey_create: "Create passkey",
    passkey_needs_js: "Passkeys need JavaScript in your browser. Turn it on, or choose another method.",
    passkey_unsupported: "This browser cannot use passkeys. Try another browser or choose another method.",
    passkey_cancelled: "The passkey request was cancelled or timed out. Try again when you're ready.",
    passkey_working: "Follow your browser's prompt…",
    passkey_use: "Use my passkey",
    passkey_signin: "Sign in with a passkey",
    or: "or",

    // second step of sign-in / re-authentication
    verify_title: "Verify it's you",
    verify_intro: "Use one of your security methods.",
    reauth_intro: "Before you change your security info, confirm it's you.",
    verify_totp: "Enter the code from your authenticator app",
    verify_other: "Use another method",
    verify_send_text: "Text me a code",
    verify_send_call: "Call me",
    verify_send_email: "Email me a code",
    verify_pin_label: "Your PIN",
    cancel_signin: "Cancel and sign out",

    // activity labels of this area's audit events
    event_method_added: "Security info added",
    event_method_removed: "Security info removed",
    event_method_renamed: "Method renamed",
    event_method_default: "Default method changed",
    event_method_verification: "Wrong code or key",
    event_code_sent: "Code sent",
    event_second_factor: "Second sign-in step",
    event_registration_confirmed: "Security info confirmed",
    event_registration_snoozed: "Security info postponed",
    event_sessions_revoked: "Signed out everywhere else",
    recovery_left: "{left} of {total} left",
    token_title: "Add a hardware token",
    token_intro: "Your organisation gave you a small device that shows a code. Type the serial number printed on its back, then press its button and type the code it shows.",
    token_serial_label: "Serial number",
    token_serial_hint: "Printed on the back of the token, for example 1234 5678.",
    token_code_label: "Code shown on the token",
    token_name_label: "Name (optional)",
    token_activate: "Add this token",
    resync_summary: "Resynchronise",
    resync_intro: "If this token's codes stopped working after many presses, press its button twice and type both codes, in order.",
    resync_first: "First code",
    resync_second: "Next code",
    resynced_notice: "The token was resynchronised. Its codes work again.",
    recovery_title: "Recovery codes",
    recovery_intro: "Recovery codes let you sign in or reset your password when you have none of your other methods with you. Each code works once. Keep them somewhere safe: on paper, or in a password manager.",
    recovery_replace_warning: "Creating a new set makes your current recovery codes stop working.",
    recovery_create: "Create recovery codes",
    recovery_shown_once: "Save these codes now. They are shown only this once.",
    recovery_download: "Download as a text file",
    recovery_print: "Print",
    recovery_done: "I have saved my codes",
    recovery_gone: "These codes were shown already. If you did not save them, create a new set.",
    recovery_file_heading: "Recovery codes",
    recovery_file_note: "Each code works once. Keep this file private.",
    use_recovery: "Use a recovery code",
    verify_token: "Code shown on your hardware token",
    recovery_code_label: "Recovery code",
    recovery_code_hint: "16 letters and digits, for example k7f3-9q2m-x8hd-2npw. Dashes and spaces don't matter.",
    recovery_used_notice: "You signed in with a recovery code. Recovery codes left:",
    cancel: "Cancel",
    back_to_security_info: "Back to Security info",
});

impl SecurityTexts {
    pub fn kind_label(&self, kind: &str) -> &'static str {
        match kind {
            "totp" => self.kind_totp,
            "passkey" => self.kind_passkey,
            "phone" => self.kind_phone,
            "email" => self.kind_email,
            "questions" => self.kind_questions,
            "pin" => self.kind_pin,
            "token" => self.kind_token,
            "recovery" => self.kind_recovery,
            _ => "",
        }
    }

    pub fn kind_about(&self, kind: &str) -> &'static str {
        match kind {
            "totp" => self.kind_totp_about,
            "passkey" => self.kind_passkey_about,
            "phone" => self.kind_phone_about,
            "email" => self.kind_email_about,
            "questions" => self.kind_questions_about,
            "pin" => self.kind_pin_about,
            "token" => self.kind_token_about,
            "recovery" => self.kind_recovery_about,
            _ => "",
        }
    }

    pub fn for_event(&self, event: &str) -> Option<&'static str> {
        Some(match event {
            "method_added" => self.event_method_added,
            "method_removed" => self.event_method_removed,
            "method_renamed" => self.event_method_renamed,
            "method_default" => self.event_method_default,
            "method_verification" => self.event_method_verification,
            "code_sent" => self.event_code_sent,
            "second_factor" => self.event_second_factor,
            "registration_confirmed" => self.event_registration_confirmed,
            "registration_snoozed" => self.event_registration_snoozed,
            "sessions_revoked" => self.event_sessions_revoked,
            _ => return None,
        })
    }

    pub fn slot_label(&self, slot: &str) -> &'static str {
        match slot {
            "alternate" => self.slot_alternate,
            "office" => self.slot_office,
            _ => self.slot_mobile,
        }
    }

    /// "Add an authenticator app", "Change PIN": the links of the add list.
    pub fn add_label(&self, kind: &str, registered: bool) -> &'static str {
        match (kind, registered) {
            ("questions", true) => self.change_questions,
            ("pin", true) => self.change_pin,
            ("recovery", true) => self.change_recovery,
            ("token", _) => self.add_token,
            ("recovery", _) => self.add_recovery,
            ("totp", _) => self.add_totp,
            ("passkey", _) => self.add_passkey,
            ("phone", _) => self.add_phone,
            ("email", _) => self.add_email,
            ("questions", _) => self.add_questions,
            ("pin", _) => self.add_pin,
            _ => "",
        }
    }

    /// "9 of 10 left": a set of recovery codes.
    pub fn recovery_left_text(&self, left: i64, total: u32) -> String {
        self.recovery_left
            .replace("{left}", &left.to_string())
            .replace("{total}", &total.to_string())
    }

    /// "Step 2 of 3" in the wizard.
    pub fn step_of(&self, k: u32, n: u32) -> String {
        format!("{} {k} {} {n}", self.wizard_step, self.wizard_of)
    }

    /// The text message carrying a code (`helpdesk`: one the caller reads to an agent).
    pub fn sms_code_text(&self, org: &str, code: &str, minutes: u32) -> String {
        self.fill_code(self.sms_code, org, code, minutes)
    }

    pub fn sms_helpdesk_code_text(&self, org: &str, code: &str, minutes: u32) -> String {
        self.fill_code(self.sms_helpdesk_code, org, code, minutes)
    }

    fn fill_code(&self, text: &str, org: &str, code: &str, minutes: u32) -> String {
        text.replace("{org}", org)
            .replace("{code}", code)
            .replace("{minutes}", &minutes.to_string())
    }

    /// What a voice call says (digits separated so they are read one by one).
    pub fn voice_code_text(&self, org: &str, spoken_digits: &str) -> String {
        self.voice_code
            .replace("{org}", org)
            .replace("{digits}", spoken_digits)
    }
}
