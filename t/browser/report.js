'use strict';
// The campaign report as the shop owner sees it, run by
// t/095-browser-report.t.
//
//   node t/browser/report.js --base http://127.0.0.1:PORT \
//       --path /report[,/other-report...] --shots DIR
//
// Each page is loaded once per size, desktop (1280x800) and phone
// (390x844), in a fresh context: scenarios "desktop", "phone" for the
// first, "desktop-1", "phone-1" for the second...  Recorded at each size: the status, the
// title and the h1, the text of every table's rows (cells joined by "|"),
// the verdicts, each chart (<svg role="img">) with its title, its
// rendered box and the number of lines drawn, the legends, whether the
// page is wider than the viewport (it must not be: wide tables scroll in
// their own box), the console's messages (a policy violation would show
// there) and a full-page screenshot (--shots/report-SCENARIO.png).
// Prints one JSON line on stdout (t/browser/lib.js).

const STEP_MS = 10000;
const VIEWPORTS = {
    desktop: { width: 1280, height: 800 },
    phone: { width: 390, height: 844 },
};

const run = require('./lib').browserRun({
    args: { base: 'URL', path: 'PATH', shots: 'DIR' },
    totalMs: 90000,
    launchMs: 30000,
    stepMs: STEP_MS,
    result: { screenshots: [] },
});
const { opt, result } = run;

async function look(context, r, path, name) {
    const page = await context.newPage();
    r.console = [];
    r.page_errors = [];
    page.on('console', (m) => r.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => r.page_errors.push(e.message));
    const resp = await page.goto(opt.base + path, { waitUntil: 'load' });
    r.status = resp.status();
    r.csp = resp.headers()['content-security-policy'] || null;
    Object.assign(r, await observe(page));
    const shot = `${opt.shots}/report-${name}.png`;
    r.screenshot_bytes = (await page.screenshot({ path: shot, fullPage: true })).length;
    result.screenshots.push(shot);
    // the charts' tables open as a reader taps them
    await page.evaluate(() => document.querySelectorAll('details')
        .forEach((d) => { d.open = true; }));
    r.opened_tables = await page.evaluate(() =>
        [...document.querySelectorAll('details table')]
            .filter((t) => t.getClientRects().length > 0).length);
    const open = `${opt.shots}/report-${name}-open.png`;
    await page.screenshot({ path: open, fullPage: true });
    result.screenshots.push(open);
}

async function observe(page) {
    return page.evaluate(() => {
        const text = (e) => e.innerText.replace(/\s+/g, ' ').trim();
        const box = (e) => {
            const b = e.getBoundingClientRect();
            return { x: b.x, y: b.y, w: b.width, h: b.height };
        };
        return {
            title: document.title,
            h1: text(document.querySelector('h1')),
            tables: [...document.querySelectorAll('table')].map((t) => ({
                visible: t.getClientRects().length > 0,
                rows: [...t.rows].map((r) => [...r.cells].map(text).join('|')),
            })),
            verdicts: [...document.querySelectorAll('.verdicts li')].map(text),
            alert: [...document.querySelectorAll('[role="alert"]')].map(text),
            alert_top: (() => {
                const a = document.querySelector('[role="alert"]');
                return a ? a.getBoundingClientRect().top : null;
            })(),
            verdict_top: (() => {
                const v = document.querySelector('.verdicts');
                return v ? v.getBoundingClientRect().top : null;
            })(),
            charts: [...document.querySelectorAll('svg[role="img"]')].map((s) => ({
                title: (s.querySelector('title') || {}).textContent || null,
                desc: (s.querySelector('desc') || {}).textContent || null,
                labelled: (s.getAttribute('aria-labelledby') || '').split(' ')
                    .every((id) => id && document.getElementById(id)),
                box: box(s),
                lines: s.querySelectorAll('polyline').length,
                line_boxes: [...s.querySelectorAll('polyline')]
                    .map((l) => l.getBBox()).map((b) => b.width),
                legend: [...((s.closest('figure') || s).querySelectorAll('.legend li'))]
                    .map(text),
            })),
            scroll_width: document.documentElement.scrollWidth,
            inner_width: innerWidth,
            body_text: text(document.body),
        };
    });
}

run.main(async (browser) => {
    const paths = opt.path.split(',');
    for (const [i, path] of paths.entries()) {
        for (const [vp, size] of Object.entries(VIEWPORTS)) {
            const name = i ? `${vp}-${i}` : vp;
            await run.scenario(name, () => run.newContext(browser, { viewport: size }),
                (context, r) => look(context, r, path, name));
        }
    }
});
