import { test, expect } from "@playwright/test";
import { demo, lockoutThreshold, paths, testid } from "./ids";
import { mailTo } from "./helpers";

test("a locked account gets a mail whose 'This wasn't me' link records a report", async ({ page }) => {
  for (let i = 0; i < lockoutThreshold; i++) {
    await page.goto(paths.signin);
    await page.getByLabel("Username").fill(demo.carol.username);
    await page.getByLabel("Password", { exact: true }).fill(`wrong-password-${i}`);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect(page).toHaveURL(/error=SIG-001/);
  }
  // the real SMTP server received it (the outbox worker delivers within a second)
  const body = await mailTo(demo.carol.email, /was locked/);
  expect(body).toContain("http://localhost:3107/reset");
  const link = body.match(/http:\/\/localhost:\d+\/report\/[A-Za-z0-9_-]+/)?.[0] ?? "";
  expect(link).not.toBe("");

  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Report activity you did not do" })).toBeVisible();
  await expect(page.getByText("Your account was locked")).toBeVisible();
  await page.getByTestId(testid.reportConfirm).getByRole("button").click();
  await expect(page).toHaveURL(/\/report-recorded$/);
  await expect(page.getByTestId(testid.notice)).toContainText("Your helpdesk can see your report");
  await expect(page.getByTestId(testid.notice)).toContainText("your account is blocked");

  // the link works once
  await page.goto(link);
  await expect(page.getByText("expired or has already been used")).toBeVisible();
});
