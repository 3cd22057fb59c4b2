'use strict';
// Every shipped template as a visitor sees it, run by
// t/093-browser-templates.t.
//
//   node t/browser/templates.js --base http://127.0.0.1:PORT --out DIR \
//       --shots DIR --cases FILE
//
// FILE is a JSON array of cases written by the .t file:
//   { "name": "builtin-cart3-EUR", "path": "/builtin/EUR/shop.html",
//     "vid": "RT_VID_COOKIE" or "", "consent": "CONSENT_COOKIE" or "" }
// Each case is loaded once, in a fresh context holding only the case's
// cookies, and laid out at desktop (1280x800) then phone (390x844) size.
// Recorded: the status, and at each size the text the visitor sees of
// everything the module injected (every node after the shop's <main
// id="shop">: innerText of the elements; any bare text is stray), each
// injected element's box, the text of its parts that fall outside the
// viewport, and a screenshot (--shots/templates-NAME-VIEWPORT.png); when
// the injected markup has <details>, the same again with them opened
// (r[viewport].open, templates-NAME-VIEWPORT-open.png).
// Prints one JSON line on stdout (t/browser/lib.js).

const fs = require('fs');

const STEP_MS = 10000;
const VIEWPORTS = {
    desktop: { width: 1280, height: 800 },
    phone: { width: 390, height: 844 },
};

const run = require('./lib').browserRun({
    args: { base: 'URL', out: 'DIR', shots: 'DIR', cases: 'FILE' },
    totalMs: 190000,
    launchMs: 30000,
    stepMs: STEP_MS,
    result: {
        dialogs: [],        // alert/confirm/prompt opened by any page
        page_errors: [],    // uncaught exceptions of the pages' scripts
        screenshots: [],
    },
});
const { opt, result } = run;

const cases = JSON.parse(fs.readFileSync(opt.cases, 'utf8'));

async function caseContext(browser, c) {
    const context = await run.newContext(browser);
    const cookies = [];
    if (c.vid)
        cookies.push({ name: 'rt_vid', value: c.vid, url: opt.base,
                       httpOnly: true, sameSite: 'Lax' });
    if (c.consent)
        cookies.push({ name: 'rt_vid_consent', value: c.consent,
                       url: opt.base, sameSite: 'Lax' });
    if (cookies.length)
        await context.addCookies(cookies);
    return context;
}

