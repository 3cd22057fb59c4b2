
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The report as a page for the shop owner: one self-contained document,
 * no script, no request for anything else, its style inline, readable
 * from a phone's width up.  Every number comes with a sentence saying
 * what it is; the daily series are inline SVG charts, each with a title,
 * a description and its numbers as a table.  Every name is HTML-escaped
 * (variant names are checked at configuration time, but the page does
 * not rely on it).
 */


#include "ngx_http_retarget_report.h"
#include "ngx_http_retarget_template.h"

#include <math.h>


/* the chart's drawing box, in SVG units */
#define NGX_HTTP_RETARGET_CHART_W       400
#define NGX_HTTP_RETARGET_CHART_H       210
#define NGX_HTTP_RETARGET_CHART_LEFT    48
#define NGX_HTTP_RETARGET_CHART_RIGHT   10
#define NGX_HTTP_RETARGET_CHART_TOP     10
#define NGX_HTTP_RETARGET_CHART_BOTTOM  28

/* series colours: .s0 ... in the style; the holdout is grey, dashed */
#define NGX_HTTP_RETARGET_CHART_COLOURS 8

/* the weights' periods listed in the page's table, the latest */
#define NGX_HTTP_RETARGET_REPORT_PERIODS  30


/* the page being written: it grows in r->pool */
typedef struct {
    ngx_pool_t                    *pool;
    u_char                        *start;
    u_char                        *pos;
    u_char                        *end;
    ngx_uint_t                     failed;
} ngx_http_retarget_page_t;


/* what a chart draws of each arm on each day */
typedef double (*ngx_http_retarget_chart_value_pt)(
    ngx_http_retarget_report_arm_t *arm, ngx_uint_t day, ngx_uint_t *valid);


static ngx_int_t ngx_http_retarget_page_grow(ngx_http_retarget_page_t *pg,
    size_t len);
static void ngx_http_retarget_page_raw(ngx_http_retarget_page_t *pg,
    const char *s);
static void ngx_http_retarget_page_printf(ngx_http_retarget_page_t *pg,
    const char *fmt, ...);
static void ngx_http_retarget_page_text(ngx_http_retarget_page_t *pg,
    u_char *s, size_t len);
static void ngx_http_retarget_page_name(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_arm_t *arm);

static void ngx_http_retarget_page_count(ngx_http_retarget_page_t *pg,
    double v);
static void ngx_http_retarget_page_percent(ngx_http_retarget_page_t *pg,
    double v);
static void ngx_http_retarget_page_money(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, double v);
static void ngx_http_retarget_page_date(ngx_http_retarget_page_t *pg,
    u_char *date);
static void ngx_http_retarget_page_time(ngx_http_retarget_page_t *pg,
    time_t t, ngx_uint_t with_time);
static void ngx_http_retarget_page_interval(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, ngx_http_retarget_interval_t *iv,
    ngx_uint_t kind);

