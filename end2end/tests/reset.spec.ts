import { test, expect, request } from "@playwright/test";
import { readFileSync } from "node:fs";
import { collectProblems, freshCode, mailTo, registerApp, signIn } from "./helpers";
import { demo, paths, testid } from "./ids";

const NEW_PASSWORD = "plum kettle orbit lantern";

test("forgot password: email code from the SMTP server, then the app, then a new password", async ({ page }) => {
  test.setTimeout(150_000);
  const problems = collectProblems(page);
  const frank = demo.frank;
  const home = "frank.home@example.net";

  // frank (an administrator: two proofs) registers an authenticator app and a home address
  await signIn(page, frank.username, frank.password);
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.getByTestId(testid.wizard)).toContainText("Step 1 of 2");
  const [key, enrolledAt] = await registerApp(page, "Phone");
  let used = enrolledAt;
  await expect(page).toHaveURL(/\/setup\?notice=added$/);
  await page.getByRole("link", { name: /Email/ }).first().click();
  await page.getByLabel("Email address").fill(home);
  await page.getByRole("button", { name: "Send code" }).click();
  const enrolMail = await mailTo(home, /\b\d{6}\b/);
  await page.getByTestId(testid.codeInput).fill(enrolMail.match(/\b\d{6}\b/)?.[0] ?? "");
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId(testid.wizardDone)).toBeVisible();
  await page.getByRole("button", { name: "Done" }).click();
  await page.getByTestId(testid.signout).click();

  // "Can't access your account?"
  await page.goto(paths.signin);
  await page.getByTestId(testid.resetLink).click();
  await expect(page).toHaveURL(/\/reset$/);
  await page.getByLabel("Username or email address").fill(frank.username);
  await page.getByRole("button", { name: "Next" }).click();
  await expect(page).toHaveURL(/\/reset\/verify$/);
  await expect(page.getByText("Verification step 1 of 2")).toBeVisible();
  const choices = page.getByTestId(testid.resetChoices);
  await expect(choices).toContainText("f•••@example.net");
  await expect(choices).not.toContainText(home);

  // gate 1: the email code, read from the real SMTP server's mailbox
  await choices.getByRole("link", { name: /Email my address/ }).click();
  await page.getByRole("button", { name: "Email me a code" }).click();
  await expect(page.getByTestId(testid.notice)).toContainText("f•••@example.net");
  const resetMail = await mailTo(home, /reset the password of frank/);
  expect(resetMail).toContain("http://localhost:3107/reset/link/");
  const code = resetMail.match(/code: (\d{6})/)?.[1] ?? "";
  await page.getByTestId(testid.codeInput).fill(code === "000000" ? "111111" : "000000");
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("MFA-001");
  // the mail's link instead of the code: a mail scanner opens it first (a GET from elsewhere,
  // without the flow's cookie), which spends nothing; then the user presses "Continue"
  const link = resetMail.match(/http:\/\/localhost:3107\/reset\/link\/([0-9a-f]{64})/);
  expect(link, "a reset link in the mail").toBeTruthy();
  const linkToken = link?.[1] ?? "";
  const scanner = await request.newContext();
  const scanned = await scanner.get(link?.[0] ?? "", { maxRedirects: 0 });
  expect(scanned.status()).toBe(200);
  expect(await scanned.text()).toContain("Continue");
  await scanner.dispose();
  await page.goto(link?.[0] ?? "");
  await page.getByRole("button", { name: "Continue" }).click();
  await expect(page).toHaveURL(/\/reset\/verify\?notice=passed$/);

  // gate 2: a different method, the authenticator app
  await expect(page.getByText("Verification step 2 of 2")).toBeVisible();
  await expect(choices).not.toContainText("Email my address");
  await choices.getByRole("link", { name: /authenticator app/ }).click();
  let app: string;
  [app, used] = await freshCode(key, used);
  await page.getByTestId(testid.codeInput).fill(app);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/reset\/finish$/);

  // the new password: live feedback, then a specific refusal, then success
  const rules = page.getByTestId(testid.passwordRules);
  // the feedback is live once the island has hydrated (its show/hide button appears)
  await expect(page.getByTestId(testid.passwordToggle)).toBeVisible();
  await page.getByLabel("New password", { exact: true }).fill("frank123");
  await expect(rules.locator("li.ok")).toHaveCount(1); // 8 characters, but not the rest
  await page.getByLabel("Confirm new password").fill("frank123");
  await expect(rules.locator("li").filter({ hasText: "username" })).not.toHaveClass(/ok/);
  await page.getByLabel("New password", { exact: true }).fill("baseball2024");
  await page.getByLabel("Confirm new password").fill("baseball2024");
  await page.getByRole("button", { name: "Reset password" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("PWD-004");
  await expect(page.getByTestId(testid.passwordToggle)).toBeVisible();
  await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Confirm new password").fill(NEW_PASSWORD);
  await expect(rules.locator("li.ok")).toHaveCount(3);
  await page.getByRole("button", { name: "Reset password" }).click();
  await expect(page.getByTestId(testid.resetDone)).toContainText("Sign in with your new password");
  const changed = await mailTo(frank.email, /password of frank was changed/);
  // its "This wasn't me" link: opening it shows a button and records nothing
  const report = changed.match(/http:\/\/localhost:3107\/report\/([A-Za-z0-9_-]{20,})/);
  expect(report, "a report link in the mail").toBeTruthy();
  await page.goto(report?.[0] ?? "");
  await expect(page.getByTestId(testid.reportConfirm)).toBeVisible();

  // no token reached the server's log: it holds routes, never raw paths
  const logFile = process.env.CONVERGE_SERVER_LOG;
  expect(logFile, "CONVERGE_SERVER_LOG (set by scripts/test)").toBeTruthy();
  const log = readFileSync(logFile as string, "utf8");
  expect(log).toContain("/reset/link/{token}");
  expect(log).toContain("/report/{token}");
  expect(log).not.toContain(linkToken);
  expect(log).not.toContain(report?.[1] ?? "never");
  expect(log).not.toContain(NEW_PASSWORD);
  expect(log).not.toContain(frank.password);
  // log.format = "json": one object per line, each request's lines carry its id and route
  const lines = log.split("\n").filter((l) => l.trim() !== "");
  const records = lines.map((l) => JSON.parse(l));
  const requests = records.filter((r) => r.span?.name === "request" || r.span?.request_id);
  expect(requests.length, "request lines in the log").toBeGreaterThan(0);
  expect(requests.every((r) => typeof r.span.request_id === "string" && r.span.route)).toBe(true);

  // the old password no longer works; the new one does, and still asks for the second factor
  await signIn(page, frank.username, frank.password);
  await expect(page).toHaveURL(/error=SIG-001/);
  await signIn(page, frank.username, NEW_PASSWORD);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  [app, used] = await freshCode(key, used);
  await page.getByTestId(testid.codeInput).fill(app);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info$/);
  await expect(page.getByTestId(testid.methodList)).toContainText("Phone");
  expect(problems, problems.join("\n")).toEqual([]);
});

test("an unknown name gets the same pages, and its codes never work", async ({ browser }) => {
  // without JavaScript, too: every reset step is a plain form
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(paths.reset);
  await page.getByLabel("Username or email address").fill("nobody-by-this-name");
  await page.getByRole("button", { name: "Next" }).click();
  await expect(page).toHaveURL(/\/reset\/verify$/);
  await expect(page.getByText("Verification step 1 of 1")).toBeVisible();
  await page.getByRole("button", { name: "Email me a code" }).click();
  await expect(page.getByTestId(testid.notice)).toContainText("We sent a code to");
  await page.getByTestId(testid.codeInput).fill("123456");
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("MFA-001");
  await page.getByRole("button", { name: "Cancel" }).click();
  await expect(page).toHaveURL(/\/signin$/);
  await context.close();
});