function watch(page) {
    page.on('dialog', (d) => {
        result.dialogs.push(`${d.type()}: ${d.message()}`);
        d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => result.page_errors.push(`${page.url()}: ${e.message}`));
}

async function waitForImages(page) {
    await page.waitForFunction(() => [...document.images]
        .every((i) => i.complete), null, { timeout: STEP_MS }).catch(() => {});
}

// What the module added to the page, as the visitor sees it: where it is.
async function injected(page) {
    return page.evaluate(() => {
        const main = document.getElementById('shop');
        const out = { stray: [], elements: [] };
        const vw = innerWidth;
        const vh = innerHeight;
        const rect = (e) => {
            const b = e.getBoundingClientRect();
            return { top: Math.round(b.top), left: Math.round(b.left),
                     bottom: Math.round(b.bottom), right: Math.round(b.right),
                     width: Math.round(b.width), height: Math.round(b.height) };
        };
        for (let n = main ? main.nextSibling : null; n; n = n.nextSibling) {
            if (n.nodeType === Node.TEXT_NODE) {
                const t = n.textContent.trim();
                if (t)
                    out.stray.push(t);
                continue;
            }
            if (n.nodeType !== Node.ELEMENT_NODE
                || ['SCRIPT', 'STYLE', 'TEMPLATE'].includes(n.tagName))
            {
                continue;
            }
            const box = rect(n);
            // the parts with text of their own that the viewport cuts: what
            // shows of them (clipped by every ancestor that hides its
            // overflow, up to the injected element) reaches past its edge
            const cut = [];
            for (const e of n.querySelectorAll('*')) {
                const own = [...e.childNodes].some((c) => c.nodeType === Node.TEXT_NODE
                                                    && c.textContent.trim());
                if (!own || !e.getClientRects().length
                    || !e.checkVisibility({ visibilityProperty: true }))
                {
                    continue;
                }
                const b = e.getBoundingClientRect();
                let [l, t, r, btm] = [b.left, b.top, b.right, b.bottom];
                for (let a = e.parentElement; a && a !== n.parentElement; a = a.parentElement) {
                    const st = getComputedStyle(a);
                    if (st.overflowX === 'visible' && st.overflowY === 'visible')
                        continue;
                    const ab = a.getBoundingClientRect();
                    [l, t, r, btm] = [Math.max(l, ab.left), Math.max(t, ab.top),
                                      Math.min(r, ab.right), Math.min(btm, ab.bottom)];
                }
                if (r - l < 1 || btm - t < 1)
                    continue;           // scrolled or folded away, not cut
                if (l < -1 || r > vw + 1 || t < -1 || btm > vh + 1)
                    cut.push(e.textContent.trim().slice(0, 60));
            }
            out.elements.push({
                tag: n.tagName, cls: n.getAttribute('class'),
                role: n.getAttribute('role'), label: n.getAttribute('aria-label'),
                box, cut,
                visible: box.width > 0 && box.height > 0,
                // the share of the viewport it covers
                covers: Math.round(1000 * Math.max(0, Math.min(box.bottom, vh) - Math.max(box.top, 0))
                                   * Math.max(0, Math.min(box.right, vw) - Math.max(box.left, 0))
                                   / (vw * vh)) / 10,
            });
        }
        out.viewport = { width: vw, height: vh };
        out.page_scrolls_sideways = document.documentElement.scrollWidth > vw;
        return out;
    });
}

// The text of what the module added (after the screenshot): innerText of
// each element, any bare text; buttons and links get a space on each side
// for the reading, as innerText puts none between two buttons side by
// side, where the visitor sees a gap (the spaces are taken out again).
async function injectedText(page) {
    return page.evaluate(() => {
        const main = document.getElementById('shop');
        const parts = [];
        const added = [];
        for (let n = main ? main.nextSibling : null; n; n = n.nextSibling) {
            if (n.nodeType === Node.TEXT_NODE) {
                parts.push(n.textContent);
                continue;
            }
            if (n.nodeType !== Node.ELEMENT_NODE
                || ['SCRIPT', 'STYLE', 'TEMPLATE'].includes(n.tagName))
            {
                continue;
            }
            for (const e of n.querySelectorAll('button, a, summary')) {
                const [before, after] = [document.createTextNode(' '),
                                         document.createTextNode(' ')];
                e.before(before);
                e.after(after);
                added.push(before, after);
            }
            parts.push(n.innerText);
        }
        for (const t of added)
            t.remove();
        return parts.join('\n');
    });
}

// Opens (or closes again) every disclosure the module added, as a visitor
// who taps "details" does; returns how many there are.
async function disclose(page, open) {
    return page.evaluate((open) => {
        const main = document.getElementById('shop');
        let count = 0;
        for (let n = main ? main.nextSibling : null; n; n = n.nextSibling) {
            if (n.nodeType !== Node.ELEMENT_NODE)
                continue;
            for (const d of n.querySelectorAll('details')) {
                d.open = open;
                count++;
            }
        }
        return count;
    }, open);
}

async function frames(page) {
    await page.evaluate(() => new Promise((done) =>
        requestAnimationFrame(() => requestAnimationFrame(done))));
}

// At one size: where it is, a screenshot, what it says; the same with
// every disclosure opened, when there is one.
async function look(page, c, vp, tag) {
    const v = { dom: await injected(page) };
    const path = `${opt.shots}/templates-${c.name}-${vp}${tag}.png`;
    v.screenshot_bytes = (await page.screenshot({ path })).length;
    v.screenshot = path;
    result.screenshots.push(path);
    v.text = await injectedText(page);
    return v;
}

// One page load per case (each is a page view, a reminder shown), laid
// out at each size in turn: r.desktop, r.phone.
async function render(browser, c) {
    await run.scenario(c.name, () => caseContext(browser, c),
        async (context, r) => {
            const page = await context.newPage();
            watch(page);
            await page.setViewportSize(VIEWPORTS.desktop);
            const resp = await page.goto(opt.base + c.path, { waitUntil: 'load' });
            r.status = resp.status();
            await waitForImages(page);
            for (const [vp, size] of Object.entries(VIEWPORTS)) {
                await page.setViewportSize(size);
                await frames(page);
                const v = r[vp] = await look(page, c, vp, '');
                if (await disclose(page, true)) {
                    await frames(page);
                    v.open = await look(page, c, vp, '-open');
                    await disclose(page, false);
                }
            }
        });
}

run.main(async (browser) => {
    for (const c of cases)
        await render(browser, c);
});