static void ngx_http_retarget_page_head(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_srm_alert(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_verdicts(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_arms(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_lifts(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_series(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_attribution(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_srm(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);
static void ngx_http_retarget_page_weights(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp);

static void ngx_http_retarget_page_chart(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, const char *id, const char *title,
    const char *desc, ngx_http_retarget_chart_value_pt value,
    ngx_uint_t percent);
static void ngx_http_retarget_page_axis(ngx_http_retarget_page_t *pg,
    double top, ngx_uint_t percent);
static void ngx_http_retarget_page_legend(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, ngx_uint_t variants_only);
static void ngx_http_retarget_page_chart_table(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, ngx_http_retarget_chart_value_pt value,
    ngx_uint_t percent);
static void ngx_http_retarget_page_weights_chart(
    ngx_http_retarget_page_t *pg, ngx_http_retarget_report_t *rp);
static double ngx_http_retarget_chart_top(double max, ngx_uint_t percent);
static ngx_uint_t ngx_http_retarget_chart_series(
    ngx_http_retarget_report_arm_t *arm);
static void ngx_http_retarget_page_series_class(
    ngx_http_retarget_page_t *pg, ngx_http_retarget_report_arm_t *arm);

static double ngx_http_retarget_chart_eligible(
    ngx_http_retarget_report_arm_t *arm, ngx_uint_t day, ngx_uint_t *valid);
static double ngx_http_retarget_chart_rate(
    ngx_http_retarget_report_arm_t *arm, ngx_uint_t day, ngx_uint_t *valid);

static ngx_int_t ngx_http_retarget_page_done(ngx_http_retarget_page_t *pg,
    ngx_str_t *out);


static char  *ngx_http_retarget_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};


/*
 * Colours of the Okabe-Ito palette (told apart by most colour-blind
 * readers), and a dash for each series too: the lines differ without
 * colour as well.
 */
#define NGX_HTTP_RETARGET_REPORT_STYLE                                       \
    ":root{color-scheme:light;--ink:#1b1f24;--muted:#57606a;"                \
    "--line:#d0d7de;--bg:#fff;--soft:#f6f8fa}"                               \
    "*{box-sizing:border-box}"                                               \
    "body{margin:0;background:var(--bg);color:var(--ink);"                   \
    "font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}"  \
    "main{max-width:60rem;margin:0 auto;padding:1rem}"                       \
    "h1{font-size:1.6rem;margin:.5rem 0}"                                    \
    "h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:1px solid "      \
    "var(--line);padding-bottom:.25rem}"                                     \
    "p,dd,li{max-width:42rem}"                                               \
    ".muted,figcaption,.ci{color:var(--muted)}"                              \
    ".ci{font-size:.85em;white-space:nowrap}"                                \
    ".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}"              \
    "table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:"    \
    "tabular-nums}"                                                          \
    "th,td{padding:.35rem .6rem;border-bottom:1px solid var(--line);"        \
    "text-align:right;vertical-align:top}"                                   \
    "th:first-child,td.text{text-align:left}"                                \
    "thead th{font-size:.85rem;color:var(--muted);font-weight:600}"          \
    ".verdicts{list-style:none;padding:0}"                                   \
    ".verdicts li{border-left:.3rem solid var(--line);padding:.4rem .75rem;" \
    "margin:.5rem 0;background:var(--soft)}"                                 \
    ".verdicts li.better{border-color:#009e73}"                              \
    ".verdicts li.worse{border-color:#d55e00}"                               \
    ".alert{border:2px solid #d55e00;background:#fff4ec;padding:.5rem 1rem;" \
    "margin:1rem 0}"                                                         \
    ".alert h2{border:0;margin:.25rem 0}"                                    \
    "dl.explain dt{font-weight:600;margin-top:.6rem}"                        \
    "dl.explain dd{margin:0 0 0 1rem}"                                       \
    "figure{margin:1rem 0;max-width:40rem}"                                  \
    "svg.chart{width:100%;height:auto;display:block;background:var(--soft)}" \
    "svg.chart text{font-size:11px;fill:var(--muted)}"                       \
    "svg.chart .grid{stroke:var(--line);stroke-width:1}"                     \
    "svg.chart .series{fill:none;stroke-width:2.2;"                          \
    "stroke-linejoin:round}"                                                 \
    ".legend{list-style:none;padding:0;margin:.25rem 0;display:flex;"        \
    "flex-wrap:wrap;gap:.25rem 1rem}"                                        \
    ".key{display:inline-block;width:1.5rem;height:.3rem;"                   \
    "vertical-align:middle;margin-right:.35rem}"                             \
    ".s0{stroke:#0072b2}.k0{background:#0072b2}"                             \
    ".s1{stroke:#e69f00;stroke-dasharray:8 3}.k1{background:#e69f00}"        \
    ".s2{stroke:#009e73;stroke-dasharray:2 2}.k2{background:#009e73}"        \
    ".s3{stroke:#cc79a7;stroke-dasharray:10 3 2 3}.k3{background:#cc79a7}"   \
    ".s4{stroke:#56b4e9;stroke-dasharray:5 5}.k4{background:#56b4e9}"        \
    ".s5{stroke:#d55e00;stroke-dasharray:1 3}.k5{background:#d55e00}"        \
    ".s6{stroke:#f0e442;stroke-dasharray:12 2}.k6{background:#f0e442}"       \
    ".s7{stroke:#332288;stroke-dasharray:4 2 1 2}.k7{background:#332288}"    \
    ".sh{stroke:#6e7781;stroke-dasharray:3 3}"                               \
    ".kh{background:repeating-linear-gradient(90deg,#6e7781 0 3px,"          \
    "transparent 3px 6px)}"                                                  \
    "circle.s0,circle.s1,circle.s2,circle.s3,circle.s4,circle.s5,"           \
    "circle.s6,circle.s7,circle.sh{fill:var(--bg);stroke-width:1.5;"         \
    "stroke-dasharray:none}"                                                 \
    "details{margin:.25rem 0 1rem}summary{cursor:pointer;color:#0550ae}"     \
    "@media (max-width:36rem){main{padding:.6rem}th,td{padding:.3rem .4rem}" \
    "body{font-size:15px}}"


ngx_int_t
ngx_http_retarget_report_page(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, ngx_str_t *out)
{
    ngx_http_retarget_page_t  pg;

    ngx_memzero(&pg, sizeof(ngx_http_retarget_page_t));
    pg.pool = r->pool;

    if (ngx_http_retarget_page_grow(&pg, 32768) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_retarget_page_head(&pg, rp);
    ngx_http_retarget_page_srm_alert(&pg, rp);
    ngx_http_retarget_page_verdicts(&pg, rp);
    ngx_http_retarget_page_arms(&pg, rp);
    ngx_http_retarget_page_lifts(&pg, rp);
    ngx_http_retarget_page_series(&pg, rp);
    ngx_http_retarget_page_attribution(&pg, rp);
    ngx_http_retarget_page_srm(&pg, rp);
    ngx_http_retarget_page_weights(&pg, rp);

    ngx_http_retarget_page_raw(&pg,
        "<footer><p class=\"muted\">Made by ngx_retarget_module. Add "
        "<code>?format=json</code> or <code>?format=csv</code> to the "
        "address for the same numbers as data, <code>?days=N</code> "
        "(1 to 90) for another span.</p></footer>\n</main>\n</body>\n"
        "</html>\n");

    return ngx_http_retarget_page_done(&pg, out);
}


/* the page for a 503 (or a HEAD): the message, and nothing else */

ngx_int_t
ngx_http_retarget_report_error_page(ngx_http_request_t *r,
    const char *message, ngx_str_t *out, ngx_str_t *type)
{
    ngx_http_retarget_page_t  pg;

    ngx_str_set(type, "text/html; charset=utf-8");

    ngx_memzero(&pg, sizeof(ngx_http_retarget_page_t));
    pg.pool = r->pool;

    ngx_http_retarget_page_raw(&pg,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        "\n<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n<title>Campaign results: not available"
        "</title>\n<style>" NGX_HTTP_RETARGET_REPORT_STYLE "</style>\n"
        "</head>\n<body>\n<main>\n<h1>Campaign results</h1>\n"
        "<p class=\"alert\" role=\"alert\">");
    ngx_http_retarget_page_text(&pg, (u_char *) message, ngx_strlen(message));
    ngx_http_retarget_page_raw(&pg, "</p>\n</main>\n</body>\n</html>\n");

    return ngx_http_retarget_page_done(&pg, out);
}


/* room for len more bytes: the page is copied into one twice as big */

static ngx_int_t
ngx_http_retarget_page_grow(ngx_http_retarget_page_t *pg, size_t len)
{
    u_char  *p;
    size_t   size, used;

    if (pg->failed) {
        return NGX_ERROR;
    }

    if ((size_t) (pg->end - pg->pos) >= len) {
        return NGX_OK;
    }

    used = pg->pos - pg->start;
    size = (pg->end - pg->start) * 2;

    if (size < used + len) {
        size = used + len + 4096;
    }

    p = ngx_pnalloc(pg->pool, size);
    if (p == NULL) {
        pg->failed = 1;
        return NGX_ERROR;
    }

    if (used) {
        ngx_memcpy(p, pg->start, used);
    }

    pg->start = p;
    pg->pos = p + used;
    pg->end = p + size;

    return NGX_OK;
}


static void
ngx_http_retarget_page_raw(ngx_http_retarget_page_t *pg, const char *s)
{
    size_t  len;

    len = ngx_strlen(s);

    if (ngx_http_retarget_page_grow(pg, len) == NGX_OK) {
        pg->pos = ngx_cpymem(pg->pos, s, len);
    }
}


/* trusted text: numbers and the page's own words; names go by page_text */

static void
ngx_http_retarget_page_printf(ngx_http_retarget_page_t *pg, const char *fmt,
    ...)
{
    u_char   *p;
    va_list   args;

    /* nothing written here is longer: a few numbers and words */

    if (ngx_http_retarget_page_grow(pg, 1024) != NGX_OK) {
        return;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(pg->pos, pg->pos + 1024, fmt, args);
    va_end(args);

    pg->pos = p;
}


static void
ngx_http_retarget_page_text(ngx_http_retarget_page_t *pg, u_char *s,
    size_t len)
{
    size_t  n;

    n = ngx_http_retarget_escape_html(NULL, s, len);

    if (ngx_http_retarget_page_grow(pg, n) == NGX_OK) {
        pg->pos += ngx_http_retarget_escape_html(pg->pos, s, len);
    }
}


static void
ngx_http_retarget_page_name(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_arm_t *arm)
{
    if (arm->holdout) {
        ngx_http_retarget_page_raw(pg, "holdout");
        return;
    }

    ngx_http_retarget_page_text(pg, arm->name.data, arm->name.len);
}


/* 1234567 as "1,234,567" */

static void
ngx_http_retarget_page_count(ngx_http_retarget_page_t *pg, double v)
{
    u_char    digits[NGX_INT64_LEN], *p, *last;
    int64_t   n;
    size_t    len, lead;

    if (!isfinite(v) || v < 0 || v > 1e15) {
        v = 0;
    }

    n = (int64_t) (v + 0.5);

    last = ngx_sprintf(digits, "%L", n);
    len = last - digits;
    lead = len % 3 ? len % 3 : 3;

    if (ngx_http_retarget_page_grow(pg, len + len / 3) != NGX_OK) {
        return;
    }

    p = pg->pos;
    p = ngx_cpymem(p, digits, lead);

    for (last = digits + lead; last < digits + len; last += 3) {
        *p++ = ',';
        p = ngx_cpymem(p, last, 3);
    }

    pg->pos = p;
}


/* a rate as a percent: two decimals under 10 %, one above */

static void
ngx_http_retarget_page_percent(ngx_http_retarget_page_t *pg, double v)
{
    double  pct;

    pct = v * 100;

    if (!isfinite(pct) || fabs(pct) > 1e9) {
        ngx_http_retarget_page_raw(pg, "&ndash;");
        return;
    }

    if (fabs(pct) < 10) {
        ngx_http_retarget_page_printf(pg, "%s%.2f&nbsp;%%",
                                      pct < 0 ? "&minus;" : "", fabs(pct));

    } else {
        ngx_http_retarget_page_printf(pg, "%s%.1f&nbsp;%%",
                                      pct < 0 ? "&minus;" : "", fabs(pct));
    }
}


static void
ngx_http_retarget_page_money(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, double v)
{
    if (!isfinite(v) || v < 0 || v > 1e13) {
        v = 0;
    }

    if (ngx_http_retarget_page_grow(pg, NGX_HTTP_RETARGET_MONEY_LEN)
        == NGX_OK)
    {
        pg->pos = ngx_http_retarget_money_format(pg->pos,
                                                 (int64_t) (v * 100 + 0.5),
                                                 rp->currency);
    }
}


/* "20261202" as "2 Dec" */

static void
ngx_http_retarget_page_date(ngx_http_retarget_page_t *pg, u_char *date)
{
    ngx_int_t  month, day;

    month = ngx_atoi(date + 4, 2);
    day = ngx_atoi(date + 6, 2);

    if (month < 1 || month > 12 || day == NGX_ERROR) {
        return;
    }

    ngx_http_retarget_page_printf(pg, "%i %s", day,
                                  ngx_http_retarget_months[month - 1]);
}


static void
ngx_http_retarget_page_time(ngx_http_retarget_page_t *pg, time_t t,
    ngx_uint_t with_time)
{
    ngx_tm_t  tm;

    ngx_gmtime(t, &tm);

    ngx_http_retarget_page_printf(pg, "%d %s %d", tm.ngx_tm_mday,
                                  ngx_http_retarget_months[tm.ngx_tm_mon - 1],
                                  tm.ngx_tm_year);

    if (with_time) {
        ngx_http_retarget_page_printf(pg, ", %02d:%02d UTC", tm.ngx_tm_hour,
                                      tm.ngx_tm_min);
    }
}


/* kind: 0 a rate, 1 a number per visitor, 2 money per visitor */

static void
ngx_http_retarget_page_interval(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, ngx_http_retarget_interval_t *iv,
    ngx_uint_t kind)
{
    if (!iv->valid) {
        ngx_http_retarget_page_raw(pg, "<td>&ndash;</td>");
        return;
    }

    ngx_http_retarget_page_raw(pg, "<td>");

    switch (kind) {

    case 0:
        ngx_http_retarget_page_percent(pg, iv->est);
        ngx_http_retarget_page_raw(pg, "<br><span class=\"ci\">");
        ngx_http_retarget_page_percent(pg, iv->lo);
        ngx_http_retarget_page_raw(pg, " to ");
        ngx_http_retarget_page_percent(pg, iv->hi);
        break;

    case 1:
        ngx_http_retarget_page_printf(pg, "%.2f<br><span class=\"ci\">"
                                      "%.2f to %.2f",
                                      iv->est, ngx_max(iv->lo, 0.0), iv->hi);
        break;

    default:
        ngx_http_retarget_page_money(pg, rp, iv->est);
        ngx_http_retarget_page_raw(pg, "<br><span class=\"ci\">");
        ngx_http_retarget_page_money(pg, rp, iv->lo);
        ngx_http_retarget_page_raw(pg, " to ");
        ngx_http_retarget_page_money(pg, rp, iv->hi);
    }

    ngx_http_retarget_page_raw(pg, "</span></td>");
}


static void
ngx_http_retarget_page_head(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    ngx_http_retarget_page_raw(pg,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        "\n<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n<title>Campaign results</title>\n<style>"
        NGX_HTTP_RETARGET_REPORT_STYLE "</style>\n</head>\n<body>\n<main>\n"
        "<h1>Campaign results</h1>\n<p>");

    ngx_http_retarget_page_printf(pg, "The last %ui day%s, ", rp->ndays,
                                  rp->ndays == 1 ? "" : "s");
    ngx_http_retarget_page_time(pg, rp->start, 0);
    ngx_http_retarget_page_raw(pg, " to ");
    ngx_http_retarget_page_time(pg, rp->now, 1);
    ngx_http_retarget_page_raw(pg, " (days are UTC days; today is counted "
                                   "so far). ");

    if (rp->holdout) {
        ngx_http_retarget_page_printf(pg,
            "%ui&nbsp;%% of the visitors who could have seen a reminder "
            "are kept as a <strong>holdout</strong>: they see none, so "
            "that what the reminders change can be measured against "
            "them.", rp->holdout);

    } else {
        ngx_http_retarget_page_raw(pg,
            "There is no holdout (<code>retarget_holdout</code> is 0): the "
            "variants can be compared with each other, but nothing says "
            "what the reminders change against showing none.");
    }

    ngx_http_retarget_page_raw(pg, "</p>\n");
}


static void
ngx_http_retarget_page_srm_alert(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    if (!rp->srm.mismatch) {
        return;
    }

    ngx_http_retarget_page_raw(pg,
        "<section class=\"alert\" role=\"alert\">\n<h2>Warning: the groups "
        "are not the sizes they should be</h2>\n<p>The visitors are not "
        "split between the groups as configured (see "
        "<a href=\"#split\">the traffic split check</a>). Something counts "
        "or assigns visitors unevenly, and until that is found the results "
        "below cannot be trusted.</p>\n</section>\n");
}


/* each variant's comparison with the holdout, or with the other variants */

static void
ngx_http_retarget_page_verdicts(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    u_char                          buf[NGX_HTTP_RETARGET_REPORT_VERDICT_LEN];
    u_char                         *p;
    ngx_uint_t                      i;
    const char                     *cls;
    ngx_http_retarget_report_cmp_t *c;

    ngx_http_retarget_page_raw(pg, "<section>\n<h2>Verdict</h2>\n");

    if (rp->ncmps == 0) {
        ngx_http_retarget_page_raw(pg,
            "<p>There is a single group and nothing to compare it with: "
            "configure a holdout (<code>retarget_holdout 10%</code>) or a "
            "second variant.</p>\n</section>\n");
        return;
    }

    ngx_http_retarget_page_raw(pg, "<ul class=\"verdicts\">\n");

    for (i = 0; i < rp->ncmps; i++) {
        c = &rp->cmps[i];

        /* against the holdout when there is one; else every pair */

        if (rp->holdout && !rp->arms[c->a].holdout) {
            continue;
        }

        cls = (c->verdict == ngx_http_retarget_verdict_better) ? "better"
              : (c->verdict == ngx_http_retarget_verdict_worse) ? "worse"
              : "open";

        p = ngx_http_retarget_report_verdict(rp, c, buf, buf + sizeof(buf));

        /* a sentence of its own here */
        if (p > buf && buf[0] >= 'a' && buf[0] <= 'z') {
            buf[0] = (u_char) (buf[0] - 'a' + 'A');
        }

        ngx_http_retarget_page_printf(pg, "<li class=\"%s\"><strong>", cls);
        ngx_http_retarget_page_name(pg, &rp->arms[c->b]);
        ngx_http_retarget_page_raw(pg, "</strong>: ");
        ngx_http_retarget_page_text(pg, buf, p - buf);
        ngx_http_retarget_page_raw(pg, ".</li>\n");
    }

    ngx_http_retarget_page_raw(pg,
        "</ul>\n<p class=\"muted\">A verdict is given once each group has "
        "150 eligible visitors and the interval of the difference no longer "
        "includes zero. The intervals stay valid however often you look: "
        "checking this page every morning does not make a chance "
        "difference look like a real one.</p>\n</section>\n");
}


static void
ngx_http_retarget_page_arms(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    ngx_uint_t                       a;
    ngx_http_retarget_report_arm_t  *arm;

    ngx_http_retarget_page_raw(pg,
        "<section>\n<h2>Each group</h2>\n<div class=\"scroll\"><table>\n"
        "<thead><tr><th scope=\"col\">Group</th>"
        "<th scope=\"col\">Eligible visitors</th>"
        "<th scope=\"col\">Conversion rate</th>"
        "<th scope=\"col\">Revenue per visitor</th>"
        "<th scope=\"col\">Click rate</th>"
        "<th scope=\"col\">Reminders per visitor</th>"
        "<th scope=\"col\">Purchases</th>"
        "<th scope=\"col\">Revenue</th></tr></thead>\n<tbody>\n");

    for (a = 0; a < rp->narms; a++) {
        arm = &rp->arms[a];

        ngx_http_retarget_page_raw(pg, "<tr><th scope=\"row\">");
        ngx_http_retarget_page_name(pg, arm);
        ngx_http_retarget_page_raw(pg, "</th><td>");
        ngx_http_retarget_page_count(pg,
                                 arm->people[ngx_http_retarget_rp_eligible]);
        ngx_http_retarget_page_raw(pg, "</td>");

        /* the numbers to compare first: a phone shows the first columns */

        ngx_http_retarget_page_interval(pg, rp, &arm->conversion_rate, 0);
        ngx_http_retarget_page_interval(pg, rp, &arm->revenue, 2);

        /* the holdout clicks nothing; its pages are those withheld */
        ngx_http_retarget_page_interval(pg, rp, &arm->click_rate, 0);
        ngx_http_retarget_page_interval(pg, rp, &arm->per_visitor, 1);
        ngx_http_retarget_page_raw(pg, "<td>");
        ngx_http_retarget_page_count(pg,
                                     arm->sum[ngx_http_retarget_rd_buyers]);
        ngx_http_retarget_page_raw(pg, "</td><td>");
        ngx_http_retarget_page_money(pg, rp,
                               arm->sum[ngx_http_retarget_rd_buyer_revenue]);
        ngx_http_retarget_page_raw(pg, "</td></tr>\n");
    }

    ngx_http_retarget_page_raw(pg,
        "</tbody></table></div>\n"
        "<p class=\"muted\">Below each number, in grey: its 95&nbsp;% "
        "interval, the range the true value is in 19 times out of 20. The "
        "fewer the visitors, the wider it is.</p>\n"
        "<dl class=\"explain\">\n"
        "<dt>Eligible visitors</dt><dd>Different people a reminder was due "
        "for: shown one (a variant) or, in the holdout, kept from seeing "
        "it. Each person counts once over the whole span, however often "
        "they came back. Counted with Redis' HyperLogLog, which is accurate "
        "to about 1&nbsp;%.</dd>\n"
        "<dt>Conversion rate</dt><dd>The share of eligible visitors who "
        "bought something within the attribution window of the reminder "
        "due to them, whether they clicked it or not. Every group is "
        "counted the same way, which is what makes them comparable.</dd>\n"
        "<dt>Revenue per visitor</dt><dd>What those purchases brought, "
        "divided by all eligible visitors, buyers or not.</dd>\n"
        "<dt>Click rate</dt><dd>The share of eligible visitors who clicked "
        "a reminder at least once.</dd>\n"
        "<dt>Reminders per visitor</dt><dd>Pages with a reminder shown, per "
        "eligible visitor (for the holdout: the pages on which one was held "
        "back).</dd>\n"
        "<dt>Purchases and revenue</dt><dd>The purchases counted for the "
        "conversion rate, and their amounts.</dd>\n</dl>\n</section>\n");
}


static void
ngx_http_retarget_page_lifts(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    u_char                          buf[NGX_HTTP_RETARGET_REPORT_VERDICT_LEN];
    u_char                         *p;
    ngx_uint_t                      i;
    ngx_http_retarget_report_cmp_t *c;

    if (rp->ncmps == 0) {
        return;
    }

    ngx_http_retarget_page_raw(pg,
        "<section>\n<h2>Lift: each variant against the others</h2>\n"
        "<div class=\"scroll\"><table>\n<thead><tr>"
        "<th scope=\"col\">Variant</th><th scope=\"col\">Against</th>"
        "<th scope=\"col\">Difference in conversion rate</th>"
        "<th scope=\"col\">Relative lift</th>"
        "<th scope=\"col\" class=\"text\">What it says</th></tr></thead>\n"
        "<tbody>\n");

    for (i = 0; i < rp->ncmps; i++) {
        c = &rp->cmps[i];

        ngx_http_retarget_page_raw(pg, "<tr><th scope=\"row\">");
        ngx_http_retarget_page_name(pg, &rp->arms[c->b]);
        ngx_http_retarget_page_raw(pg, "</th><td class=\"text\">");
        ngx_http_retarget_page_name(pg, &rp->arms[c->a]);
        ngx_http_retarget_page_raw(pg, "</td>");

        if (c->diff.valid) {
            ngx_http_retarget_page_raw(pg, "<td>");
            ngx_http_retarget_page_printf(pg, "%s%.2f points",
                                          c->diff.est < 0 ? "&minus;" : "+",
                                          fabs(c->diff.est * 100));
            ngx_http_retarget_page_printf(pg,
                                          "<br><span class=\"ci\">"
                                          "%s%.2f to %s%.2f</span></td>",
                                          c->diff.lo < 0 ? "&minus;" : "+",
                                          fabs(c->diff.lo * 100),
                                          c->diff.hi < 0 ? "&minus;" : "+",
                                          fabs(c->diff.hi * 100));

        } else {
            ngx_http_retarget_page_raw(pg, "<td>&ndash;</td>");
        }

        if (c->rel.valid && isfinite(c->rel.est)) {
            ngx_http_retarget_page_raw(pg, "<td>");
            ngx_http_retarget_page_raw(pg, c->rel.est < 0 ? "" : "+");
            ngx_http_retarget_page_percent(pg, c->rel.est);
            ngx_http_retarget_page_raw(pg, "<br><span class=\"ci\">");
            ngx_http_retarget_page_percent(pg, c->rel.lo);
            ngx_http_retarget_page_raw(pg, " to ");
            ngx_http_retarget_page_percent(pg, c->rel.hi);
            ngx_http_retarget_page_raw(pg, "</span></td>");

        } else {
            ngx_http_retarget_page_raw(pg, "<td>&ndash;</td>");
        }

        p = ngx_http_retarget_report_verdict(rp, c, buf, buf + sizeof(buf));

        ngx_http_retarget_page_raw(pg, "<td class=\"text\">");
        ngx_http_retarget_page_text(pg, buf, p - buf);
        ngx_http_retarget_page_raw(pg, "</td></tr>\n");
    }

    ngx_http_retarget_page_raw(pg,
        "</tbody></table></div>\n<dl class=\"explain\">\n"
        "<dt>Difference in conversion rate</dt><dd>The variant's conversion "
        "rate minus the other's, in percentage points: +0.50 points means "
        "5 more buyers in every 1,000 eligible visitors.</dd>\n"
        "<dt>Relative lift</dt><dd>The same difference as a share of the "
        "other's rate: +20&nbsp;% means one fifth more buyers.</dd>\n"
        "<dt>The intervals</dt><dd>Always-valid 95&nbsp;% intervals (a "
        "sequential test, mSPRT): wider than the usual ones at first, and "
        "in exchange true whenever you look, so the page can be read "
        "every day and a verdict acted on the day it appears.</dd>\n"
        "<dt>Days needed</dt><dd>At the rate new eligible visitors came "
        "in over the last 7 days, and if the rates stay as they are: about "
        "when the interval will be narrow enough to tell.</dd>\n</dl>\n"
        "</section>\n");
}


static void
ngx_http_retarget_page_series(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    ngx_http_retarget_page_raw(pg, "<section>\n<h2>Day by day</h2>\n");

    ngx_http_retarget_page_chart(pg, rp, "eligible",
        "Eligible visitors per day",
        "Different visitors a reminder was due for, each day, one line per "
        "group.", ngx_http_retarget_chart_eligible, 0);

    ngx_http_retarget_page_chart(pg, rp, "rate",
        "Conversion rate per day",
        "The share of each day's eligible visitors who bought, one line per "
        "group; days without visitors are left out.",
        ngx_http_retarget_chart_rate, 1);

    ngx_http_retarget_page_raw(pg,
        "<p class=\"muted\">A single day says little: its numbers are "
        "small and move a lot. The totals above, over all the days, are "
        "what to go by. A visitor who comes back on another day counts on "
        "each day here, and once in the totals.</p>\n</section>\n");
}


static void
ngx_http_retarget_page_attribution(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    ngx_uint_t                       a;
    ngx_http_retarget_report_arm_t  *arm;

    ngx_http_retarget_page_raw(pg,
        "<section>\n<h2>Where the purchases came from</h2>\n"
        "<div class=\"scroll\"><table>\n<thead><tr>"
        "<th scope=\"col\">Group</th>"
        "<th scope=\"col\">After a click</th>"
        "<th scope=\"col\">Their revenue</th>"
        "<th scope=\"col\">Buyers after a click</th>"
        "<th scope=\"col\">After a view</th>"
        "<th scope=\"col\">Their revenue</th>"
        "<th scope=\"col\">Buyers after a view</th></tr></thead>\n<tbody>\n");

    for (a = 0; a < rp->narms; a++) {
        arm = &rp->arms[a];

        ngx_http_retarget_page_raw(pg, "<tr><th scope=\"row\">");
        ngx_http_retarget_page_name(pg, arm);
        ngx_http_retarget_page_raw(pg, "</th><td>");

        if (arm->holdout) {
            ngx_http_retarget_page_raw(pg,
                "&ndash;</td><td>&ndash;</td><td>&ndash;</td><td>");

        } else {
            ngx_http_retarget_page_count(pg,
                                   arm->sum[ngx_http_retarget_rd_conversions]);
            ngx_http_retarget_page_raw(pg, "</td><td>");
            ngx_http_retarget_page_money(pg, rp,
                                   arm->sum[ngx_http_retarget_rd_revenue]);
            ngx_http_retarget_page_raw(pg, "</td><td>");
            ngx_http_retarget_page_count(pg,
                           arm->people[ngx_http_retarget_rp_click_converters]);
            ngx_http_retarget_page_raw(pg, "</td><td>");
        }

        /* the holdout's purchases within the view window: conversions: */

        ngx_http_retarget_page_count(pg, arm->holdout
                               ? arm->sum[ngx_http_retarget_rd_conversions]
                           : arm->sum[ngx_http_retarget_rd_view_conversions]);
        ngx_http_retarget_page_raw(pg, "</td><td>");
        ngx_http_retarget_page_money(pg, rp, arm->holdout
                               ? arm->sum[ngx_http_retarget_rd_revenue]
                               : arm->sum[ngx_http_retarget_rd_view_revenue]);
        ngx_http_retarget_page_raw(pg, "</td><td>");
        ngx_http_retarget_page_count(pg,
                            arm->people[ngx_http_retarget_rp_view_converters]);
        ngx_http_retarget_page_raw(pg, "</td></tr>\n");
    }

    ngx_http_retarget_page_raw(pg,
        "</tbody></table></div>\n<p class=\"muted\">The purchases as the "
        "daily counters attribute them: to a reminder clicked within the "
        "click window (7 days unless <code>retarget_attribution</code> says "
        "otherwise), else to a reminder seen within the view window (1 "
        "day); for the holdout, to the reminder it was kept from seeing. "
        "The windows differ, so these are not for comparing groups: the "
        "conversion rate above is.</p>\n</section>\n");
}


static void
ngx_http_retarget_page_srm(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    double                           total;
    ngx_uint_t                       i, a;
    ngx_http_retarget_report_srm_t  *s;

    s = &rp->srm;

    ngx_http_retarget_page_raw(pg,
        "<section id=\"split\">\n<h2>Traffic split check</h2>\n");

    if (s->mode == ngx_http_retarget_srm_none) {
        ngx_http_retarget_page_raw(pg,
            "<p>There are not two groups to check the split of.</p>\n"
            "</section>\n");
        return;
    }

    if (s->mode == ngx_http_retarget_srm_holdout) {
        ngx_http_retarget_page_raw(pg,
            "<p>The optimizer has moved the variants' weights, so only the "
            "holdout is checked against all the variants together: their "
            "split among themselves is the optimizer's choice.</p>\n");
    }

    total = 0;

    for (i = 0; i < s->groups; i++) {
        total += s->observed[i];
    }

    ngx_http_retarget_page_raw(pg,
        "<div class=\"scroll\"><table>\n<thead><tr>"
        "<th scope=\"col\">Group</th><th scope=\"col\">Eligible visitors</th>"
        "<th scope=\"col\">Share</th><th scope=\"col\">Configured</th>"
        "</tr></thead>\n<tbody>\n");

    a = 0;

    for (i = 0; i < s->groups; i++) {
        ngx_http_retarget_page_raw(pg, "<tr><th scope=\"row\">");

        if (s->mode == ngx_http_retarget_srm_holdout) {
            ngx_http_retarget_page_raw(pg, i == 0 ? "holdout"
                                                  : "all the variants");

        } else {
            while (a < rp->narms && rp->arms[a].configured <= 0) {
                a++;
            }

            ngx_http_retarget_page_name(pg, &rp->arms[a++]);
        }

        ngx_http_retarget_page_raw(pg, "</th><td>");
        ngx_http_retarget_page_count(pg, s->observed[i]);
        ngx_http_retarget_page_raw(pg, "</td><td>");

        if (total > 0) {
            ngx_http_retarget_page_percent(pg, s->observed[i] / total);

        } else {
            ngx_http_retarget_page_raw(pg, "&ndash;");
        }

        ngx_http_retarget_page_raw(pg, "</td><td>");
        ngx_http_retarget_page_percent(pg, s->share[i]);
        ngx_http_retarget_page_raw(pg, "</td></tr>\n");
    }

    ngx_http_retarget_page_raw(pg, "</tbody></table></div>\n<p>");

    if (!s->checked) {
        ngx_http_retarget_page_raw(pg,
            "Not checked yet: each group needs 8 eligible visitors "
            "first.");

    } else if (s->mismatch) {
        ngx_http_retarget_page_printf(pg,
            "<strong>Mismatch</strong> (p&nbsp;=&nbsp;%.6f): a split this "
            "far from the configured one happens by chance less than once "
            "in 1,000 experiments. Look for what treats the groups "
            "differently: a cache that serves one variant's page to "
            "others, a bot that only one group gets, a change of "
            "<code>retarget_variant</code> weights or of the holdout in the "
            "middle of the span. Fix it, then read the results again from "
            "the day after the fix (<code>?days=</code>).", s->p);

    } else {
        ngx_http_retarget_page_printf(pg,
            "The split is as configured (p&nbsp;=&nbsp;%.3f; a warning "
            "shows below 0.001).", s->p);
    }

    ngx_http_retarget_page_raw(pg, "</p>\n</section>\n");
}


static void
ngx_http_retarget_page_weights(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    ngx_uint_t                           i, v, from;
    ngx_http_retarget_report_weights_t  *w;

    if (rp->nweights == 0) {
        return;
    }

    w = &rp->weights[rp->nweights - 1];

    ngx_http_retarget_page_raw(pg,
        "<section>\n<h2>Weights of the optimizer</h2>\n<p>The optimizer "
        "(<code>retarget_optimize</code>) sends more of the variants' "
        "traffic to the variant most likely to convert best, keeping a "
        "floor for each. Its current weights, since ");
    ngx_http_retarget_page_time(pg, w->start, 1);
    ngx_http_retarget_page_raw(pg, ":</p>\n<ul>\n");

    for (v = 0; v < rp->nvariants; v++) {
        ngx_http_retarget_page_raw(pg, "<li>");
        ngx_http_retarget_page_name(pg, &rp->arms[v]);
        ngx_http_retarget_page_raw(pg, ": ");
        ngx_http_retarget_page_percent(pg, w->w[v]);
        ngx_http_retarget_page_raw(pg, " of the variants' visitors</li>\n");
    }

    ngx_http_retarget_page_raw(pg, "</ul>\n");

    if (w->configured) {
        ngx_http_retarget_page_raw(pg,
            "<p>These are the weights as configured: the optimizer moves "
            "them once every variant has the minimum of eligible visitors "
            "(<code>min=</code>).</p>\n");
    }

    ngx_http_retarget_page_weights_chart(pg, rp);

    from = rp->nweights > NGX_HTTP_RETARGET_REPORT_PERIODS
           ? rp->nweights - NGX_HTTP_RETARGET_REPORT_PERIODS : 0;

    ngx_http_retarget_page_raw(pg,
        "<details><summary>The weights as a table</summary>\n"
        "<div class=\"scroll\"><table>\n<thead><tr>"
        "<th scope=\"col\">From</th>");

    for (v = 0; v < rp->nvariants; v++) {
        ngx_http_retarget_page_raw(pg, "<th scope=\"col\">");
        ngx_http_retarget_page_name(pg, &rp->arms[v]);
        ngx_http_retarget_page_raw(pg, "</th>");
    }

    ngx_http_retarget_page_raw(pg, "</tr></thead>\n<tbody>\n");

    for (i = rp->nweights; i-- > from; /* void */) {
        ngx_http_retarget_page_raw(pg, "<tr><th scope=\"row\">");
        ngx_http_retarget_page_time(pg, rp->weights[i].start, 1);
        ngx_http_retarget_page_raw(pg, "</th>");

        for (v = 0; v < rp->nvariants; v++) {
            ngx_http_retarget_page_raw(pg, "<td>");
            ngx_http_retarget_page_percent(pg, rp->weights[i].w[v]);
            ngx_http_retarget_page_raw(pg, "</td>");
        }

        ngx_http_retarget_page_raw(pg, "</tr>\n");
    }

    ngx_http_retarget_page_raw(pg, "</tbody></table></div>\n");

    if (from) {
        ngx_http_retarget_page_printf(pg,
            "<p class=\"muted\">The latest %d periods of %ui; "
            "<code>?format=json</code> has them all.</p>\n",
            NGX_HTTP_RETARGET_REPORT_PERIODS, rp->nweights);
    }

    ngx_http_retarget_page_raw(pg, "</details>\n</section>\n");
}


/* a line chart of the arms over the days, its legend and its table */

static void
ngx_http_retarget_page_chart(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, const char *id, const char *title,
    const char *desc, ngx_http_retarget_chart_value_pt value,
    ngx_uint_t percent)
{
    double       max, top, x, y, w, h, v;
    ngx_uint_t   a, d, valid, open, step;

    max = 0;

    for (a = 0; a < rp->narms; a++) {
        for (d = 0; d < rp->ndays; d++) {
            v = value(&rp->arms[a], d, &valid);

            if (valid && v > max) {
                max = v;
            }
        }
    }

    top = ngx_http_retarget_chart_top(max, percent);

    w = NGX_HTTP_RETARGET_CHART_W - NGX_HTTP_RETARGET_CHART_LEFT
        - NGX_HTTP_RETARGET_CHART_RIGHT;
    h = NGX_HTTP_RETARGET_CHART_H - NGX_HTTP_RETARGET_CHART_TOP
        - NGX_HTTP_RETARGET_CHART_BOTTOM;

    ngx_http_retarget_page_printf(pg,
        "<figure>\n<svg class=\"chart\" role=\"img\" "
        "aria-labelledby=\"%s-title %s-desc\" viewBox=\"0 0 %d %d\" "
        "xmlns=\"http://www.w3.org/2000/svg\">\n"
        "<title id=\"%s-title\">%s</title>\n"
        "<desc id=\"%s-desc\">%s The table below has the numbers.</desc>\n",
        id, id, NGX_HTTP_RETARGET_CHART_W, NGX_HTTP_RETARGET_CHART_H,
        id, title, id, desc);

    ngx_http_retarget_page_axis(pg, top, percent);

    /* the dates under the axis: at most 7 of them */

    step = (rp->ndays + 6) / 7;

    for (d = 0; d < rp->ndays; d += step) {
        x = NGX_HTTP_RETARGET_CHART_LEFT
            + (rp->ndays > 1 ? w * d / (rp->ndays - 1) : w / 2);

        ngx_http_retarget_page_printf(pg,
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x,
            NGX_HTTP_RETARGET_CHART_H - 10);
        ngx_http_retarget_page_date(pg, rp->dates[d]);
        ngx_http_retarget_page_raw(pg, "</text>\n");
    }

    for (a = 0; a < rp->narms; a++) {

        open = 0;

        for (d = 0; d < rp->ndays; d++) {
            v = value(&rp->arms[a], d, &valid);

            if (!valid) {
                /* a gap: the line stops and starts again */
                if (open) {
                    ngx_http_retarget_page_raw(pg, "\"/>\n");
                    open = 0;
                }

                continue;
            }

            x = NGX_HTTP_RETARGET_CHART_LEFT
                + (rp->ndays > 1 ? w * d / (rp->ndays - 1) : w / 2);
            y = NGX_HTTP_RETARGET_CHART_TOP + h - h * ngx_min(v / top, 1.0);

            if (!open) {
                ngx_http_retarget_page_raw(pg, "<polyline class=\"series ");
                ngx_http_retarget_page_series_class(pg, &rp->arms[a]);
                ngx_http_retarget_page_raw(pg, "\" points=\"");
                open = 1;
            }

            ngx_http_retarget_page_printf(pg, "%.1f,%.1f ", x, y);
        }

        if (open) {
            ngx_http_retarget_page_raw(pg, "\"/>\n");
        }

        /* the points too, when there is room for them */

        if (rp->ndays > 31) {
            continue;
        }

        for (d = 0; d < rp->ndays; d++) {
            v = value(&rp->arms[a], d, &valid);

            if (!valid) {
                continue;
            }

            x = NGX_HTTP_RETARGET_CHART_LEFT
                + (rp->ndays > 1 ? w * d / (rp->ndays - 1) : w / 2);
            y = NGX_HTTP_RETARGET_CHART_TOP + h - h * ngx_min(v / top, 1.0);

            ngx_http_retarget_page_raw(pg, "<circle class=\"");
            ngx_http_retarget_page_series_class(pg, &rp->arms[a]);
            ngx_http_retarget_page_printf(pg,
                "\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>", x, y);
        }

        ngx_http_retarget_page_raw(pg, "\n");
    }

    ngx_http_retarget_page_raw(pg, "</svg>\n<figcaption>");
    ngx_http_retarget_page_raw(pg, title);
    ngx_http_retarget_page_raw(pg, "</figcaption>\n");

    ngx_http_retarget_page_legend(pg, rp, 0);

    ngx_http_retarget_page_raw(pg, "</figure>\n");

    ngx_http_retarget_page_chart_table(pg, rp, value, percent);
}


/* the horizontal grid lines and their values, 0 to top */

static void
ngx_http_retarget_page_axis(ngx_http_retarget_page_t *pg, double top,
    ngx_uint_t percent)
{
    double      y, h, v;
    ngx_uint_t  i;

    h = NGX_HTTP_RETARGET_CHART_H - NGX_HTTP_RETARGET_CHART_TOP
        - NGX_HTTP_RETARGET_CHART_BOTTOM;

    for (i = 0; i <= 4; i++) {
        v = top * i / 4;
        y = NGX_HTTP_RETARGET_CHART_TOP + h - h * i / 4;

        ngx_http_retarget_page_printf(pg,
            "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
            "y2=\"%.1f\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
            NGX_HTTP_RETARGET_CHART_LEFT,
            NGX_HTTP_RETARGET_CHART_W - NGX_HTTP_RETARGET_CHART_RIGHT, y, y,
            NGX_HTTP_RETARGET_CHART_LEFT - 6, y + 4);

        if (percent) {
            ngx_http_retarget_page_printf(pg, top * 100 < 4 ? "%.2f%%"
                                                           : "%.1f%%",
                                          v * 100);

        } else {
            ngx_http_retarget_page_count(pg, v);
        }

        ngx_http_retarget_page_raw(pg, "</text>\n");
    }
}


static void
ngx_http_retarget_page_legend(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, ngx_uint_t variants_only)
{
    ngx_uint_t  a;

    ngx_http_retarget_page_raw(pg, "<ul class=\"legend\">");

    for (a = 0; a < rp->narms; a++) {

        if (rp->arms[a].holdout) {
            if (variants_only) {
                continue;
            }

            ngx_http_retarget_page_raw(pg, "<li><span class=\"key kh\">"
                                           "</span>");

        } else {
            ngx_http_retarget_page_printf(pg, "<li><span class=\"key k%ui\">"
                                          "</span>",
                                          ngx_http_retarget_chart_series(
                                                               &rp->arms[a]));
        }

        ngx_http_retarget_page_name(pg, &rp->arms[a]);
        ngx_http_retarget_page_raw(pg, "</li>");
    }

    ngx_http_retarget_page_raw(pg, "</ul>\n");
}


/* the chart's numbers: a row per day, a column per arm */

static void
ngx_http_retarget_page_chart_table(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp, ngx_http_retarget_chart_value_pt value,
    ngx_uint_t percent)
{
    double      v;
    ngx_uint_t  a, d, valid;

    ngx_http_retarget_page_raw(pg,
        "<details><summary>The numbers of this chart as a table</summary>\n"
        "<div class=\"scroll\"><table>\n<thead><tr><th scope=\"col\">Day"
        "</th>");

    for (a = 0; a < rp->narms; a++) {
        ngx_http_retarget_page_raw(pg, "<th scope=\"col\">");
        ngx_http_retarget_page_name(pg, &rp->arms[a]);
        ngx_http_retarget_page_raw(pg, "</th>");
    }

    ngx_http_retarget_page_raw(pg, "</tr></thead>\n<tbody>\n");

    for (d = 0; d < rp->ndays; d++) {
        ngx_http_retarget_page_raw(pg, "<tr><th scope=\"row\">");
        ngx_http_retarget_page_date(pg, rp->dates[d]);
        ngx_http_retarget_page_raw(pg, "</th>");

        for (a = 0; a < rp->narms; a++) {
            v = value(&rp->arms[a], d, &valid);

            ngx_http_retarget_page_raw(pg, "<td>");

            if (!valid) {
                ngx_http_retarget_page_raw(pg, "&ndash;");

            } else if (percent) {
                ngx_http_retarget_page_percent(pg, v);

            } else {
                ngx_http_retarget_page_count(pg, v);
            }

            ngx_http_retarget_page_raw(pg, "</td>");
        }

        ngx_http_retarget_page_raw(pg, "</tr>\n");
    }

    ngx_http_retarget_page_raw(pg, "</tbody></table></div>\n</details>\n");
}


/*
 * The optimizer's weights over the report's days, as steps: each period
 * holds its weights until the next one starts.  The period that started
 * before the first day is drawn from the first day.
 */

static void
ngx_http_retarget_page_weights_chart(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_t *rp)
{
    double                               x, y, w, h, span, prev;
    time_t                               t;
    ngx_uint_t                           i, v, first;
    ngx_http_retarget_report_weights_t  *p;

    w = NGX_HTTP_RETARGET_CHART_W - NGX_HTTP_RETARGET_CHART_LEFT
        - NGX_HTTP_RETARGET_CHART_RIGHT;
    h = NGX_HTTP_RETARGET_CHART_H - NGX_HTTP_RETARGET_CHART_TOP
        - NGX_HTTP_RETARGET_CHART_BOTTOM;
    span = (double) (rp->now - rp->start);

    if (span <= 0) {
        span = 1;
    }

    /* the last period that started before the first day, or the first */

    first = 0;

    for (i = 0; i < rp->nweights; i++) {
        if (rp->weights[i].start <= rp->start) {
            first = i;
        }
    }

    ngx_http_retarget_page_printf(pg,
        "<figure>\n<svg class=\"chart\" role=\"img\" "
        "aria-labelledby=\"weights-title weights-desc\" "
        "viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n"
        "<title id=\"weights-title\">The optimizer's weights</title>\n"
        "<desc id=\"weights-desc\">The share of the variants' visitors "
        "each variant was given, over the report's days, one line per "
        "variant. The table below has the numbers.</desc>\n",
        NGX_HTTP_RETARGET_CHART_W, NGX_HTTP_RETARGET_CHART_H);

    ngx_http_retarget_page_axis(pg, 1, 1);

    for (i = 0; i < 2; i++) {
        t = i ? rp->now : rp->start;
        x = NGX_HTTP_RETARGET_CHART_LEFT + (i ? w : 0);

        ngx_http_retarget_page_printf(pg,
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">", x,
            NGX_HTTP_RETARGET_CHART_H - 10, i ? "end" : "start");
        ngx_http_retarget_page_time(pg, t, 0);
        ngx_http_retarget_page_raw(pg, "</text>\n");
    }

    for (v = 0; v < rp->nvariants; v++) {
        ngx_http_retarget_page_printf(pg,
            "<polyline class=\"series s%ui\" points=\"",
            ngx_http_retarget_chart_series(&rp->arms[v]));

        prev = -1;

        for (i = first; i < rp->nweights; i++) {
            p = &rp->weights[i];

            t = ngx_max(p->start, rp->start);

            if (t > rp->now) {
                break;
            }

            x = NGX_HTTP_RETARGET_CHART_LEFT + w * (t - rp->start) / span;
            y = NGX_HTTP_RETARGET_CHART_TOP + h - h * ngx_min(p->w[v], 1.0);

            if (prev >= 0) {
                ngx_http_retarget_page_printf(pg, "%.1f,%.1f ", x, prev);
            }

            ngx_http_retarget_page_printf(pg, "%.1f,%.1f ", x, y);
            prev = y;
        }

        if (prev >= 0) {
            ngx_http_retarget_page_printf(pg, "%.1f,%.1f",
                                          NGX_HTTP_RETARGET_CHART_LEFT + w,
                                          prev);
        }

        ngx_http_retarget_page_raw(pg, "\"/>\n");
    }

    ngx_http_retarget_page_raw(pg, "</svg>\n<figcaption>The optimizer's "
                                   "weights</figcaption>\n");

    ngx_http_retarget_page_legend(pg, rp, 1);

    ngx_http_retarget_page_raw(pg, "</figure>\n");
}


/* a round top for the axis: 1, 2 or 5 times a power of ten */

static double
ngx_http_retarget_chart_top(double max, ngx_uint_t percent)
{
    double  m, step;

    if (!(max > 0) || !isfinite(max)) {
        return percent ? 0.01 : 4;
    }

    m = pow(10, floor(log10(max)));

    if (max <= m) {
        step = m;

    } else if (max <= 2 * m) {
        step = 2 * m;

    } else if (max <= 5 * m) {
        step = 5 * m;

    } else {
        step = 10 * m;
    }

    /* whole visitors: the grid's four steps are whole numbers */

    if (!percent && step < 4) {
        step = 4;
    }

    return step;
}


static ngx_uint_t
ngx_http_retarget_chart_series(ngx_http_retarget_report_arm_t *arm)
{
    return arm->variant % NGX_HTTP_RETARGET_CHART_COLOURS;
}


/* the class of an arm's line: its colour and dash */

static void
ngx_http_retarget_page_series_class(ngx_http_retarget_page_t *pg,
    ngx_http_retarget_report_arm_t *arm)
{
    if (arm->holdout) {
        ngx_http_retarget_page_raw(pg, "sh");
        return;
    }

    ngx_http_retarget_page_printf(pg, "s%ui",
                                  ngx_http_retarget_chart_series(arm));
}


static double
ngx_http_retarget_chart_eligible(ngx_http_retarget_report_arm_t *arm,
    ngx_uint_t day, ngx_uint_t *valid)
{
    *valid = 1;

    return arm->days[day].v[ngx_http_retarget_rd_eligible];
}


static double
ngx_http_retarget_chart_rate(ngx_http_retarget_report_arm_t *arm,
    ngx_uint_t day, ngx_uint_t *valid)
{
    double  n, k;

    n = arm->days[day].v[ngx_http_retarget_rd_eligible];
    k = arm->days[day].v[ngx_http_retarget_rd_converters];

    *valid = (n > 0);

    return n > 0 ? ngx_min(k, n) / n : 0;
}


static ngx_int_t
ngx_http_retarget_page_done(ngx_http_retarget_page_t *pg, ngx_str_t *out)
{
    if (pg->failed || pg->start == NULL) {
        return NGX_ERROR;
    }

    out->data = pg->start;
    out->len = pg->pos - pg->start;

    return NGX_OK;
}
