// Mirrors app/src/routes.rs (paths and data-testid values).
export const paths = {
  signin: "/signin",
  securityInfo: "/security-info",
  activity: "/activity",
  setup: "/setup",
  reset: "/reset",
  helpdesk: "/helpdesk",
};
export const testid = {
  signinForm: "signin-form",
  signinError: "signin-error",
  signout: "signout",
  userName: "user-name",
  passwordToggle: "password-toggle",
  methodList: "method-list",
  activityTable: "activity-table",
  notice: "notice",
  reportConfirm: "report-confirm",
  totpKey: "totp-key",
  qr: "totp-qr",
  codeInput: "code-input",
  wizard: "wizard",
  wizardDone: "wizard-done",
  methodRow: "method-row",
  error: "error",
  verifyForm: "verify-form",
  passkeyButton: "passkey-button",
  passkeySignin: "passkey-signin",
  passwordRules: "password-rules",
  resetLink: "reset-link",
  resetChoices: "reset-choices",
  resetDone: "reset-done",
  helpdeskResults: "helpdesk-results",
  helpdeskVerify: "helpdesk-verify",
  helpdeskState: "helpdesk-verification-state",
  helpdeskActions: "helpdesk-actions",
  helpdeskTap: "helpdesk-tap",
  auditTable: "audit-table",
  approvalPrompt: "approval-prompt",
  tapForm: "tap-form",
  recoveryCodes: "recovery-codes",
  recoveryForm: "recovery-form",
};
// examples/demo-users.csv
export const demo = {
  alice: { username: "alice", password: "correct-horse-alice", name: "Alice Andersen" },
  bob: { username: "bob", password: "battery-staple-bob" },
  erin: { username: "erin", password: "correct-horse-erin" },
  dave: { username: "dave", password: "disabled-dave-pass" },
  carol: { username: "carol", email: "carol@example.org" },
  frank: { username: "frank", password: "correct-horse-frank", email: "frank@example.org" },
  gina: { username: "gina", password: "correct-horse-gina", email: "gina@example.org", mobile: "+31645678901" },
  hanna: { username: "hanna", password: "correct-horse-hanna" },
  ivo: { username: "ivo", password: "correct-horse-ivo", email: "ivo@example.org" },
};
export const lockoutThreshold = 4; // scripts/test sets CONVERGE__SIGNIN__LOCKOUT_THRESHOLD
// examples/demo-tokens.pskc (scripts/test imports it): serial numbers and hex secrets
export const demoTokens = {
  hotp1: { serial: "DEMO-HOTP-1", key: "3132333435363738393031323334353637383930" },
  totp1: { serial: "DEMO-TOTP-1", key: "636f6e76657267652d6532652d746f74702d3230" },
  hotp2: { serial: "DEMO-HOTP-2", key: "636f6e76657267652d64656d6f2d686f74702d32" },
};
