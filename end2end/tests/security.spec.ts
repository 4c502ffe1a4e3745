import { test, expect } from "@playwright/test";
import { collectProblems, devCode, signIn, step, totp } from "./helpers";
import { demo, paths, testid } from "./ids";






test("the wizard and Security info: app, passkey, phone, questions, PIN; then sign in with the app and with the passkey", async ({ page }) => {
  test.setTimeout(150_000);
  const problems = collectProblems(page);
  // Chromium's virtual authenticator plays the passkey (CDP WebAuthn domain)
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  // 1. sign-in leads into the wizard
  await signIn(page, demo.bob.username, demo.bob.password);
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.getByTestId(testid.wizard)).toContainText("Step 1 of 1");

  // 2. authenticator app: name, QR + manual key, code from our own TOTP
  await page.getByRole("link", { name: /Authenticator app/ }).click();
  await expect(page).toHaveURL(/\/security-info\/add\/app\?flow=setup$/);
  await page.getByLabel("Name this device").fill("Work phone");
  await page.getByRole("button", { name: "Next" }).click();
  await expect(page.getByTestId(testid.qr).locator("svg")).toBeVisible();
  const key = ((await page.getByTestId(testid.totpKey).textContent()) ?? "").replace(/\s/g, "");
  expect(key).toMatch(/^[A-Z2-7]{32}$/);
  await page.getByTestId(testid.codeInput).fill("000000");
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("MFA-001");
  const enrolledAt = step();
  await page.getByTestId(testid.codeInput).fill(totp(key, enrolledAt));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/setup\?notice=added$/);
  await expect(page.getByTestId(testid.wizardDone)).toContainText("You're all set");
  await expect(page.getByTestId(testid.methodList)).toContainText("Work phone");
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=confirmed$/);

  // 3. passkey (the only step that needs JavaScript)
  await page.getByRole("link", { name: /Add a passkey or security key/ }).click();
  await page.getByLabel("Name it").fill("Laptop");
  await page.getByTestId(testid.passkeyButton).click();
  await expect(page).toHaveURL(/\/security-info\?notice=added$/);
  await expect(page.getByTestId(testid.methodList)).toContainText("Laptop");

  // 4. the mobile number from the directory, verified by a text message
  await page.getByRole("link", { name: "Verify and use this number" }).click();
  await page.getByLabel("Phone number").fill("+31 6 2345 6789");
  await page.getByRole("button", { name: "Send code" }).click();
  await expect(page.getByText("We sent a code to")).toBeVisible();
  await page.getByTestId(testid.codeInput).fill(await devCode(page, "+31623456789"));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=added$/);
  await expect(page.getByTestId(testid.methodList)).toContainText("From your organisation's directory");

  // 5. security questions (answers are never shown again)
  await page.getByRole("link", { name: /Add security questions/ }).click();
  for (let i = 1; i <= 4; i++) {
    await page.locator(`#a${i}`).fill(`answer number ${i}`);
  }
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=added$/);

  // 6. PIN: a trivial one is refused with the reason
  await page.getByRole("link", { name: /Add a PIN/ }).click();
  await page.getByLabel("PIN", { exact: true }).fill("123456");
  await page.getByLabel("PIN again").fill("123456");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("REG-005");
  await page.getByLabel("PIN", { exact: true }).fill("739154");
  await page.getByLabel("PIN again").fill("739154");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=added$/);
  const rows = page.getByTestId(testid.methodRow);
  await expect(rows).toHaveCount(5);
  await expect(page.getByTestId(testid.methodList)).not.toContainText("answer number");

  // 7. sign out; sign in with the app (a code from a newer time step: each is used once)
  await page.getByTestId(testid.signout).click();
  while (step() <= enrolledAt) await page.waitForTimeout(1000);
  await signIn(page, demo.bob.username, demo.bob.password);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  await expect(page.getByTestId(testid.verifyForm)).toContainText("Work phone");
  await page.getByTestId(testid.codeInput).fill(totp(key, step()));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info$/);

  // 8. and with the passkey
  await page.getByTestId(testid.signout).click();
  await signIn(page, demo.bob.username, demo.bob.password);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  await page.getByText("Use another method").click();
  await page.getByRole("link", { name: /Passkey or security key · Laptop/ }).click();
  await page.getByTestId(testid.passkeyButton).click();
  await expect(page).toHaveURL(/\/security-info$/);

  // 9. and without a password: the discoverable passkey from the sign-in page
  await page.getByTestId(testid.signout).click();
  await page.goto(paths.signin);
  await page.getByTestId(testid.passkeySignin).click();
  await expect(page).toHaveURL(/\/security-info$/);
  await expect(page.getByTestId(testid.userName)).toHaveText("Bob Bakker");
  expect(problems, problems.join("\n")).toEqual([]);
});

test("without JavaScript: the wizard adds an authenticator app and the next sign-in asks for it", async ({ browser }) => {
  test.setTimeout(90_000);
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, demo.erin.username, demo.erin.password);
  await expect(page).toHaveURL(/\/setup$/);
  await page.getByRole("link", { name: /Authenticator app/ }).click();
  await page.getByRole("button", { name: "Next" }).click();
  const key = ((await page.getByTestId(testid.totpKey).textContent()) ?? "").replace(/\s/g, "");
  const enrolledAt = step();
  await page.getByTestId(testid.codeInput).fill(totp(key, enrolledAt));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId(testid.wizardDone)).toBeVisible();
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=confirmed$/);
  // a passkey needs JavaScript, and the page says so
  await page.goto("/security-info/add/passkey");
  await expect(page.getByText("Passkeys need JavaScript")).toBeVisible();
  await page.getByTestId(testid.signout).click();
  while (step() <= enrolledAt) await page.waitForTimeout(1000);
  await signIn(page, demo.erin.username, demo.erin.password);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  await page.getByTestId(testid.codeInput).fill(totp(key, step()));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info$/);
  await context.close();
});
