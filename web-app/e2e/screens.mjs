// Screenshots of the running demo (`aviary --demo`: 25 simulated trackers) for people to look
// at, signed in as alice (pets 1–12): the live map after a while, a followed pet with its
// safe-zone editor, and the offline base layer zoomed out. Usage: node screens.mjs [SECONDS];
// files go to target/e2e/.
import { artifact, launchBrowser, startGateway } from "./lib.mjs";

const SECONDS = Number(process.argv[2] ?? 25);
const gateway = await startGateway(["--demo"]);
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  await page.goto(gateway.url);
  await page.fill('form.signin input[name="username"]', "alice", { timeout: 20_000 });
  await page.fill('form.signin input[name="password"]', "alice-demo");
  await page.click('form.signin button[type="submit"]');
  await page.waitForSelector('.conn[data-state="connected"]', { timeout: 20_000 });
  await page.waitForTimeout(SECONDS * 1000);
  await page.screenshot({ path: artifact("demo-live.png") });
  await page.click('.pet-row[data-pet-id="5"]');
  await page.waitForTimeout(3_000);
  await page.screenshot({ path: artifact("demo-follow.png") });
  await page.evaluate(() => window.aviaryMap.setZoom(6));
  await page.waitForTimeout(1_500);
  await page.screenshot({ path: artifact("demo-zoomed-out.png") });
  console.log("screenshots in target/e2e: demo-live.png, demo-follow.png, demo-zoomed-out.png");
} finally {
  await browser.close();
  await gateway.stop();
}
