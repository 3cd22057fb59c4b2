'use strict';
// Real-browser checks of the transparency notice, run by t/090-browser.t.
//
//   node t/browser/notice.js --base http://127.0.0.1:PORT \
//       --optin http://127.0.0.1:PORT2 --out DIR
//
// Drives Debian's Chromium (/usr/bin/chromium) with playwright-core (no
// browser download).  Every scenario gets a fresh browser context (empty
// cookie jar); Playwright itself gives the browser a new empty profile
// (user-data-dir) under os.tmpdir() and removes it on close.  Prints one
// JSON line on stdout: the observations, which the .t file asserts.  A
// scenario that throws records its error and the others still run.
// Progress goes to stderr.  Every wait is bounded; the whole run gives up
// after TOTAL_MS.

const { chromium } = require('playwright-core');

const CHROMIUM = '/usr/bin/chromium';
const PAGE = '/shop.html';
const TOTAL_MS = 50000;
const LAUNCH_MS = 20000;
const STEP_MS = 8000;
const MAX_TABS = 30;
const NOTICE = '[role="region"][aria-label="Privacy notice"]';

const opt = parseArgs(process.argv.slice(2));
const started = Date.now();
const result = {
    node: process.versions.node,
    playwright: require('playwright-core/package.json').version,
    browser: null,
    scenarios: {},
    requests: [],          // every request the browser made: method and URL
    foreign: [],           // requests not to 127.0.0.1, aborted by the route
    fatal: null,
};
let emitted = false;

function emit() {
    if (emitted)
        return;
    emitted = true;
    result.ms = Date.now() - started;
    process.stdout.write(JSON.stringify(result) + '\n');
}

function log(msg) {
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);
}

function parseArgs(argv) {
    const o = {};
    for (let i = 0; i < argv.length; i += 2) {
        if (!/^--(base|optin|out)$/.test(argv[i]) || argv[i + 1] === undefined)
            usage(`bad argument ${argv[i]}`);
        o[argv[i].slice(2)] = argv[i + 1];
    }
    if (!o.base || !o.optin || !o.out)
        usage('--base, --optin and --out are required');
    return o;
}

function usage(msg) {
    process.stderr.write(`notice.js: ${msg}\n`
        + 'usage: node notice.js --base URL --optin URL --out DIR\n');
    process.exit(2);
}

// Whole-run bound: report what we have, then exit (Playwright's exit
// handler kills the browser it started).
const watchdog = setTimeout(() => {
    result.fatal = `gave up after ${TOTAL_MS / 1000} s`;
    emit();
    process.exit(3);
}, TOTAL_MS);
watchdog.unref();

function isLocal(url) {
    return /^http:\/\/127\.0\.0\.1(:\d+)?\//.test(url);
}

async function newContext(browser) {
    const context = await browser.newContext({
        viewport: { width: 1024, height: 700 },
        serviceWorkers: 'block',
    });
    context.setDefaultTimeout(STEP_MS);
    context.setDefaultNavigationTimeout(STEP_MS);
    // Only 127.0.0.1 may be reached: anything else is recorded and fails.
    await context.route('**/*', (route) => {
        const url = route.request().url();
        if (isLocal(url))
            return route.continue();
        result.foreign.push(url);
        return route.abort('blockedbyclient');
    });
    context.on('request', (req) => {
        const url = req.url();
        result.requests.push(`${req.method()} ${url}`);
        if (!isLocal(url) && !/^(data|blob|about):/.test(url)
            && !result.foreign.includes(url))
        {
            result.foreign.push(url);
        }
    });
    return context;
}

// Records every HTTP exchange of the page's main frame (redirects
// included) until the returned function is called; it returns the list.
function recordNavigations(page) {
    const list = [];
    const onResponse = (resp) => {
        const req = resp.request();
        if (!req.isNavigationRequest() || req.frame() !== page.mainFrame())
            return;
        list.push({
            method: req.method(),
            url: resp.url(),
            status: resp.status(),
            location: resp.headers()['location'] || null,
        });
    };
    page.on('response', onResponse);
    return () => {
        page.off('response', onResponse);
        return list;
    };
}

