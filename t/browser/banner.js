'use strict';
// Real-browser checks of the reminder banner, run by t/091-browser-banner.t.
//
//   node t/browser/banner.js --base http://127.0.0.1:PORT --out DIR \
//       --vid-a RT_VID_COOKIE --vid-b RT_VID_COOKIE --consent CONSENT_COOKIE
//
// The two visitors' carts are seeded in Redis by the .t file; each scenario
// gets a fresh browser context holding only that visitor's signed
// (HttpOnly) cookie and the signed consent cookie "ack" (--consent), so
// no notice is shown.
// Prints one JSON line on stdout: the observations, which the .t file
// asserts.  The launch, the request tracking and the bounds are in
// t/browser/lib.js.

const PAGE = '/shop.html';
const BANNER = '[role="region"][aria-label="Your cart"]';
const NOTICE = '[role="region"][aria-label="Privacy notice"]';
const STEP_MS = 10000;

const run = require('./lib').browserRun({
    args: { base: 'URL', out: 'DIR', 'vid-a': 'COOKIE', 'vid-b': 'COOKIE',
            consent: 'COOKIE' },
    totalMs: 80000,
    launchMs: 30000,
    stepMs: STEP_MS,
    result: {
        dialogs: [],   // alert/confirm/prompt opened by any page
    },
});
const { opt, result, actAndFollow, openWithRegion, tabTo } = run;

// A fresh context for one returning visitor: the signed visitor cookie
// (HttpOnly, as the server sets it) and the consent cookie, before any
// page is loaded.
async function visitorContext(browser, vidCookie) {
    const context = await run.newContext(browser);
    // An injected script would most likely open a dialog: record it and
    // dismiss it, so that nothing hangs.
    context.on('page', (page) => watchDialogs(page));
    await context.addCookies([
        { name: 'rt_vid', value: vidCookie, url: opt.base,
          httpOnly: true, sameSite: 'Lax' },
        { name: 'rt_vid_consent', value: opt.consent, url: opt.base,
          sameSite: 'Lax' },
    ]);
    return context;
}

function watchDialogs(page) {
    page.on('dialog', (d) => {
        result.dialogs.push(`${d.type()}: ${d.message()}`);
        d.dismiss().catch(() => {});
    });
}

async function bannerCount(page) {
    return page.locator(BANNER).count();
}

