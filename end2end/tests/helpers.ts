import type { Page, ConsoleMessage } from "@playwright/test";
import { expect } from "@playwright/test";
import { readdirSync, readFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { paths, testid } from "./ids";

/** Console errors and page errors seen while a test runs (a test ends by expecting none). */
export function collectProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  return problems;
}

/** The newest 6-digit code the dev SMS / mail transports sent to `recipient` (not `not`). */
export async function devCode(page: Page, recipient: string, not = ""): Promise<string> {
  const reader = await page.context().newPage();
  let code = "";
  await expect(async () => {
    await reader.goto("/dev/messages");
    const text = (await reader.locator("article", { hasText: recipient }).first().textContent()) ?? "";
    code = text.match(/\b\d{6}\b/)?.[0] ?? "";
    expect(code).not.toBe("");
    expect(code).not.toBe(not);
  }).toPass({ timeout: 15_000 });
  await reader.close();
  return code;
}

/** Fills and submits the sign-in form. */
export async function signIn(page: Page, username: string, password: string) {
  await page.goto(paths.signin);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

/** The text part of a raw RFC 5322 message (quoted-printable or base64 decoded). */
function textPart(raw: string): string {
  const parts = raw.split(/\r?\n--[^\r\n]+\r?\n/);
  const part = parts.find((p) => /content-type:\s*text\/plain/i.test(p)) ?? raw;
  const split = part.search(/\r?\n\r?\n/);
  const headers = part.slice(0, split);
  let body = part.slice(split).trim();
  if (/content-transfer-encoding:\s*base64/i.test(headers)) {
    body = Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  } else if (/content-transfer-encoding:\s*quoted-printable/i.test(headers)) {
    body = body.replace(/=\r?\n/g, "");
    body = Buffer.from(
      body.replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))),
      "latin1",
    ).toString("utf8");
  }
  return body;
}

/**
 * The text of the newest mail the real SMTP server (scripts/test starts aiosmtpd with a Maildir,
 * CONVERGE_MAILDIR) received for `recipient` whose text matches `matching`.
 */
export async function mailTo(recipient: string, matching: RegExp): Promise<string> {
  const dir = process.env.CONVERGE_MAILDIR;
  expect(dir, "CONVERGE_MAILDIR (set by scripts/test)").toBeTruthy();
  let found = "";
  await expect(async () => {
    const folder = join(dir as string, "new");
    const files = readdirSync(folder).sort().reverse();
    for (const f of files) {
      const raw = readFileSync(join(folder, f), "utf8");
      const to = raw.match(/^to:\s*(.*)$/im)?.[1] ?? "";
      if (!to.includes(recipient)) continue;
      const text = textPart(raw);
      if (matching.test(text)) {
        found = text;
        return;
      }
    }
    throw new Error(`no mail to ${recipient} matching ${matching}`);
  }).toPass({ timeout: 20_000 });
  return found;
}

// An independent TOTP (RFC 6238, SHA-1, 6 digits, 30 s) to play the authenticator app.
function base32Decode(input: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out: number[] = [];
  for (const c of input.replace(/[\s=]/g, "").toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
export function totp(key: string, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(key)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, "0");
}
export const step = () => Math.floor(Date.now() / 1000 / 30);

/** A code from a time step after `used` (each code works once): waits for the next step. */
export async function freshCode(key: string, used: number): Promise<[string, number]> {
  while (step() <= used) await new Promise((r) => setTimeout(r, 500));
  const s = step();
  return [totp(key, s), s];
}

/**
 * In the wizard: registers an authenticator app named `name` with a code computed from the key
 * the page shows. Returns the key and the time step whose code was used.
 */
export async function registerApp(page: Page, name: string): Promise<[string, number]> {
  await page.getByRole("link", { name: /Authenticator app/ }).click();
  await page.getByLabel("Name this device").fill(name);
  await page.getByRole("button", { name: "Next" }).click();
  const key = ((await page.getByTestId(testid.totpKey).textContent()) ?? "").replace(/\s/g, "");
  const used = step();
  await page.getByTestId(testid.codeInput).fill(totp(key, used));
  await page.getByRole("button", { name: "Verify" }).click();
  return [key, used];
}

/** A hardware token's code as the device would show it, from oathtool (Debian's oath-toolkit). */
export function oathtool(...args: string[]): string {
  return execFileSync("oathtool", args, { encoding: "utf8" }).trim();
}
