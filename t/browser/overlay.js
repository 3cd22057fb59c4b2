'use strict';
// Real-browser measurements of the overlays (notice and banner), run by
// t/094-browser-overlay.t: covered share of the viewport, the page's
// header, layout shift and largest contentful paint (PerformanceObserver,
// buffered), focus not obscured (Tab through the page), contrast, live
// regions, Escape, details on demand; with screenshots.
//
//   node t/browser/overlay.js --base URL --out DIR --shots DIR \
//       --visitors FILE --consent COOKIE --positions a,b,.. --header PX
//
// FILE is a JSON array of signed rt_vid cookies, each a returning visitor
// with a cart: every page load takes the next one.  --consent is the
// signed "ack" consent cookie, given to the loads without the notice.
// Prints one JSON line on stdout (see t/browser/lib.js).

const fs = require('fs');

const OVERLAYS = '.rt-notice[role], .rt-banner[role]';
const VIEWPORTS = {
    desktop: { width: 1280, height: 800 },
    phone: { width: 390, height: 844 },
};
const PAGES = ['product', 'checkout'];

const run = require('./lib').browserRun({
    args: { base: 'URL', out: 'DIR', shots: 'DIR', visitors: 'FILE',
            consent: 'COOKIE', positions: 'LIST', header: 'PX' },
    totalMs: 300000,
    launchMs: 30000,
    stepMs: 10000,
    result: { loads: [], screenshots: [], page_errors: [] },
});
const { opt, result } = run;
const visitors = JSON.parse(fs.readFileSync(opt.visitors, 'utf8'));
let nextVisitor = 0;

async function visitorContext(browser, viewport, notice, js) {
    const context = await run.newContext(browser, {
        viewport: VIEWPORTS[viewport],
        deviceScaleFactor: 1,
        isMobile: viewport === 'phone',
        hasTouch: viewport === 'phone',
        javaScriptEnabled: js,
    });
    const i = nextVisitor++;
    const cookies = [{ name: 'rt_vid', value: visitors[i], url: opt.base,
                       httpOnly: true, sameSite: 'Lax' }];
    if (!notice)
        cookies.push({ name: 'rt_vid_consent', value: opt.consent,
                       url: opt.base, sameSite: 'Lax' });
    await context.addCookies(cookies);
    context.on('page', (page) => page.on('pageerror',
        (e) => result.page_errors.push(String(e))));
    return { context, visitor: i };
}

// Layout shifts and the largest contentful paint, from buffered entries.
function perf() {
    return new Promise((resolve) => {
        const inOverlay = (n) => {
            const e = n && (n.nodeType === 1 ? n : n.parentElement);
            return !!(e && e.closest('.rt-notice, [data-rt-variant]'));
        };
        const out = { cls: 0, cls_overlay: 0, shifts: [], lcp: null };
        new PerformanceObserver((list) => {
            for (const e of list.getEntries()) {
                if (e.hadRecentInput)
                    continue;
                out.cls += e.value;
                const srcs = e.sources || [];
                if (srcs.some((s) => inOverlay(s.node)))
                    out.cls_overlay += e.value;
                const r = (b) => `${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`;
                out.shifts.push({ value: e.value, at: Math.round(e.startTime), sources: srcs.map((s) =>
                    (s.node ? (s.node.nodeName + '.' + (s.node.className || '')) : '?')
                    + ` ${r(s.previousRect)} -> ${r(s.currentRect)}`) });
            }
        }).observe({ type: 'layout-shift', buffered: true });
        new PerformanceObserver((list) => {
            const all = list.getEntries();
            const e = all[all.length - 1];
            const el = e.element;
            out.lcp = {
                in_overlay: inOverlay(el),
                what: el ? el.tagName.toLowerCase()
                           + (el.getAttribute('src') ? ' ' + el.getAttribute('src')
                              : ' "' + el.textContent.trim().slice(0, 24) + '"')
                         : (e.url || '(removed)'),
                size: e.size,
            };
        }).observe({ type: 'largest-contentful-paint', buffered: true });
        setTimeout(() => resolve(out), 300);
    });
}

