'use strict';
// The story of `make run` in a real browser, run by t/092-browser-demo.t
// against util/run-demo.sh (nginx with the module in front of the shop
// application demo/shop.py):
//
//   node t/browser/demo.js --base http://127.0.0.1:PORT --out DIR \
//       --delay SECONDS --shots DIR
//
// One visitor: the notice (OK), two product pages (JSON-LD), two adds
// through the shop's own buttons (a product page, a category page), the
// cart page; leaves, comes back after the campaign delay to the reminder;
// through the reminder to the cart, one more of a line and a line removed
// with the shop's buttons; the reminder follows; checkout, order; no
// reminder of the cart after it.  Screenshots at 1280x800 and 390x844 in
// --shots.  Prints one JSON line on stdout, which the .t file asserts.

const STEP_MS = 15000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const RETRIES = Number(process.env.DEMO_RETRIES || 20);           // page loads, one a second, while waiting

const run = require('./lib').browserRun({
    args: { base: 'URL', out: 'DIR', delay: 'SECONDS', shots: 'DIR' },
    totalMs: 170000,
    launchMs: 30000,
    stepMs: STEP_MS,
    result: {
        dialogs: [],        // alert/confirm/prompt opened by any page
        page_errors: [],    // uncaught exceptions of the pages' scripts
        screenshots: [],
    },
});
const { opt, result, log, actAndFollow } = run;

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