async function cookiesOf(context, base) {
    return (await context.cookies(base)).map((c) => ({
        name: c.name, value: c.value, httpOnly: c.httpOnly,
        sameSite: c.sameSite, path: c.path, expires: c.expires,
    }));
}

async function noticeCount(page) {
    return page.locator(NOTICE).count();
}

// Runs the action and waits for the page it leads to (a form POST answered
// with 303, then the GET it redirects to) to be loaded.
async function actAndWaitForLoad(page, action) {
    const loaded = page.waitForEvent('load', { timeout: STEP_MS });
    await action();
    await loaded;
}

async function scenario(name, browser, fn) {
    const r = {};
    result.scenarios[name] = r;
    log(`${name}: start`);
    let context;
    try {
        context = await newContext(browser);
        await fn(context, r);
    } catch (e) {
        r.error = String(e && e.stack || e).split('\n').slice(0, 6).join('\n');
        log(`${name}: ${r.error}`);
    } finally {
        if (context)
            await context.close().catch(() => {});
    }
    log(`${name}: done`);
}

// 1. A new visitor: notice visible, last in <body>, HttpOnly visitor cookie.
async function newVisitor(context, r) {
    const page = await context.newPage();
    const resp = await page.goto(opt.base + PAGE, { waitUntil: 'load' });
    r.status = resp.status();
    r.source = await resp.text();
    const region = page.getByRole('region', { name: 'Privacy notice' });
    r.regions = await region.count();
    r.visible = r.regions === 1 && await region.isVisible();
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
    for (let i = 0; i < MAX_TABS && !r.reached_ok; i++) {
        await page.keyboard.press('Tab');
        const f = await page.evaluate((sel) => {
            const e = document.activeElement;
            if (!e || e === document.body)
                return null;
            const s = getComputedStyle(e);
            return {
                tag: e.tagName, text: e.textContent.trim(),
                in_notice: !!e.closest(sel),
                outline: `${s.outlineStyle} ${s.outlineWidth}`,
            };
        }, NOTICE);
        r.focus_path.push(f ? `${f.tag}:${f.text}` : null);
        if (f && f.in_notice && f.tag === 'BUTTON' && f.text === 'OK') {
            r.reached_ok = true;
            r.ok_outline = f.outline;
        }
    }
    r.tabs = r.focus_path.length;
    if (!r.reached_ok)
        return;
    const stop = recordNavigations(page);
    await actAndWaitForLoad(page, () => page.keyboard.press('Enter'));
    r.navigations = stop();
    r.url_after = page.url();
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
    const stop = recordNavigations(page);
    await actAndWaitForLoad(page,
        () => page.getByRole('button', { name: 'Opt out' }).click());
    r.navigations = stop();
    r.url_after = page.url();
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
    const stop = recordNavigations(page);
    await actAndWaitForLoad(page,
        () => region.getByRole('button', { name: 'Allow' }).click());
    r.navigations = stop();
    r.url_after = page.url();
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

async function main() {
    log(`launching ${CHROMIUM}`);
    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
        timeout: LAUNCH_MS,
    });
    try {
        result.browser = browser.version();
        log(`browser ${result.browser}`);
        await scenario('new_visitor', browser, newVisitor);
        await scenario('keyboard_ack', browser, keyboardAck);
        await scenario('optout', browser, optOut);
        await scenario('optin', browser, optIn);
        await scenario('screenshot', browser, screenshot);
    } finally {
        await browser.close().catch(() => {});
    }
}

main().then(() => {
    emit();
    process.exit(0);
}, (e) => {
    result.fatal = String(e && e.stack || e).split('\n').slice(0, 8).join('\n');
    log(result.fatal);
    emit();
    process.exit(1);
});