// Boxes, covered share, header, contrast and live regions.
function measure() {
    const vw = innerWidth, vh = innerHeight;
    const clip = (r) => {
        if (!r)
            return null;
        const c = { x1: Math.max(0, r.left), y1: Math.max(0, r.top),
                    x2: Math.min(vw, r.right), y2: Math.min(vh, r.bottom) };
        return c.x2 > c.x1 && c.y2 > c.y1 ? c : null;
    };
    const inter = (a, b) => (a && b) ? clip({
        left: Math.max(a.x1, b.x1), top: Math.max(a.y1, b.y1),
        right: Math.min(a.x2, b.x2), bottom: Math.min(a.y2, b.y2) }) : null;
    const area = (c) => c ? (c.x2 - c.x1) * (c.y2 - c.y1) : 0;
    const box = (e) => {
        if (!e)
            return null;
        const r = e.getBoundingClientRect();
        return { left: r.left, top: r.top, right: r.right, bottom: r.bottom,
                 width: r.width, height: r.height };
    };
    const notice = document.querySelector('.rt-notice[role]');
    const banner = document.querySelector('[data-rt-variant][role]');
    const header = document.querySelector('header');
    const nb = box(notice), bb = box(banner), hb = box(header);
    const nc = clip(nb), bc = clip(bb);
    const both = area(nc) + area(bc) - area(inter(nc, bc));

    // contrast of every piece of text in the overlays
    const rgb = (s) => {
        const m = s.match(/rgba?\(([^)]+)\)/);
        if (!m)
            return null;
        const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
        return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const lum = (c) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
    };
    const bgOf = (e) => {
        for (; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c && c.a > 0.5)
                return c;
        }
        return { r: 255, g: 255, b: 255, a: 1 };
    };
    let min = 21;
    const low = [];
    for (const o of [notice, banner]) {
        if (!o)
            continue;
        for (const e of [o, ...o.querySelectorAll('*')]) {
            const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.data.trim());
            if (!own || !e.checkVisibility() || !e.getClientRects().length
                || getComputedStyle(e).clipPath !== 'none')
                continue;
            const fg = rgb(getComputedStyle(e).color), bg = bgOf(e);
            const l1 = lum(fg), l2 = lum(bg);
            const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
            if (ratio < min)
                min = ratio;
            if (ratio < 4.5)
                low.push(`${e.tagName} "${e.textContent.trim().slice(0, 20)}" ${ratio.toFixed(2)}`);
        }
    }
    const live = (o) => !o || !!o.querySelector('[role=status], [aria-live=polite]');
    const customBanner = !!banner && !banner.classList.contains('rt-banner');
    return {
        notice: !!notice, banner: !!banner, nb, bb, hb,
        covered_pct: Math.round(both / (vw * vh) * 1000) / 10,
        notice_pct: Math.round(area(nc) / (vw * vh) * 1000) / 10,
        banner_pct: Math.round(area(bc) / (vw * vh) * 1000) / 10,
        overlap: Math.round(area(inter(nc, bc))),
        banner_header_overlap: Math.round(area(inter(bc, clip(hb)))),
        banner_in_viewport: !!bb && bb.top >= 0 && bb.left >= 0
                            && bb.bottom <= vh + 0.5 && bb.right <= vw + 0.5,
        min_contrast: Math.round(min * 100) / 100,
        low_contrast: low,
        // a custom template (banner-minimal.html) has none of its own
        live_polite: live(notice) && (customBanner || live(banner)),
        live_assertive: !!document.querySelector(
            '.rt-notice [role=alert], [data-rt-variant] [role=alert], '
            + '.rt-notice [aria-live=assertive], [data-rt-variant] [aria-live=assertive]'),
    };
}