function watch(page) {
    page.on('dialog', (d) => {
        result.dialogs.push(`${d.type()}: ${d.message()}`);
        d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => result.page_errors.push(`${page.url()}: ${e.message}`));
}

async function newPage(context) {
    const page = await context.newPage();
    await page.setViewportSize(DESKTOP);
    return page;
}

// A screenshot at desktop and at phone size (the page is laid out again,
// not loaded again: a reload would be one more page view).
async function shots(page, name) {
    await waitForImages(page);
    for (const [tag, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        await page.setViewportSize(vp);
        await sleep(150);
        const path = `${opt.shots}/${name}-${tag}.png`;
        await page.screenshot({ path });
        result.screenshots.push(path);
    }
    await page.setViewportSize(DESKTOP);
}

async function waitForImages(page) {
    await page.waitForFunction(() => [...document.images]
        .filter((i) => i.loading !== 'lazy' || i.getBoundingClientRect().top < innerHeight)
        .every((i) => i.complete), null, { timeout: STEP_MS }).catch(() => {});
}

// The product of the page's JSON-LD, as a crawler reads it.
async function jsonLd(page) {
    return page.evaluate(() => {
        const s = document.querySelector('script[type="application/ld+json"]');
        try { return s ? JSON.parse(s.textContent) : null; } catch (e) { return 'unparsable'; }
    });
}

// The shop's cart page as the visitor sees it.
async function cartPage(page) {
    return page.evaluate(() => {
        const txt = (e) => (e ? e.textContent.trim() : null);
        // money as the page shows it ("\u20ac12.00"): the reminder must match
        const money = (e) => (e ? e.textContent.trim() : null);
        return {
            lines: [...document.querySelectorAll('tr[data-line]')].map((tr) => ({
                line: tr.dataset.line,
                sku: tr.dataset.sku,
                name: txt(tr.querySelector('[data-name]')),
                qty: txt(tr.querySelector('[data-qty]')),
                price: money(tr.querySelector('[data-price]')),
                line_total: money(tr.querySelector('[data-line-total]')),
            })),
            total: money(document.querySelector('[data-total]')),
            header_count: txt(document.querySelector('[data-cart-count]')),
            empty: !!document.querySelector('[data-empty]'),
        };
    });
}

// The reminder on the page, whichever of the demo's two variants the
// visitor is shown: the built-in banner (read from its DOM) or the
// one-line bar of conf-examples/banner-minimal.html (its text, and the
// items from the JSON it prints).  null when there is none.
async function reminder(page) {
    return page.evaluate(() => {
        const txt = (e) => (e ? e.textContent.trim() : null);
        const b = document.querySelector('.rt-banner');
        const m = document.querySelector('.rt-bar');
        const region = b || m;
        if (!region)
            return null;
        const box = region.getBoundingClientRect();
        const common = {
            label: region.getAttribute('aria-label'),
            in_viewport: box.width > 0 && box.height > 0 && box.top >= 0
                         && box.bottom <= innerHeight && box.right <= innerWidth,
            last_in_body: document.body.lastElementChild === region,
        };
        if (b) {
            const h = txt(b.querySelector('h2'));
            return {
                ...common,
                variant: 'banner',
                text: h,
                browse: !/ left in your cart$/.test(h || ''),
                count: ((h || '').match(/^(\d+) items? left/) || [])[1] || null,
                items: [...b.querySelectorAll('li')].map((li) => {
                    const [qty, price] = (txt(li.querySelector('small')) || '').split(' \u00d7 ');
                    const img = li.querySelector('img');
                    return {
                        name: txt(li.querySelector('a')), qty, price,
                        line_total: txt(li.querySelector(':scope > b')),
                        href: (li.querySelector('a') || { getAttribute: () => null }).getAttribute('href'),
                        image: img ? img.getAttribute('src') : null,
                        image_loaded: img ? img.complete && img.naturalWidth > 0 : null,
                    };
                }),
                total: txt(b.querySelector('.rt-banner-tot b')),
                cta: (b.querySelector('a.rt-banner-cta') || { getAttribute: () => null }).getAttribute('href'),
            };
        }
        let data = {};
        try { data = JSON.parse(m.querySelector('#rt-data').textContent); } catch (e) { data = {}; }
        return {
            ...common,
            variant: 'minimal',
            text: txt(m.querySelector('span')),
            browse: !!data.browse,
            count: data.cart_count === undefined ? null : String(data.cart_count),
            items: (data.cart || []).map((i) => ({
                name: i.name, qty: String(i.qty), price: i.price,
                line_total: i.line_total, href: i.click_url, image: i.image,
            })),
            total: data.cart_total === undefined ? null : String(data.cart_total),
            cta: (m.querySelector(':scope > a') || { getAttribute: () => null }).getAttribute('href'),
        };
    });
}

// Clicks an add button of the shop and waits for the API's answer and the
// page's "Added ..." line.
async function addToCart(page, button, r) {
    const answered = page.waitForResponse((resp) =>
        resp.request().method() === 'POST' && /\/api\/cart\/items$/.test(resp.url()));
    await button.click();
    const resp = await answered;
    r.status = resp.status();
    r.reply = await resp.json().catch(() => null);
    await page.locator('[data-added]', { hasText: 'Added' }).first()
        .waitFor({ timeout: STEP_MS }).catch(() => {});
    r.said = await page.locator('[data-added]').first().textContent();
    r.header_count = await page.locator('[data-cart-count]').textContent();
}

// A button of the cart page: the API call, then the page loads again.
async function cartButton(page, name, method, r) {
    const answered = page.waitForResponse((resp) =>
        resp.request().method() === method && /\/api\/cart\/items\/[\w-]+$/.test(resp.url()));
    const loaded = page.waitForEvent('load', { timeout: STEP_MS });
    await page.getByRole('button', { name }).click();
    const resp = await answered;
    r.status = resp.status();
    r.url = resp.url().replace(opt.base, '');
    r.reply = await resp.json().catch(() => null);
    await loaded;
}

// Loads / (once a second, at most RETRIES times) until it shows a
// reminder of the cart for which want(reminder) holds; returns it (or the
// last one seen) with the number of loads.
async function comeBack(context, r, want) {
    const page = await newPage(context);
    for (let i = 1; i <= RETRIES; i++) {
        const resp = await page.goto(opt.base + '/', { waitUntil: 'load' });
        r.status = resp.status();
        r.loads = i;
        r.reminder = await reminder(page);
        if (r.reminder && !r.reminder.browse && want(r.reminder))
            break;
        await sleep(1000);
    }
    return page;
}

async function story(context, r) {
    const delayMs = Number(opt.delay) * 1000;

    // 1. The home page, the notice, OK
    let page = await newPage(context);
    r.home = {};
    let resp = await page.goto(opt.base + '/', { waitUntil: 'load' });
    r.home.status = resp.status();
    r.home.title = await page.title();
    r.home.cards = await page.locator('.card').count();
    const notice = page.getByRole('region', { name: 'Privacy notice' });
    r.home.notice = await notice.count();
    await shots(page, 'home-notice');
    await actAndFollow(page,
        () => notice.getByRole('button', { name: 'OK' }).click(), r.home);
    r.home.notice_after = await page.getByRole('region', { name: 'Privacy notice' }).count();

    // 2. A product page: its JSON-LD; two mugs with the quantity field
    r.mug = {};
    resp = await page.goto(opt.base + '/product/mug', { waitUntil: 'load' });
    r.mug.status = resp.status();
    r.mug.ld = await jsonLd(page);
    await page.locator('[data-qty-for="mug"]').fill('2');
    await addToCart(page, page.getByRole('button', { name: 'Add to cart' }), r.mug);
    await shots(page, 'product');

    // 3. Another product, only looked at
    r.tshirt = {};
    resp = await page.goto(opt.base + '/product/tshirt', { waitUntil: 'load' });
    r.tshirt.status = resp.status();
    r.tshirt.ld = await jsonLd(page);

    // 4. A category page: the notebook's "Add" button
    r.category = {};
    resp = await page.goto(opt.base + '/category/wear', { waitUntil: 'load' });
    r.category.status = resp.status();
    r.category.cards = await page.locator('.card').count();
    await addToCart(page,
        page.getByRole('button', { name: 'Add Tide Notebook to cart' }), r.category);
    await shots(page, 'category');

    // 5. The cart page
    resp = await page.goto(opt.base + '/cart', { waitUntil: 'load' });
    r.cart1 = await cartPage(page);
    r.cart1.status = resp.status();
    r.cart1.reminder = await reminder(page);
    await shots(page, 'cart');

    // 6. Leave; come back after the campaign delay: the reminder
    await page.close();
    log(`left; back in ${opt.delay} s`);
    await sleep(delayMs);
    r.back1 = {};
    page = await comeBack(context, r.back1, () => true);
    await shots(page, 'reminder');

    // 7. Through the reminder to the cart: one more mug, the notebook out
    r.to_cart = {};
    // (without a reminder, the rest of the story is still walked, by the
    // shop's own link, so that every step is reported)
    const cta = page.locator('.rt-banner a.rt-banner-cta, .rt-bar > a').first();
    if (await cta.count())
        await actAndFollow(page, () => cta.click(), r.to_cart);
    else
        await actAndFollow(page, () => page.locator('a.cart-link').click(), r.to_cart);
    r.to_cart.reminder = await reminder(page);
    r.plus = {};
    await cartButton(page, 'One Harbor Mug more', 'PATCH', r.plus);
    r.remove = {};
    await cartButton(page, 'Remove Tide Notebook', 'DELETE', r.remove);
    r.cart2 = await cartPage(page);
    await shots(page, 'cart-changed');
    const want = r.cart2.lines.map((l) => `${l.name} ${l.qty}`).sort().join(',');

    // 8. Leave again; the reminder follows the shop's cart
    await page.close();
    await sleep(delayMs);
    r.back2 = {};
    page = await comeBack(context, r.back2, (rem) =>
        rem.items.map((i) => `${i.name} ${i.qty}`).sort().join(',') === want);
    await shots(page, 'reminder-changed');

    // 9. Checkout, place the order
    r.checkout = {};
    resp = await page.goto(opt.base + '/checkout', { waitUntil: 'load' });
    r.checkout.status = resp.status();
    r.checkout.reminder = await reminder(page);
    // the page leaves as soon as it has the reply: its body is read on
    // the way, before the browser discards it
    await page.route('**/api/checkout', async (route) => {
        const reply = await route.fetch();
        r.checkout.api_status = reply.status();
        r.checkout.reply = await reply.json().catch(() => null);
        await route.fulfill({ response: reply });
    });
    const thanks = page.waitForURL(/\/order\/[\w-]+$/, { timeout: STEP_MS });
    await page.getByRole('button', { name: 'Place order' }).click();
    await thanks;
    await page.waitForLoadState('load');
    r.checkout.url_after = page.url().replace(opt.base, '');
    r.checkout.order = await page.locator('[data-order]').textContent();
    r.checkout.order_total = await page.locator('[data-order-total]').textContent();
    r.checkout.reminder_on_thanks = await reminder(page);
    await shots(page, 'thanks');

    // 10. The next pages: no reminder of the cart
    r.after = {};
    resp = await page.goto(opt.base + '/', { waitUntil: 'load' });
    r.after.status = resp.status();
    r.after.reminder = await reminder(page);
    await shots(page, 'after-order');
    resp = await page.goto(opt.base + '/cart', { waitUntil: 'load' });
    r.after.cart = await cartPage(page);

    r.cookies = await context.cookies();
}

run.main(async (browser) => {
    await run.scenario('story', async () => {
        const context = await run.newContext(browser);
        context.on('page', watch);
        return context;
    }, story);
});
