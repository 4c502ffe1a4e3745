import { test, expect, type Page } from "@playwright/test";
import { collectProblems, signIn } from "./helpers";
import { demo, paths, testid } from "./ids";



test("a demo user signs in, sees Security info and activity, and signs out", async ({ page }) => {
  const problems = collectProblems(page);
  await page.goto("/");
  await expect(page).toHaveURL(/\/signin$/);
  await signIn(page, demo.alice.username, demo.alice.password);

  // without security info, sign-in leads into the wizard; Security info is one click away
  await expect(page).toHaveURL(/\/setup$/);
  await page.getByRole("link", { name: "Security info" }).click();
  await expect(page).toHaveURL(/\/security-info$/);
  await expect(page.getByRole("heading", { level: 1, name: "Security info" })).toBeVisible();
  await expect(page.getByTestId(testid.userName)).toHaveText(demo.alice.name);
  await expect(page.getByText("alice@example.org")).toBeVisible();

  await page.getByRole("navigation").getByRole("link", { name: "My activity" }).click();
  await expect(page).toHaveURL(/\/activity$/);
  const table = page.getByTestId(testid.activityTable);
  await expect(table.getByRole("row").nth(1)).toContainText("Sign-in");
  await expect(table.getByRole("row").nth(1)).toContainText("Succeeded");

  await page.getByTestId(testid.signout).click();
  await expect(page).toHaveURL(/\/signin\?notice=signed_out$/);
  await expect(page.getByTestId(testid.notice)).toContainText("You have signed out.");

  // the session is gone on the server too
  await page.goto(paths.securityInfo);
  await expect(page).toHaveURL(/\/signin/);
  expect(problems, problems.join("\n")).toEqual([]);
});

test("wrong password, unknown user and disabled user get the same message", async ({ page }) => {
  const messages: string[] = [];
  for (const [u, p] of [
    [demo.alice.username, "not-the-password"],
    ["nobody-here", "whatever-password"],
    [demo.dave.username, demo.dave.password],
  ]) {
    await signIn(page, u, p);
    await expect(page).toHaveURL(/\/signin\?error=SIG-001&username=/);
    // the form keeps what was typed as username, never the password
    await expect(page.getByLabel("Username")).toHaveValue(u);
    await expect(page.getByLabel("Password", { exact: true })).toHaveValue("");
    const alert = page.getByTestId(testid.signinError);
    await expect(alert).toBeVisible();
    messages.push((await alert.textContent()) ?? "");
  }
  expect(new Set(messages).size).toBe(1);
  expect(messages[0]).toContain("SIG-001");
});

test("the password toggle is handled by the wasm island, without a page load", async ({ page }) => {
  const problems = collectProblems(page);
  await page.goto(paths.signin);
  // the toggle is hidden until its island has hydrated
  const toggle = page.getByTestId(testid.passwordToggle);
  await expect(toggle).toBeVisible({ timeout: 15_000 });
  await page.evaluate(() => ((window as any).__convergeMarker = "still-here"));
  const password = page.getByLabel("Password", { exact: true });
  await password.fill("secret-value");
  await expect(password).toHaveAttribute("type", "password");
  await toggle.click();
  await expect(password).toHaveAttribute("type", "text");
  await expect(toggle).toHaveText("Hide password");
  await expect(toggle).toHaveAttribute("aria-pressed", "true");
  // same document: no navigation happened
  expect(await page.evaluate(() => (window as any).__convergeMarker)).toBe("still-here");
  await expect(password).toHaveValue("secret-value");
  expect(problems, problems.join("\n")).toEqual([]);
});

test("sign-in works with JavaScript disabled (before any wasm)", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, demo.alice.username, demo.alice.password);
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.getByTestId(testid.userName)).toHaveText(demo.alice.name);
  await context.close();
});

test("unknown pages answer 404 with a way back", async ({ page }) => {
  const res = await page.goto("/no-such-page");
  expect(res?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});

test("keyboard: skip link and form fields are reachable in order", async ({ page }) => {
  await page.goto(paths.signin);
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to main content" })).toBeFocused();
  await page.getByLabel("Username").focus();
  await page.keyboard.press("Tab");
  await expect(page.getByLabel("Password", { exact: true })).toBeFocused();
});
