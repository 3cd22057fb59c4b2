'use strict';
// Real-browser checks of the transparency notice, run by t/090-browser.t.
//
//   node t/browser/notice.js --base http://127.0.0.1:PORT \
//       --optin http://127.0.0.1:PORT2 --out DIR
//
// Every scenario gets a fresh browser context (empty cookie jar).  Prints
// one JSON line on stdout: the observations, which the .t file asserts.
// The launch, the request tracking and the bounds are in t/browser/lib.js.

const PAGE = '/shop.html';
const NOTICE = '[role="region"][aria-label="Privacy notice"]';

const run = require('./lib').browserRun({
    args: { base: 'URL', optin: 'URL', out: 'DIR' },
    totalMs: 50000,
    launchMs: 20000,
    stepMs: 8000,
});
const { opt, actAndFollow, openWithRegion, tabTo } = run;

async function cookiesOf(context, base) {
    return (await context.cookies(base)).map((c) => ({
        name: c.name, value: c.value, httpOnly: c.httpOnly,
        sameSite: c.sameSite, path: c.path, expires: c.expires,
    }));
}

async function noticeCount(page) {
    return page.locator(NOTICE).count();
}

// 1. A new visitor: notice visible, last in <body>, HttpOnly visitor cookie.
async function newVisitor(context, r) {
    const { page } =
        await openWithRegion(context, opt.base + PAGE, 'Privacy notice', r);
    r.dom = await page.evaluate((sel) => {
        const n = document.querySelector(sel);
        if (!n)
            return null;
        const box = n.getBoundingClientRect();
        return {
            parent: n.parentElement.tagName,
            last_in_body: document.body.lastElementChild === n,
            after_main: !!(document.querySelector('main').compareDocumentPosition(n)
                           & Node.DOCUMENT_POSITION_FOLLOWING),
            in_viewport: box.width > 0 && box.height > 0 && box.top >= 0
                         && box.bottom <= window.innerHeight,
            buttons: [...n.querySelectorAll('button')].map((b) => b.textContent.trim()),
            links: [...n.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        };
    }, NOTICE);
    r.cookies = await cookiesOf(context, opt.base);
    r.document_cookie = await page.evaluate(() => document.cookie);
}

// 2. Keyboard only: Tab to "OK", Enter, 303 back, notice gone, reload.
async function keyboardAck(context, r) {
    const page = await context.newPage();
    await page.goto(opt.base + PAGE, { waitUntil: 'load' });
    r.notice_before = await noticeCount(page);
    r.focus_path = [];
    r.reached_ok = false;
    const ok = await tabTo(page, NOTICE,
        (f) => f.tag === 'BUTTON' && f.text === 'OK', r.focus_path);
    r.tabs = r.focus_path.length;
    if (ok) {
        r.reached_ok = true;
        r.ok_outline = ok.outline;
    }
    if (!r.reached_ok)
        return;
    await actAndFollow(page, () => page.keyboard.press('Enter'), r);
    r.notice_after = await noticeCount(page);
    await page.reload({ waitUntil: 'load' });
    r.url_after_reload = page.url();
    r.notice_after_reload = await noticeCount(page);
    r.cookies = await cookiesOf(context, opt.base);
}

// 3. "Opt out" with the mouse: visitor cookie deleted, consent "out".
async function optOut(context, r) {
    const page = await context.newPage();
    await page.goto(opt.base + PAGE, { waitUntil: 'load' });
    r.cookies_before = await cookiesOf(context, opt.base);
    await actAndFollow(page,
        () => page.getByRole('button', { name: 'Opt out' }).click(), r);
    r.notice_after = await noticeCount(page);
    r.cookies = await cookiesOf(context, opt.base);
    await page.reload({ waitUntil: 'load' });
    r.notice_after_reload = await noticeCount(page);
    r.cookies_after_reload = await cookiesOf(context, opt.base);
}

// 4. Opt-in mode: nothing set before "Allow"; after it, the visitor cookie.
async function optIn(context, r) {
    const page = await context.newPage();
    await page.goto(opt.optin + PAGE, { waitUntil: 'load' });
    r.cookies_before = await cookiesOf(context, opt.optin);
    const region = page.getByRole('region', { name: 'Privacy notice' });
    r.visible_before = await region.isVisible();
    r.buttons = await region.getByRole('button').allTextContents();
    await actAndFollow(page,
        () => region.getByRole('button', { name: 'Allow' }).click(), r);
    r.notice_after = await noticeCount(page);
    r.cookies = await cookiesOf(context, opt.optin);
}

// 5. A screenshot of the page with the notice, for humans.
async function screenshot(context, r) {
    const page = await context.newPage();
    await page.goto(opt.base + PAGE, { waitUntil: 'load' });
    r.path = `${opt.out}/browser-notice.png`;
    r.bytes = (await page.screenshot({ path: r.path })).length;
}

run.main(async (browser) => {
    const fresh = () => run.newContext(browser);
    await run.scenario('new_visitor', fresh, newVisitor);
    await run.scenario('keyboard_ack', fresh, keyboardAck);
    await run.scenario('optout', fresh, optOut);
    await run.scenario('optin', fresh, optIn);
    await run.scenario('screenshot', fresh, screenshot);
});
