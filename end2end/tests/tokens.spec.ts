import { test, expect } from "@playwright/test";
import { collectProblems, oathtool, signIn } from "./helpers";
import { demo, demoTokens, paths, testid } from "./ids";

const { hotp1: hotp, totp1: totp } = demoTokens;

test("a hardware token is activated and signs in; then a recovery code signs in and 9 are left", async ({ page }) => {
  test.setTimeout(90_000);
  const problems = collectProblems(page);
  const ivo = demo.ivo;
  await signIn(page, ivo.username, ivo.password);
  await expect(page).toHaveURL(/\/setup$/);
  await page.getByRole("link", { name: /Hardware token/ }).click();
  await page.getByLabel("Serial number").fill(hotp.serial);
  // a wrong code: a clear refusal, and nothing registered
  await page.getByLabel("Code shown on the token").fill("000000");
  await page.getByRole("button", { name: "Add this token" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("TOK-001");
  await page.getByLabel("Serial number").fill(hotp.serial);
  await page.getByLabel("Code shown on the token").fill(oathtool("--hotp", "-c", "0", hotp.key));
  await page.getByRole("button", { name: "Add this token" }).click();
  await expect(page.getByTestId(testid.wizardDone)).toBeVisible();
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page.getByTestId(testid.methodList)).toContainText(`${hotp.serial} · HOTP`);
  await page.getByTestId(testid.signout).click();

  // the next press of the button signs in (counter 1)
  await signIn(page, ivo.username, ivo.password);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  await page.getByTestId(testid.codeInput).fill(oathtool("--hotp", "-c", "1", hotp.key));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info$/);

  // a time-based token too, then recovery codes (the second factor is fresh)
  await page.goto("/security-info/add/token");
  await page.getByLabel("Serial number").fill(totp.serial);
  await page.getByLabel("Code shown on the token").fill(oathtool("--totp", totp.key));
  await page.getByRole("button", { name: "Add this token" }).click();
  await expect(page.getByTestId(testid.methodList)).toContainText(`${totp.serial} · TOTP`);
  await page.goto("/security-info/add/recovery");
  await page.getByRole("button", { name: "Create recovery codes" }).click();
  const list = page.getByTestId(testid.recoveryCodes);
  await expect(list.locator("li")).toHaveCount(10);
  const codes = (await list.locator("li").allTextContents()).map((c) => c.trim());
  expect(codes[0]).toMatch(/^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/);
  await expect(page.getByRole("link", { name: "Download as a text file" })).toHaveAttribute("download", "recovery-codes.txt");
  // shown once: a reload does not show them again
  await page.reload();
  await expect(page.getByText("These codes were shown already")).toBeVisible();
  await page.goto(paths.securityInfo);
  await expect(page.getByTestId(testid.methodList)).toContainText("10 of 10 left");
  await page.getByTestId(testid.signout).click();

  // no token at hand: a recovery code, typed in capitals with spaces
  await signIn(page, ivo.username, ivo.password);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  await page.getByTestId(testid.recoveryForm).locator("summary").click();
  await page.getByLabel("Recovery code").fill(codes[3].toUpperCase().replace(/-/g, " "));
  await page.getByTestId(testid.recoveryForm).getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId(testid.notice)).toContainText("Recovery codes left: 9");
  await page.goto(paths.securityInfo);
  await expect(page.getByTestId(testid.methodList)).toContainText("9 of 10 left");
  await page.getByTestId(testid.signout).click();

  // the same code never works twice
  await signIn(page, ivo.username, ivo.password);
  await page.getByTestId(testid.recoveryForm).locator("summary").click();
  await page.getByLabel("Recovery code").fill(codes[3]);
  await page.getByTestId(testid.recoveryForm).getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("REC-001");
  expect(problems, problems.join("\n")).toEqual([]);
});
