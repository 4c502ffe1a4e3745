import { test, expect } from "@playwright/test";
import { collectProblems, signIn } from "./helpers";
import { demo } from "./ids";

// runs after security.spec.ts (one worker, files in order): bob has a verified mobile number
test("a call answered with 'approve' on the phone completes the second sign-in step", async ({ page }) => {
  const problems = collectProblems(page);
  await signIn(page, demo.bob.username, demo.bob.password);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  await page.getByText("Use another method").click();
  await page.getByRole("link", { name: /\+31/ }).first().click();
  await page.getByRole("button", { name: "Call me" }).click();
  await expect(page).toHaveURL(/sent=call/);

  // not answered yet: the page says so and keeps offering the button
  await page.getByRole("button", { name: "I approved the call" }).click();
  await expect(page.getByText("The call has not been answered yet")).toBeVisible();

  // the person on the phone presses 1 (the dev provider's page plays the gateway)
  const phone = await page.context().newPage();
  await expect(async () => {
    await phone.goto("/dev/messages");
    await expect(phone.locator("article", { hasText: "voice" }).first()).toContainText("Press 1 to approve");
  }).toPass({ timeout: 15_000 });
  await phone.locator("article", { hasText: "voice" }).first().getByTestId("dev-voice-approve").click();
  await expect(phone).toHaveURL(/\/dev\/messages$/);
  await phone.close();

  await page.getByRole("button", { name: "I approved the call" }).click();
  await expect(page).toHaveURL(/\/security-info$/);
  expect(problems, problems.join("\n")).toEqual([]);
});
