import type { Page, ConsoleMessage } from "@playwright/test";
import { paths } from "./ids";

/** Console errors and page errors seen while a test runs (a test ends by expecting none). */
export function collectProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  return problems;
}

/** Fills and submits the sign-in form. */
export async function signIn(page: Page, username: string, password: string) {
  await page.goto(paths.signin);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}