// What has the focus now, and how much of it the overlays hide.
function focusState() {
    const a = document.activeElement;
    if (!a || a === document.body)
        return null;
    const label = (a.tagName + ':' + (a.getAttribute('aria-label') || a.name
                   || a.textContent.trim().slice(0, 24) || a.type || '')).trim();
    const inOverlay = !!a.closest('.rt-notice, [data-rt-variant]');
    if (inOverlay) {
        const s = getComputedStyle(a);
        return { label, inOverlay,
                 outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 };
    }
    const r = a.getBoundingClientRect();
    const vw = innerWidth, vh = innerHeight;
    const x1 = Math.max(0, r.left), y1 = Math.max(0, r.top);
    const x2 = Math.min(vw, r.right), y2 = Math.min(vh, r.bottom);
    if (!(x2 > x1 && y2 > y1))
        return { label, inOverlay, offscreen: true };
    let covered = 0, total = 0;
    for (let i = 0; i < 5; i++) {
        for (let j = 0; j < 5; j++) {
            const x = x1 + (x2 - x1) * (i + 0.5) / 5, y = y1 + (y2 - y1) * (j + 0.5) / 5;
            const e = document.elementFromPoint(x, y);
            total++;
            if (e && e.closest('.rt-notice, [data-rt-variant]'))
                covered++;
        }
    }
    return { label, inOverlay, covered, total, top: Math.round(r.top) };
}

async function tabThrough(page) {
    const f = { page_focusables: 0, overlay_controls: 0, hidden: [], partly: [],
                no_outline: [], left_overlays: false, path: [] };
    const n = await page.evaluate(() => document.querySelectorAll(
        'a[href], button, input, select, textarea, summary').length);
    const seen = new Set();
    let wasInOverlay = false;
    for (let i = 0; i < n + 8; i++) {
        await page.keyboard.press('Tab');
        const s = await page.evaluate(focusState);
        f.path.push(s ? s.label : null);
        if (wasInOverlay && (!s || !s.inOverlay))
            f.left_overlays = true;
        if (!s) {
            wasInOverlay = false;
            continue;
        }
        wasInOverlay = s.inOverlay;
        const key = `${i}:${s.label}`;
        if (s.inOverlay) {
            f.overlay_controls++;
            if (!s.outline)
                f.no_outline.push(s.label);
            continue;
        }
        if (seen.has(s.label + s.top))
            continue;
        seen.add(s.label + s.top);
        f.page_focusables++;
        if (s.offscreen || s.covered === s.total)
            f.hidden.push(key + (s.offscreen ? ' (off screen)' : ''));
        else if (s.covered)
            f.partly.push(`${key} ${s.covered}/${s.total}`);
    }
    return f;
}

function shotPath(name) {
    return `${opt.shots}/overlay-${name}.png`;
}

async function load(browser, pos, viewport, notice, pageName, js) {
    const name = `${pos} ${viewport} ${notice ? 'notice+banner' : 'banner'} ${pageName}`
                 + (js ? '' : ' no-js');
    const l = { name, position: pos, viewport, notice, page: pageName, js };
    result.loads.push(l);
    let context;
    try {
        const v = await visitorContext(browser, viewport, notice, js);
        context = v.context;
        l.visitor = v.visitor;
        const page = await context.newPage();
        const resp = await page.goto(`${opt.base}/${pos}/${pageName}.html`, { waitUntil: 'load' });
        if (process.env.OVERLAY_DUMP)
            fs.writeFileSync(`${opt.out}/${name.replace(/[ +]+/g, '-')}.html`, await resp.text());
        await page.waitForTimeout(200);
        // without script, the page cannot run an observer: what is
        // measured there is the CSS alone (boxes, focus)
        l.perf = js ? await page.evaluate(perf)
                    : { cls: 0, cls_overlay: 0, lcp: { what: '(no script)' } };
        l.m = { ...(await page.evaluate(measure)), cls: l.perf.cls,
                cls_overlay: l.perf.cls_overlay, lcp: l.perf.lcp };
        if (pageName === 'product' || viewport === 'phone') {
            const p = shotPath(name.replace(/[ +]+/g, '-'));
            await page.screenshot({ path: p });
            result.screenshots.push(p);
        }
        l.focus = await tabThrough(page);
        run.log(`${name}: covered ${l.m.covered_pct} %, cls ${l.m.cls}, `
                + `lcp ${l.m.lcp && l.m.lcp.what}, hidden ${l.focus.hidden.length}`);
    } catch (e) {
        l.error = String(e && e.stack || e).split('\n').slice(0, 6).join('\n');
        run.log(`${name}: ${l.error}`);
    } finally {
        if (context)
            await context.close().catch(() => {});
    }
}