// What the banner shows, read from the DOM as the visitor sees it.
async function bannerDom(page) {
    return page.evaluate(({ sel, notice }) => {
        const n = document.querySelector(sel);
        if (!n)
            return null;
        const box = n.getBoundingClientRect();
        const text = (e) => (e ? e.textContent.trim() : null);
        return {
            parent: n.parentElement.tagName,
            last_in_body: document.body.lastElementChild === n,
            in_viewport: box.width > 0 && box.height > 0 && box.top >= 0
                         && box.left >= 0 && box.bottom <= window.innerHeight
                         && box.right <= window.innerWidth,
            heading: text(n.querySelector('h2')),
            items: [...n.querySelectorAll('li')].map((li) => {
                const a = li.querySelector('a');
                const img = li.querySelector('img');
                return {
                    name: text(a),
                    href: a ? a.getAttribute('href') : null,
                    detail: text(li.querySelector('small')),
                    line_total: text(li.querySelector(':scope > b')),
                    img: img ? {
                        src: img.getAttribute('src'), alt: img.alt,
                        complete: img.complete, width: img.naturalWidth,
                    } : null,
                    elements: [...li.querySelectorAll('*')].map((e) => e.tagName),
                };
            }),
            total: text(n.querySelector('.rt-banner-tot')),
            cta: (() => {
                const a = n.querySelector('a.rt-banner-cta');
                return a ? { text: text(a), href: a.getAttribute('href') } : null;
            })(),
            buttons: [...n.querySelectorAll('button')].map((b) => ({
                label: b.getAttribute('aria-label'), text: text(b),
            })),
            forms: [...n.querySelectorAll('form')].map((f) => ({
                method: f.getAttribute('method'), action: f.getAttribute('action'),
            })),
            imgs_in_banner: n.querySelectorAll('img').length,
            imgs_in_page: [...document.querySelectorAll('img')]
                .map((i) => i.getAttribute('src')),
            // the overlay's own script (Escape, see notice.h) and nothing else
            scripts_in_banner: [...n.querySelectorAll('script')].map((e) =>
                /^\(function\(b\)\{var d=document,/.test(e.textContent)
                    ? 'overlay' : e.outerHTML.slice(0, 60)),
            event_attrs: [...n.querySelectorAll('*')].flatMap((e) =>
                [...e.attributes].filter((a) => /^on/i.test(a.name))
                    .map((a) => `${e.tagName}[${a.name}]`)),
            notices: document.querySelectorAll(notice).length,
            // the page styles h2 and img: none of it reaches the banner
            page_styles: (() => {
                const h = n.querySelector('h2');
                const i = n.querySelector('img');
                return {
                    h2: h ? `${getComputedStyle(h).textTransform} ${getComputedStyle(h).color}` : null,
                    img_border: i ? getComputedStyle(i).borderTopStyle : null,
                };
            })(),
        };
    }, { sel: BANNER, notice: NOTICE });
}

// Waits (bounded) for the banner's product images to be loaded.
async function waitForImages(page) {
    await page.waitForFunction((sel) => {
        const imgs = document.querySelectorAll(`${sel} img`);
        return [...imgs].every((i) => i.complete && i.naturalWidth > 0);
    }, BANNER, { timeout: STEP_MS }).catch(() => {});
}

// 1. Visitor A: the banner, its items (a hostile name stays text), a
// screenshot, then keyboard only: Tab to the dismiss button, Enter, 303
// back to the page, no banner (also after a reload).
async function dismissByKeyboard(context, r) {
    const { page, region } =
        await openWithRegion(context, opt.base + PAGE, 'Your cart', r);
    // the items are a <details> away: open them, as a visitor would
    r.items_hidden = await page.locator(`${BANNER} li`).first().isHidden();
    await region.locator('summary').click();
    await waitForImages(page);
    r.dom = await bannerDom(page);
    r.dismiss_buttons = await region
        .getByRole('button', { name: 'Dismiss reminder' }).count();
    r.cta_links = await region.getByRole('link', { name: 'View your cart' }).count();
    r.document_cookie = await page.evaluate(() => document.cookie);

    r.screenshot = `${opt.out}/browser-banner.png`;
    r.screenshot_bytes = (await page.screenshot({ path: r.screenshot })).length;

    r.focus_path = [];
    r.reached_dismiss = false;
    const dismiss = await tabTo(page, BANNER,
        (f) => f.tag === 'BUTTON' && f.label === 'Dismiss reminder', r.focus_path);
    if (dismiss) {
        r.reached_dismiss = true;
        r.dismiss_outline = dismiss.outline;
    }
    r.tabs = r.focus_path.length;
    if (!r.reached_dismiss)
        return;
    r.screenshot_focus = `${opt.out}/browser-banner-focus.png`;
    await page.screenshot({ path: r.screenshot_focus });

    r.dismissed_from = Date.now() / 1000;
    await actAndFollow(page, () => page.keyboard.press('Enter'), r);
    r.dismissed_until = Date.now() / 1000;
    r.banner_after = await bannerCount(page);
    await page.reload({ waitUntil: 'load' });
    r.url_after_reload = page.url();
    r.banner_after_reload = await bannerCount(page);
}

// 2. Visitor B: the mouse on "View your cart": through the click endpoint
// to the cart page, where the campaign is off.
async function clickThrough(context, r) {
    const page = await context.newPage();
    await page.goto(opt.base + PAGE, { waitUntil: 'load' });
    const region = page.getByRole('region', { name: 'Your cart' });
    r.visible = await region.isVisible();
    r.dom = await bannerDom(page);
    r.clicked_from = Date.now() / 1000;
    await actAndFollow(page,
        () => region.getByRole('link', { name: 'View your cart' }).click(), r);
    r.clicked_until = Date.now() / 1000;
    r.title_after = await page.title();
    r.banner_after = await bannerCount(page);
    r.any_banner_after = await page.locator('.rt-banner').count();
}

run.main(async (browser) => {
    await run.scenario('dismiss_keyboard',
        () => visitorContext(browser, opt['vid-a']), dismissByKeyboard);
    await run.scenario('click_through',
        () => visitorContext(browser, opt['vid-b']), clickThrough);
});
