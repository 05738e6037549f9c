// A documented check (not run by CI: it needs the MCP Inspector, ~260 npm packages): the MCP
// Inspector 2.x, given no token, signs a user in at the demo's mock IdP and calls get_me.
//
//   cargo run --example demo &                                  # the server on :8000
//   npx -y -p @modelcontextprotocol/inspector@2 -p puppeteer-core mcp-inspector \
//       --transport http --server-url http://localhost:8000/mcp &   # Node 22.19+; prints a URL
//   node docs/checks/inspector-sign-in.mjs 'http://127.0.0.1:6274?MCP_INSPECTOR_API_TOKEN=…' bob docs
//
// (run the script where puppeteer-core resolves, e.g. with NODE_PATH set to that npx cache's
// node_modules). It turns the server's switch on, follows the Inspector to the login page,
// picks the user, comes back connected, opens Tools, runs get_me and saves
// `inspector-get-me.png` in the given directory. It exits non-zero unless get_me answered for
// the chosen user. CHROMIUM names the browser (default: chromium-headless-shell).
import puppeteer from 'puppeteer-core';

const [inspectorUrl, user, directory] = process.argv.slice(2);
if (!inspectorUrl || !user || !directory) {
  console.error('usage: node inspector-sign-in.mjs INSPECTOR_URL USERNAME SCREENSHOT_DIR');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium-headless-shell';
const browser = await puppeteer.launch({
  executablePath,
  headless: executablePath.includes('headless-shell') ? 'shell' : true,
  args: ['--no-sandbox'],
});
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });

/** Clicks, with the mouse, the innermost element whose whole text is `text`. */
async function clickText(text) {
  const box = await page.waitForFunction((wanted) => {
    const matches = [...document.querySelectorAll('body *')].filter(
      (el) => el.children.length <= 1 && el.innerText?.trim() === wanted,
    );
    const rect = matches.at(-1)?.getBoundingClientRect();
    return rect && { x: rect.x + rect.width / 2, y: rect.y + rect.height / 2 };
  }, { timeout: 15000 }, text);
  const { x, y } = await box.jsonValue();
  await page.mouse.click(x, y);
}

try {
  await page.goto(inspectorUrl, { waitUntil: 'load' });
  await page.waitForFunction(() => document.body.innerText.includes('Disconnected'), { timeout: 15000 });
  // The page renders before it has fetched its session from the Inspector's backend.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const connect = await page.waitForSelector('[role=switch], input[type=checkbox]', { timeout: 15000 });
  await connect.click();
  await page.waitForFunction(() => location.pathname.endsWith('/authorize'), { timeout: 20000 });
  await Promise.all([
    page.waitForNavigation({ timeout: 20000 }),
    page.click(`button[name="username"][value="${user}"]`),
  ]);
  await page.waitForFunction(() => document.body.innerText.includes('Connected'), { timeout: 30000 });
  // The tools are listed right after the connection; the tab works once they are.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await clickText('Tools');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await clickText('get_me');
  await clickText('Execute Tool');
  await page.waitForFunction(
    (who) => document.body.innerText.includes(`"user_id": "${who}"`),
    { timeout: 15000 },
    user,
  );
  await page.screenshot({ path: `${directory}/inspector-get-me.png` });
  console.log(`get_me answered for ${user}`);
} finally {
  await browser.close();
}