// Escape: in the banner, then with the focus nowhere; and in a shop field.
async function escape(context, r, visitor) {
    r.visitor = visitor;
    const page = await context.newPage();
    const url = `${opt.base}/bottom-right/product.html`;
    await page.goto(url, { waitUntil: 'load' });
    r.url_before = page.url();
    r.navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) r.navigations++; });
    const count = () => page.evaluate(() => ({
        banner: document.querySelectorAll('.rt-banner[role]').length,
        notice: document.querySelectorAll('.rt-notice[role]').length,
    }));
    const status = (which) => page.evaluate((w) => {
        const s = [...document.querySelectorAll('.rt-sr')]
            .map((e) => ({ text: e.textContent, role: e.getAttribute('role') }))
            .filter((s) => s.text);
        return s.find((x) => x.text.includes(w)) || {};
    }, which);
    const c0 = await count();
    r.before_banner = c0.banner;
    r.before_notice = c0.notice;
    await page.locator('.rt-banner summary').focus();
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.querySelector('.rt-banner[role]'),
                               null, { timeout: 5000 });
    const st = await status('Reminder');
    r.after_first = { ...(await count()), status: st.text, status_live: st.role };
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.querySelector('.rt-notice[role]'),
                               null, { timeout: 5000 });
    const st2 = await status('notice');
    r.after_second = { ...(await count()), status: st2.text };
    r.url_after = page.url();
    r.navigations_during = r.navigations;
    const p = shotPath('escape-after');
    await page.screenshot({ path: p });
    result.screenshots.push(p);
    await page.reload({ waitUntil: 'load' });
    r.reload = await count();
}

async function shopEscape(context, r) {
    const page = await context.newPage();
    await page.goto(`${opt.base}/bottom-right/product.html`, { waitUntil: 'load' });
    await page.locator('input[type=number]').focus();
    await page.keyboard.press('Escape');
    await page.waitForTimeout(500);
    r.shop_escape = (await page.locator('.rt-banner[role]').count()) === 1
                    ? 'kept' : 'dismissed';
}

async function details(context, r) {
    const page = await context.newPage();
    await page.goto(`${opt.base}/bottom-right/product.html`, { waitUntil: 'load' });
    const items = () => page.evaluate(() => [...document.querySelectorAll('.rt-banner li')]
        .filter((li) => li.checkVisibility() && li.getClientRects().length).length);
    r.items_before = await items();
    await page.locator('.rt-banner summary').click();
    await page.waitForFunction(() => [...document.querySelectorAll('.rt-banner img')]
        .every((i) => i.complete), null, { timeout: 5000 }).catch(() => {});
    r.items_after = await items();
    r.covered_pct = (await page.evaluate(measure)).covered_pct;
    const p = shotPath('phone-details-open');
    await page.screenshot({ path: p });
    result.screenshots.push(p);
}

run.main(async (browser) => {
    const positions = opt.positions.split(',');
    for (const pos of positions)
        for (const viewport of Object.keys(VIEWPORTS))
            for (const notice of [false, true])
                for (const pageName of PAGES)
                    await load(browser, pos, viewport, notice, pageName, true);
    for (const viewport of Object.keys(VIEWPORTS))
        for (const pageName of PAGES)
            await load(browser, 'bottom-right', viewport, true, pageName, false);
    // conf-examples/banner-minimal.html, the demo's other variant
    for (const viewport of Object.keys(VIEWPORTS))
        for (const notice of [false, true])
            await load(browser, 'minimal', viewport, notice, 'product', true);

    result.escape = {};
    try {
        const v = await visitorContext(browser, 'desktop', true, true);
        try {
            await escape(v.context, result.escape, v.visitor);
        } finally {
            await v.context.close().catch(() => {});
        }
        const w = await visitorContext(browser, 'desktop', false, true);
        try {
            await shopEscape(w.context, result.escape);
        } finally {
            await w.context.close().catch(() => {});
        }
    } catch (e) {
        result.escape.error = String(e && e.stack || e).split('\n').slice(0, 6).join('\n');
    }
    result.details = {};
    try {
        const v = await visitorContext(browser, 'phone', false, true);
        try {
            await details(v.context, result.details);
        } finally {
            await v.context.close().catch(() => {});
        }
    } catch (e) {
        result.details.error = String(e && e.stack || e).split('\n').slice(0, 6).join('\n');
    }
});
