// Signs a user in at the mock IdP's login page in a real headless browser (Chromium through
// puppeteer-core): opens the authorization URL, optionally saves a screenshot of the page, clicks
// the user's button and waits for the browser to land on the client's redirect URI.
//
//   node browser-sign-in.mjs AUTHORIZATION_URL USERNAME [SCREENSHOT.png]
//
// Prints one JSON line: the page's status and title, the URL the browser ended on, that page's
// text, and every console message (a Content-Security-Policy violation shows up there), each with
// the page it was logged on and the URL it names (a script's, a resource's that failed to load).
// CHROMIUM names the browser (default: Debian's chromium-headless-shell).
import puppeteer from 'puppeteer-core';

const [authorizationUrl, username, screenshot] = process.argv.slice(2);
if (!authorizationUrl || !username) {
  console.error('usage: node browser-sign-in.mjs AUTHORIZATION_URL USERNAME [SCREENSHOT.png]');
  process.exit(2);
}
if (!/^[A-Za-z0-9._@-]+$/.test(username)) {
  console.error('USERNAME: letters, digits and . _ @ - only (it goes into a CSS selector)');
  process.exit(2);
}

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium-headless-shell';
const browser = await puppeteer.launch({
  executablePath,
  // The headless shell is its own binary; a full Chromium or Chrome runs its new headless mode.
  headless: executablePath.includes('headless-shell') ? 'shell' : true,
  // The sandbox needs user namespaces, which containers and root shells often lack.
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 760, height: 560, deviceScaleFactor: 1 });
  const consoleMessages = [];
  page.on('console', (message) =>
    consoleMessages.push({
      type: message.type(),
      text: message.text(),
      page: page.url(),
      url: message.location()?.url ?? '',
    }),
  );
  const response = await page.goto(authorizationUrl, { waitUntil: 'load', timeout: 15000 });
  const loginStatus = response?.status();
  const loginTitle = await page.title();
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  const button = `button[name="username"][value="${username}"]`;
  try {
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'load', timeout: 15000 }),
      page.click(button),
    ]);
  } catch (error) {
    console.error(`signing in failed on ${page.url()}; console: ${JSON.stringify(consoleMessages)}`);
    throw error;
  }
  console.log(JSON.stringify({
    loginStatus,
    loginTitle,
    landedOn: page.url(),
    landedText: await page.evaluate(() => document.body.innerText),
    console: consoleMessages,
  }));
} finally {
  await browser.close();
}
