import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { collectProblems, freshCode, mailTo, registerApp, signIn } from "./helpers";
import { paths, testid } from "./ids";

// scripts/test starts a real OpenLDAP slapd (end2end/ldap/), seeds lena and nora, and runs
// `converge sync` before the server starts; CONVERGE_LDAP_URL points at it.
const DIRECTORY_PASSWORD = "quiet harbour lantern nine";
const NEW_PASSWORD = "plum kettle orbit lantern";

/** Whether the directory accepts `password` for `uid` (`ldapwhoami`, a simple bind). */
function directoryAccepts(uid: string, password: string): boolean {
  const url = process.env.CONVERGE_LDAP_URL;
  expect(url, "CONVERGE_LDAP_URL (set by scripts/test)").toBeTruthy();
  try {
    execFileSync("ldapwhoami", ["-x", "-H", url as string, "-D", `uid=${uid},ou=people,dc=example,dc=org`, "-w", password], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("a directory user signs in with the directory password and resets it back into the directory", async ({ page }) => {
  test.setTimeout(120_000);
  const problems = collectProblems(page);

  // the sync invited lena (a member of the scope group) by mail; nora is not in scope
  await mailTo("lena@example.org", /register your security info/i);
  await signIn(page, "nora", "nora in the directory only");
  await expect(page).toHaveURL(/error=SIG-001/);

  // sign-in by bind; the wizard; an authenticator app
  await signIn(page, "lena", DIRECTORY_PASSWORD);
  await expect(page).toHaveURL(/\/setup$/);
  const [key, enrolledAt] = await registerApp(page, "Phone");
  let used = enrolledAt;
  await expect(page.getByTestId(testid.wizardDone)).toBeVisible();
  await page.getByRole("button", { name: "Done" }).click();
  // registration complete: the welcome mail for directory users
  await mailTo("lena@example.org", /can now use/);
  await page.getByTestId(testid.signout).click();

  // forgot password: the app proves it's her
  await page.goto(paths.signin);
  await page.getByTestId(testid.resetLink).click();
  await page.getByLabel("Username or email address").fill("lena");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByTestId(testid.resetChoices).getByRole("link", { name: /authenticator app/ }).click();
  let app: string;
  [app, used] = await freshCode(key, used);
  await page.getByTestId(testid.codeInput).fill(app);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/reset\/finish$/);

  // the directory's password policy (ppolicy: at least 20 characters) is shown before she types
  await expect(page.getByTestId(testid.passwordRules)).toContainText("At least 20 characters");
  expect(directoryAccepts("lena", DIRECTORY_PASSWORD), "nothing changed").toBe(true);

  await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Confirm new password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Reset password" }).click();
  await expect(page.getByTestId(testid.resetDone)).toBeVisible();

  // written back: the directory itself now takes the new password, not the old one
  expect(directoryAccepts("lena", NEW_PASSWORD)).toBe(true);
  expect(directoryAccepts("lena", DIRECTORY_PASSWORD)).toBe(false);
  await mailTo("lena@example.org", /password of lena was changed/);

  await signIn(page, "lena", NEW_PASSWORD);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  [app, used] = await freshCode(key, used);
  await page.getByTestId(testid.codeInput).fill(app);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info$/);
  expect(problems, problems.join("\n")).toEqual([]);
});
