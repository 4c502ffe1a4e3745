// Mirrors app/src/routes.rs (paths and data-testid values).
export const paths = {
  signin: "/signin",
  securityInfo: "/security-info",
  activity: "/activity",
  setup: "/setup",
  reset: "/reset",
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
};
// examples/demo-users.csv
export const demo = {
  alice: { username: "alice", password: "correct-horse-alice", name: "Alice Andersen" },
  bob: { username: "bob", password: "battery-staple-bob" },
  erin: { username: "erin", password: "correct-horse-erin" },
  dave: { username: "dave", password: "disabled-dave-pass" },
  carol: { username: "carol", email: "carol@example.org" },
  frank: { username: "frank", password: "correct-horse-frank", email: "frank@example.org" },
};
export const lockoutThreshold = 4; // scripts/test sets CONVERGE__SIGNIN__LOCKOUT_THRESHOLD
