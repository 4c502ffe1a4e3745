import { test, expect } from "@playwright/test";
import { collectProblems, devCode, freshCode, mailTo, oathtool, registerApp, signIn } from "./helpers";
import { demo, demoTokens, paths, testid } from "./ids";


test("the helpdesk verifies a caller by SMS and issues a Temporary Access Pass; the caller signs in with it and registers a new app", async ({ page, browser }) => {
  test.setTimeout(150_000);
  const problems = collectProblems(page);
  const gina = demo.gina;

  // gina registers an authenticator app and her directory mobile number
  await signIn(page, gina.username, gina.password);
  await expect(page).toHaveURL(/\/setup$/);
  await registerApp(page, "Old phone");
  await expect(page).toHaveURL(/\/setup\?notice=added$/);
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=confirmed$/);
  await page.getByRole("link", { name: "Verify and use this number" }).click();
  await page.getByLabel("Phone number").fill("+31 6 4567 8901");
  await page.getByRole("button", { name: "Send code" }).click();
  const enrolCode = await devCode(page, gina.mobile);
  await page.getByTestId(testid.codeInput).fill(enrolCode);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=added$/);
  await page.getByTestId(testid.signout).click();

  // she loses the phone with the app and calls the helpdesk
  const deskContext = await browser.newContext();
  const desk = await deskContext.newPage();
  const deskProblems = collectProblems(desk);
  await signIn(desk, demo.hanna.username, demo.hanna.password);
  await expect(desk).toHaveURL(/\/setup$/);
  // staff need a second factor before the console opens
  await desk.goto(paths.helpdesk);
  await expect(desk.getByTestId(testid.error).first()).toContainText("HLP-010");
  await desk.goto("/setup");
  await registerApp(desk, "Desk phone");
  await desk.getByRole("button", { name: "Done" }).click();
  await expect(desk).toHaveURL(/\/security-info\?notice=confirmed$/);
  await desk.getByRole("link", { name: "Helpdesk", exact: true }).click();
  await expect(desk).toHaveURL(/\/helpdesk$/);
  await desk.getByRole("searchbox", { name: "Find a user" }).fill("gina");
  await desk.getByRole("button", { name: "Search" }).click();
  await desk.getByTestId(testid.helpdeskResults).getByRole("link", { name: "Gina Groen" }).click();
  await expect(desk).toHaveURL(/\/helpdesk\/user\?id=/);
  // actions wait for a verification
  await expect(desk.getByRole("button", { name: "Issue a Temporary Access Pass" })).toBeDisabled();
  // a text to her registered number; she reads the code back
  await desk.getByTestId(testid.helpdeskVerify).getByRole("button", { name: "Text a code" }).click();
  await expect(desk.getByTestId(testid.helpdeskVerify)).toContainText("A code was sent to +31•••••••01");
  const first = await devCode(desk, gina.mobile, enrolCode);
  await desk.getByTestId(testid.codeInput).fill(first === "000000" ? "111111" : "000000");
  await desk.getByRole("button", { name: "Check" }).click();
  await expect(desk.getByTestId(testid.error)).toContainText("MFA-001");
  await expect(desk.getByTestId(testid.helpdeskState)).toHaveAttribute("data-state", "failed");
  // the dev page orders by the second a message was kept: send the next one in a later second
  await desk.waitForTimeout(1100);
  await desk.getByTestId(testid.helpdeskVerify).getByRole("button", { name: "Text a code" }).click();
  const code = await devCode(desk, gina.mobile, first);
  await desk.getByTestId(testid.codeInput).fill(code);
  await desk.getByRole("button", { name: "Check" }).click();
  await expect(desk.getByTestId(testid.helpdeskState)).toHaveAttribute("data-state", "verified");
  await expect(desk.getByTestId(testid.helpdeskState)).toContainText("Verified with Phone");
  // a Temporary Access Pass, shown once
  await desk.getByRole("button", { name: "Issue a Temporary Access Pass" }).click();
  await expect(desk.getByTestId(testid.helpdeskTap)).toBeVisible();
  const pass = ((await desk.getByTestId(testid.helpdeskTap).locator("code").textContent()) ?? "").trim();
  expect(pass).toMatch(/^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
  await desk.reload();
  await expect(desk.getByTestId(testid.helpdeskTap)).toHaveCount(0);
  await expect(desk.getByText(/A Temporary Access Pass is active until/)).toBeVisible();
  // a hardware token from the inventory (examples/demo-tokens.pskc) handed out, then resynchronised
  await desk.getByLabel("Serial number of a hardware token").fill(demoTokens.hotp2.serial);
  await desk.getByRole("button", { name: "Hand out this token" }).click();
  await expect(desk.getByText("The token is now one of the user's methods")).toBeVisible();
  await expect(desk.getByText("DEMO-HOTP-2 · HOTP").first()).toBeVisible();
  await desk.getByText("Resynchronise Hardware token DEMO-HOTP-2").click();
  await desk.getByLabel("First code").fill(oathtool("--hotp", "-c", "50", demoTokens.hotp2.key));
  await desk.getByLabel("Next code").fill(oathtool("--hotp", "-c", "51", demoTokens.hotp2.key));
  await desk.getByRole("button", { name: "Resynchronise", exact: true }).click();
  await expect(desk.getByText("The token is resynchronised.")).toBeVisible();
  // the audit log shows what the agent did
  await desk.goto("/helpdesk/audit?actor=hanna");
  await expect(desk.getByTestId(testid.auditTable)).toContainText("helpdesk_action");
  await expect(desk.getByTestId(testid.auditTable)).toContainText("helpdesk_verification");
  expect(deskProblems, deskProblems.join("\n")).toEqual([]);
  await deskContext.close();

  // gina is told by email (the real SMTP server)
  await mailTo(gina.email, /Temporary Access Pass was issued/);

  // she signs in with her password and the pass instead of the lost app
  await signIn(page, gina.username, gina.password);
  await expect(page).toHaveURL(/\/signin\/verify$/);
  await page.getByTestId(testid.tapForm).locator("summary").click();
  await page.getByLabel("Temporary Access Pass").fill(pass.toLowerCase());
  await page.getByRole("button", { name: "Sign in with the pass" }).click();
  await expect(page).toHaveURL(/\/security-info$/);

  // and registers the new phone's authenticator app at once
  await page.getByRole("link", { name: /authenticator app/i }).first().click();
  await page.getByLabel("Name this device").fill("New phone");
  await page.getByRole("button", { name: "Next" }).click();
  const newKey = ((await page.getByTestId(testid.totpKey).textContent()) ?? "").replace(/\s/g, "");
  const [newCode] = await freshCode(newKey, 0);
  await page.getByTestId(testid.codeInput).fill(newCode);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/security-info\?notice=added$/);
  await expect(page.getByTestId(testid.methodList)).toContainText("New phone");

  // the pass worked once
  await page.getByTestId(testid.signout).click();
  await signIn(page, gina.username, gina.password);
  await page.getByTestId(testid.tapForm).locator("summary").click();
  await page.getByLabel("Temporary Access Pass").fill(pass);
  await page.getByRole("button", { name: "Sign in with the pass" }).click();
  await expect(page.getByTestId(testid.error)).toContainText("TAP-001");
  expect(problems, problems.join("\n")).toEqual([]);
});
