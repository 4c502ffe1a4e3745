// node end2end/screenshot.mjs [baseURL] [outDir]: screenshots for README (signed in as alice).
import { chromium } from "playwright-core";
const base = process.argv[2] || "http://localhost:3000";
const out = process.argv[3] || "docs";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
for (const scheme of ["light", "dark"]) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 }, colorScheme: scheme });
  await page.goto(`${base}/signin`);
  await page.screenshot({ path: `${out}/signin-${scheme}.png` });
  await page.fill("#username", "alice");
  await page.fill("#password", "correct-horse-alice");
  await page.click("button[type=submit]");
  await page.waitForURL(/security-info/);
  await page.screenshot({ path: `${out}/security-info-${scheme}.png`, fullPage: true });
  await page.goto(`${base}/activity`);
  await page.screenshot({ path: `${out}/activity-${scheme}.png`, fullPage: true });
  await page.close();
}
await browser.close();
