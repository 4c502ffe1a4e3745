import { defineConfig, devices } from "@playwright/test";

// Browsers cannot be downloaded here: use the system Chromium (Debian package `chromium`).
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
// WebAuthn needs a domain as RP id: always localhost, never 127.0.0.1.
const baseURL = process.env.CONVERGE_URL || "http://localhost:3000";

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: "list",
  use: {
    baseURL,
    trace: "retain-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath,
          args: [
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
          ],
        },
      },
    },
  ],
});
