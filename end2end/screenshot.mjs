// node end2end/screenshot.mjs [baseURL] [outDir]: screenshots for README, against a fresh server
// with the demo users: the sign-in page, alice's wizard, the authenticator-app step (QR), her
// Security info afterwards, the second sign-in step, and My activity.
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";

const base = process.argv[2] || "http://localhost:3000";
const out = process.argv[3] || "docs";

function totp(key, step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const bytes = [];
  for (const c of key.replace(/\s/g, "")) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) { bytes.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", Buffer.from(bytes)).update(counter).digest();
  const o = mac[mac.length - 1] & 0x0f;
  return ((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).toString().padStart(6, "0");
}
const step = () => Math.floor(Date.now() / 30_000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const dark = await browser.newPage({ viewport: { width: 1100, height: 700 }, colorScheme: "dark" });
await dark.goto(`${base}/signin`);
await dark.screenshot({ path: `${out}/signin-dark.png` });
await dark.close();

const page = await browser.newPage({ viewport: { width: 1100, height: 760 }, colorScheme: "light" });
await page.goto(`${base}/signin`);
await page.screenshot({ path: `${out}/signin-light.png` });
await page.fill("#username", "alice");
await page.fill("#password", "correct-horse-alice");
await page.click("button[type=submit]");
await page.waitForURL(/setup/);
await page.screenshot({ path: `${out}/wizard-light.png`, fullPage: true });
await page.goto(`${base}/security-info/add/app?flow=setup`);
await page.fill("#name", "Work phone");
await page.click("form[action='/api/totp_start'] button[type=submit]");
await page.waitForSelector("[data-testid=totp-key]");
await page.screenshot({ path: `${out}/add-app-light.png`, fullPage: true });
const key = (await page.textContent("[data-testid=totp-key]")) ?? "";
const enrolled = step();
await page.fill("#code", totp(key, enrolled));
await page.click("form[action='/api/totp_confirm'] button[type=submit]");
await page.waitForURL(/setup\?notice=added/);
await page.click("form[action='/api/manage_method'] button[type=submit]");
await page.waitForURL(/security-info/);
await page.screenshot({ path: `${out}/security-info-light.png`, fullPage: true });
await page.goto(`${base}/activity`);
await page.screenshot({ path: `${out}/activity-light.png`, fullPage: true });
await page.click("[data-testid=signout]");
await page.fill("#username", "alice");
await page.fill("#password", "correct-horse-alice");
await page.click("form[action='/api/sign_in'] button[type=submit]");
await page.waitForURL(/signin\/verify/);
await page.screenshot({ path: `${out}/verify-light.png`, fullPage: true });
await browser.close();
