'use strict';
// Shared by the real-browser scripts t/browser/notice.js (t/090-browser.t)
// and t/browser/banner.js (t/091-browser-banner.t).
//
//   const run = require('./lib').browserRun({
//       args: { base: 'URL', out: 'DIR' },    // all required, in usage order
//       totalMs: 50000, launchMs: 20000, stepMs: 8000,
//       result: { dialogs: [] },              // more fields of the result
//   });
//   run.main(async (browser) => {
//       await run.scenario('name', () => run.newContext(browser), fn);
//   });
//
// Drives Debian's Chromium (/usr/bin/chromium) with playwright-core (no
// browser download).  Playwright itself gives the browser a new empty
// profile (user-data-dir) under os.tmpdir() and removes it on close.  The
// script prints one JSON line on stdout, run.result: the observations,
// which the .t file asserts (Test::Retarget::Browser reads it).  A
// scenario that throws records its error and the others still run.
// Progress goes to stderr (run.log).  Every wait is bounded (stepMs); the
// whole run gives up after totalMs.

const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = '/usr/bin/chromium';
const MAX_TABS = 30;

function isLocal(url) {
    return /^http:\/\/127\.0\.0\.1(:\d+)?\//.test(url);
}

// The first lines of an error's stack, as text.
function errorText(e, lines) {
    return String(e && e.stack || e).split('\n').slice(0, lines).join('\n');
}

// The options given as "--name value", every name of spec (name => what
// the value is, for the usage line) required; exits 2 on a bad one.
function parseArgs(argv, spec) {
    const script = path.basename(process.argv[1] || 'script.js');
    const names = Object.keys(spec);
    const usage = (msg) => {
        process.stderr.write(`${script}: ${msg}\n`
            + `usage: node ${script} `
            + names.map((n) => `--${n} ${spec[n]}`).join(' ') + '\n');
        process.exit(2);
    };
    const o = {};
    for (let i = 0; i < argv.length; i += 2) {
        const name = /^--/.test(argv[i]) ? argv[i].slice(2) : null;
        if (!name || !Object.prototype.hasOwnProperty.call(spec, name)
            || argv[i + 1] === undefined)
        {
            usage(`bad argument ${argv[i]}`);
        }
        o[name] = argv[i + 1];
    }
    if (names.some((n) => !o[n])) {
        const flags = names.map((n) => `--${n}`);
        usage(`${flags.slice(0, -1).join(', ')} and ${flags[flags.length - 1]}`
              + ' are required');
    }
    return o;
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

// Opens url in a new page of context and looks for the region (ARIA
// landmark) named name; records in r the response's status and source,
// how many such regions there are and whether the one is visible.
// Returns { page, region }.
async function openWithRegion(context, url, name, r) {
    const page = await context.newPage();
    const resp = await page.goto(url, { waitUntil: 'load' });
    r.status = resp.status();
    r.source = await resp.text();
    const region = page.getByRole('region', { name });
    r.regions = await region.count();
    r.visible = r.regions === 1 && await region.isVisible();
    return { page, region };
}

// Presses Tab (at most MAX_TABS times) until the focused element is inside
// sel and want(it) is true; pushes "TAG:label-or-text" (null for <body>)
// onto path for every press.  Returns the element reached, { tag, text,
// label, outline }, or null.
async function tabTo(page, sel, want, path) {
    for (let i = 0; i < MAX_TABS; i++) {
        await page.keyboard.press('Tab');
        const f = await page.evaluate((sel) => {
            const e = document.activeElement;
            if (!e || e === document.body)
                return null;
            const s = getComputedStyle(e);
            return {
                tag: e.tagName, text: e.textContent.trim(),
                label: e.getAttribute('aria-label'),
                inside: !!e.closest(sel),
                outline: `${s.outlineStyle} ${s.outlineWidth}`,
            };
        }, sel);
        path.push(f ? `${f.tag}:${f.label || f.text}` : null);
        if (f && f.inside && want(f))
            return f;
    }
    return null;
}

// One run of a browser script: its options, its result and the helpers
// that record into it (see the top of this file).
function browserRun(spec) {
    const opt = parseArgs(process.argv.slice(2), spec.args);
    const started = Date.now();
    const result = {
        node: process.versions.node,
        playwright: require('playwright-core/package.json').version,
        browser: null,
        scenarios: {},
        requests: [],      // every request the browser made: method and URL
        foreign: [],       // requests not to 127.0.0.1, aborted by the route
        ...spec.result,
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

    // Whole-run bound: report what we have, then exit (Playwright's exit
    // handler kills the browser it started).
    const watchdog = setTimeout(() => {
        result.fatal = `gave up after ${spec.totalMs / 1000} s`;
        emit();
        process.exit(3);
    }, spec.totalMs);
    watchdog.unref();

    // A fresh context (empty cookie jar) in which only 127.0.0.1 may be
    // reached: every request is recorded, anything else also as foreign,
    // and fails.  options: more of browser.newContext()'s (viewport...).
    async function newContext(browser, options) {
        const context = await browser.newContext({
            viewport: { width: 1024, height: 700 },
            serviceWorkers: 'block',
            ...options,
        });
        context.setDefaultTimeout(spec.stepMs);
        context.setDefaultNavigationTimeout(spec.stepMs);
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

    // Runs the action and waits for the page it leads to (a form POST
    // answered with 303, or a link answered with 302, then the GET it
    // redirects to) to be loaded.  Records in r.navigations the main
    // frame's exchanges on the way and in r.url_after where it ended.
    async function actAndFollow(page, action, r) {
        const stop = recordNavigations(page);
        const loaded = page.waitForEvent('load', { timeout: spec.stepMs });
        await action();
        await loaded;
        r.navigations = stop();
        r.url_after = page.url();
    }

    // Runs fn(context, r) in the context openContext() gives, r being
    // result.scenarios[name]; an error is recorded in r.error.
    async function scenario(name, openContext, fn) {
        const r = {};
        result.scenarios[name] = r;
        log(`${name}: start`);
        let context;
        try {
            context = await openContext();
            await fn(context, r);
        } catch (e) {
            r.error = errorText(e, 6);
            log(`${name}: ${r.error}`);
        } finally {
            if (context)
                await context.close().catch(() => {});
        }
        log(`${name}: done`);
    }

    // Launches Chromium, runs body(browser), closes it, prints the result
    // and exits: 0, or 1 when something outside a scenario threw.
    function main(body) {
        const launchAndRun = async () => {
            log(`launching ${CHROMIUM}`);
            const browser = await chromium.launch({
                executablePath: CHROMIUM,
                headless: true,
                args: ['--headless', '--no-sandbox', '--disable-gpu',
                       '--disable-quic', '--no-first-run',
                       '--disable-background-networking',
                       '--disable-component-update', '--disable-sync'],
                timeout: spec.launchMs,
            });
            try {
                result.browser = browser.version();
                log(`browser ${result.browser}`);
                await body(browser);
            } finally {
                await browser.close().catch(() => {});
            }
        };
        launchAndRun().then(() => {
            emit();
            process.exit(0);
        }, (e) => {
            result.fatal = errorText(e, 8);
            log(result.fatal);
            emit();
            process.exit(1);
        });
    }

    return {
        opt, result, log, newContext, scenario, main,
        actAndFollow, recordNavigations, openWithRegion, tabTo,
    };
}

module.exports = {
    browserRun, recordNavigations, openWithRegion, tabTo, CHROMIUM, MAX_TABS,
};
