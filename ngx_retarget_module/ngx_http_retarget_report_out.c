
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The report's numbers for a program: JSON (the schema is in README.md,
 * "retarget_report"), CSV (RFC 4180: a header row, each arm's days and a
 * total row, CRLF), and the verdicts in plain words, which the page
 * shows too.  Numbers are numbers; an interval is {est, lo, hi}, or null
 * when it cannot be computed (no visitors, no converters to be relative
 * to).
 */


#include "ngx_http_retarget_report.h"
#include "ngx_http_retarget_json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>


/* a CSV row: 17 numbers of at most 24 bytes, a date and a name */
#define NGX_HTTP_RETARGET_REPORT_CSV_ROW   (17 * 25 + 16 + 2 * 64 + 4)


static json_t *ngx_http_retarget_report_num(double v);
static json_t *ngx_http_retarget_report_iv(ngx_http_retarget_interval_t *iv);
static json_t *ngx_http_retarget_report_json_arm(
    ngx_http_retarget_report_t *rp, ngx_http_retarget_report_arm_t *arm);
static json_t *ngx_http_retarget_report_json_daily(
    ngx_http_retarget_report_t *rp, ngx_http_retarget_report_arm_t *arm);
static json_t *ngx_http_retarget_report_json_cmp(
    ngx_http_retarget_report_t *rp, ngx_http_retarget_report_cmp_t *c);
static json_t *ngx_http_retarget_report_json_srm(
    ngx_http_retarget_report_t *rp);
static json_t *ngx_http_retarget_report_json_weights(
    ngx_http_retarget_report_t *rp);
static json_t *ngx_http_retarget_report_json_period(
    ngx_http_retarget_report_t *rp, ngx_http_retarget_report_weights_t *w);
static ngx_int_t ngx_http_retarget_report_dump(ngx_http_request_t *r,
    json_t *root, ngx_str_t *out);

static u_char *ngx_http_retarget_report_csv_row(u_char *p, u_char *last,
    u_char *date, size_t date_len, ngx_http_retarget_report_arm_t *arm,
    double *v, double *people);
static u_char *ngx_http_retarget_report_csv_field(u_char *p, u_char *last,
    u_char *s, size_t len);
static u_char *ngx_http_retarget_report_csv_num(u_char *p, u_char *last,
    double v, ngx_uint_t valid);


static char  *ngx_http_retarget_verdict_codes[] = {
    "not_enough_data", "better", "worse", "same", "waiting", "too_slow"
};

static char  *ngx_http_retarget_srm_modes[] = {
    "none", "configured", "holdout_vs_variants"
};

static ngx_str_t  ngx_http_retarget_report_the_holdout =
    ngx_string("the holdout");

static ngx_str_t  ngx_http_retarget_report_variants = ngx_string("variants");

#define NGX_HTTP_RETARGET_REPORT_CSV_HEADER                                  \
    "date,arm,eligible,converters,conversion_rate,conversion_rate_lo,"       \
    "conversion_rate_hi,impressions,clicks,click_conversions,click_revenue," \
    "view_conversions,view_revenue,buyers,revenue,squares,clickers,"         \
    "click_converters,view_converters\r\n"


const char *
ngx_http_retarget_report_verdict_code(ngx_http_retarget_verdict_e v)
{
    return ngx_http_retarget_verdict_codes[v];
}


/* "B converts better than the holdout", and the like, into [buf, last) */

u_char *
ngx_http_retarget_report_verdict(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_cmp_t *c, u_char *buf, u_char *last)
{
    ngx_str_t  *b, *a;
    ngx_int_t   days;

    b = &rp->arms[c->b].name;
    a = rp->arms[c->a].holdout ? &ngx_http_retarget_report_the_holdout
                               : &rp->arms[c->a].name;

    days = (c->days > 0) ? (ngx_int_t) ceil(c->days) : 0;

    switch (c->verdict) {

    case ngx_http_retarget_verdict_better:
        return ngx_slprintf(buf, last, "%V converts better than %V", b, a);

    case ngx_http_retarget_verdict_worse:
        return ngx_slprintf(buf, last, "%V converts worse than %V", b, a);

    case ngx_http_retarget_verdict_same:
        return ngx_slprintf(buf, last,
                            "no real difference: %V and %V convert about "
                            "the same, and more days would not change that",
                            b, a);

    case ngx_http_retarget_verdict_waiting:
        return ngx_slprintf(buf, last,
                            "no clear difference yet: about %i more day%s "
                            "at the recent rate", days,
                            days == 1 ? "" : "s");

    case ngx_http_retarget_verdict_too_slow:
        return ngx_slprintf(buf, last,
                            "no clear difference yet, and more than a year "
                            "at this traffic to tell");

    default: /* ngx_http_retarget_verdict_early */

        if (rp->arms[c->b].people[ngx_http_retarget_rp_eligible] == 0
            || rp->arms[c->a].people[ngx_http_retarget_rp_eligible] == 0)
        {
            return ngx_slprintf(buf, last,
                                "not enough data yet: no eligible visitors "
                                "in %V yet",
                                rp->arms[c->b].people[
                                        ngx_http_retarget_rp_eligible] == 0
                                ? b : a);
        }

        buf = ngx_slprintf(buf, last,
                           "not enough data yet: fewer than %d eligible "
                           "visitors in %V or %V",
                           NGX_HTTP_RETARGET_STATS_MIN_ARM, b, a);

        if (days) {
            buf = ngx_slprintf(buf, last,
                               "; about %i more day%s at the recent rate",
                               days, days == 1 ? "" : "s");

        } else if (c->days < 0) {
            buf = ngx_slprintf(buf, last,
                               "; more than a year at this traffic");
        }

        return buf;
    }
}


/*
 * The JSON document, in r->pool.  The setters take their value and fail
 * on a NULL object or value, freeing what they were given: an allocation
 * that failed on the way shows up as err at the end.
 */

ngx_int_t
ngx_http_retarget_report_json(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, ngx_str_t *out)
{
    int          err;
    json_t      *root, *dates, *arms, *cmps;
    ngx_uint_t   i;

    root = json_object();
    if (root == NULL) {
        return NGX_ERROR;
    }

    dates = json_array();
    arms = json_array();
    cmps = json_array();

    err = json_object_set_new(root, "generated",
                              json_integer((json_int_t) rp->now));
    err |= json_object_set_new(root, "days", json_integer(rp->ndays));
    err |= json_object_set_new(root, "from",
                               json_stringn((char *) rp->dates[0], 8));
    err |= json_object_set_new(root, "to",
                               json_stringn((char *) rp->dates[rp->ndays - 1],
                                            8));

    for (i = 0; i < rp->ndays; i++) {
        err |= json_array_append_new(dates,
                                     json_stringn((char *) rp->dates[i], 8));
    }

    /* each array handed over filled: a failed set frees what it was given */
    err |= json_object_set_new(root, "dates", dates);

    err |= json_object_set_new(root, "holdout_percent",
                               json_integer(rp->holdout));
    err |= json_object_set_new(root, "currency",
                               rp->currency
                               ? json_stringn((char *) rp->currency->code, 3)
                               : json_null());
    err |= json_object_set_new(root, "recent_days",
                               ngx_http_retarget_report_num(rp->recent_days));

    for (i = 0; i < rp->narms; i++) {
        err |= json_array_append_new(arms,
                       ngx_http_retarget_report_json_arm(rp, &rp->arms[i]));
    }

    err |= json_object_set_new(root, "arms", arms);

    for (i = 0; i < rp->ncmps; i++) {
        err |= json_array_append_new(cmps,
                       ngx_http_retarget_report_json_cmp(rp, &rp->cmps[i]));
    }

    err |= json_object_set_new(root, "comparisons", cmps);

    err |= json_object_set_new(root, "srm",
                               ngx_http_retarget_report_json_srm(rp));
    err |= json_object_set_new(root, "weights",
                               ngx_http_retarget_report_json_weights(rp));

    if (err) {
        json_decref(root);
        return NGX_ERROR;
    }

    return ngx_http_retarget_report_dump(r, root, out);
}


/* a count as an integer, an amount or a rate as a real, nonsense as null */

static json_t *
ngx_http_retarget_report_num(double v)
{
    if (!isfinite(v)) {
        return json_null();
    }

    if (v == floor(v) && fabs(v) < 9e15) {
        return json_integer((json_int_t) v);
    }

    return json_real(v);
}


static json_t *
ngx_http_retarget_report_iv(ngx_http_retarget_interval_t *iv)
{
    int      err;
    json_t  *o;

    if (!iv->valid || !isfinite(iv->est) || !isfinite(iv->lo)
        || !isfinite(iv->hi))
    {
        return json_null();
    }

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    err = json_object_set_new(o, "est", json_real(iv->est));
    err |= json_object_set_new(o, "lo", json_real(iv->lo));
    err |= json_object_set_new(o, "hi", json_real(iv->hi));

    if (err) {
        json_decref(o);
        return NULL;
    }

    return o;
}


static json_t *
ngx_http_retarget_report_json_arm(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_arm_t *arm)
{
    int      err;
    json_t  *o, *share, *att;
    double  *s, *pp;

    o = json_object();
    share = json_object();
    att = json_object();

    if (o == NULL || share == NULL || att == NULL) {
        json_decref(o);
        json_decref(share);
        json_decref(att);
        return NULL;
    }

    s = arm->sum;
    pp = arm->people;

    err = json_object_set_new(o, "name",
                              json_stringn((char *) arm->name.data,
                                           arm->name.len));
    err |= json_object_set_new(o, "holdout", json_boolean(arm->holdout));

    err |= json_object_set_new(share, "configured",
                               ngx_http_retarget_report_num(arm->configured));
    err |= json_object_set_new(share, "optimizer",
                               arm->current >= 0
                               ? ngx_http_retarget_report_num(arm->current)
                               : json_null());
    err |= json_object_set_new(o, "share", share);

    err |= json_object_set_new(o, "eligible",
               ngx_http_retarget_report_num(
                                         pp[ngx_http_retarget_rp_eligible]));
    err |= json_object_set_new(o, "impressions",
               ngx_http_retarget_report_num(
                                        s[ngx_http_retarget_rd_impressions]));
    err |= json_object_set_new(o, "impressions_per_visitor",
               ngx_http_retarget_report_iv(&arm->per_visitor));
    err |= json_object_set_new(o, "clicks",
               ngx_http_retarget_report_num(s[ngx_http_retarget_rd_clicks]));
    err |= json_object_set_new(o, "clickers",
               arm->holdout
               ? json_null()
               : ngx_http_retarget_report_num(
                                         pp[ngx_http_retarget_rp_clickers]));
    err |= json_object_set_new(o, "click_rate",
               ngx_http_retarget_report_iv(&arm->click_rate));
    err |= json_object_set_new(o, "converters",
               ngx_http_retarget_report_num(
                                       pp[ngx_http_retarget_rp_converters]));
    err |= json_object_set_new(o, "conversion_rate",
               ngx_http_retarget_report_iv(&arm->conversion_rate));
    err |= json_object_set_new(o, "buyers",
               ngx_http_retarget_report_num(s[ngx_http_retarget_rd_buyers]));
    err |= json_object_set_new(o, "revenue",
               ngx_http_retarget_report_num(
                                      s[ngx_http_retarget_rd_buyer_revenue]));
    err |= json_object_set_new(o, "squares",
               ngx_http_retarget_report_num(s[ngx_http_retarget_rd_squares]));
    err |= json_object_set_new(o, "revenue_per_visitor",
               ngx_http_retarget_report_iv(&arm->revenue));

    err |= json_object_set_new(att, "click_conversions",
               ngx_http_retarget_report_num(
                                        s[ngx_http_retarget_rd_conversions]));
    err |= json_object_set_new(att, "click_revenue",
               ngx_http_retarget_report_num(s[ngx_http_retarget_rd_revenue]));
    err |= json_object_set_new(att, "view_conversions",
               ngx_http_retarget_report_num(
                                   s[ngx_http_retarget_rd_view_conversions]));
    err |= json_object_set_new(att, "view_revenue",
               ngx_http_retarget_report_num(
                                       s[ngx_http_retarget_rd_view_revenue]));
    err |= json_object_set_new(att, "click_converters",
               arm->holdout
               ? json_null()
               : ngx_http_retarget_report_num(
                                 pp[ngx_http_retarget_rp_click_converters]));
    err |= json_object_set_new(att, "view_converters",
               ngx_http_retarget_report_num(
                                  pp[ngx_http_retarget_rp_view_converters]));
    err |= json_object_set_new(o, "attribution", att);

    err |= json_object_set_new(o, "recent_per_day",
                               ngx_http_retarget_report_num(arm->recent));
    err |= json_object_set_new(o, "daily",
                               ngx_http_retarget_report_json_daily(rp, arm));

    if (err) {
        json_decref(o);
        return NULL;
    }

    return o;
}


static json_t *
ngx_http_retarget_report_json_daily(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_arm_t *arm)
{
    int                            err;
    double                        *v;
    json_t                        *a, *o;
    ngx_uint_t                     d;
    ngx_http_retarget_interval_t   iv;

    a = json_array();
    if (a == NULL) {
        return NULL;
    }

    err = 0;

    for (d = 0; d < rp->ndays; d++) {
        v = arm->days[d].v;

        o = json_object();

        if (o == NULL) {
            err = 1;
            break;
        }

        ngx_http_retarget_stats_rate(
            ngx_min(v[ngx_http_retarget_rd_converters],
                    v[ngx_http_retarget_rd_eligible]),
            v[ngx_http_retarget_rd_eligible], &iv);

        err |= json_object_set_new(o, "date",
                                   json_stringn((char *) rp->dates[d], 8));
        err |= json_object_set_new(o, "eligible",
                   ngx_http_retarget_report_num(
                                          v[ngx_http_retarget_rd_eligible]));
        err |= json_object_set_new(o, "converters",
                   ngx_http_retarget_report_num(
                                         v[ngx_http_retarget_rd_converters]));
        err |= json_object_set_new(o, "conversion_rate",
                   iv.valid ? ngx_http_retarget_report_num(iv.est)
                            : json_null());
        err |= json_object_set_new(o, "impressions",
                   ngx_http_retarget_report_num(
                                        v[ngx_http_retarget_rd_impressions]));
        err |= json_object_set_new(o, "clicks",
                   ngx_http_retarget_report_num(
                                            v[ngx_http_retarget_rd_clicks]));
        err |= json_object_set_new(o, "buyers",
                   ngx_http_retarget_report_num(
                                            v[ngx_http_retarget_rd_buyers]));
        err |= json_object_set_new(o, "revenue",
                   ngx_http_retarget_report_num(
                                      v[ngx_http_retarget_rd_buyer_revenue]));

        /* handed over filled: a failed append frees what it was given */
        err |= json_array_append_new(a, o);
    }

    if (err) {
        json_decref(a);
        return NULL;
    }

    return a;
}


static json_t *
ngx_http_retarget_report_json_cmp(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_cmp_t *c)
{
    int       err;
    u_char    buf[NGX_HTTP_RETARGET_REPORT_VERDICT_LEN], *p;
    json_t   *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    p = ngx_http_retarget_report_verdict(rp, c, buf, buf + sizeof(buf));

    err = json_object_set_new(o, "arm",
                              json_stringn((char *) rp->arms[c->b].name.data,
                                           rp->arms[c->b].name.len));
    err |= json_object_set_new(o, "against",
                               json_stringn((char *) rp->arms[c->a].name.data,
                                            rp->arms[c->a].name.len));
    err |= json_object_set_new(o, "diff",
                               ngx_http_retarget_report_iv(&c->diff));
    err |= json_object_set_new(o, "relative",
                               ngx_http_retarget_report_iv(&c->rel));
    err |= json_object_set_new(o, "days_needed",
                               c->days >= 0
                               ? ngx_http_retarget_report_num(ceil(c->days))
                               : json_null());
    err |= json_object_set_new(o, "verdict",
                               json_string(ngx_http_retarget_verdict_codes[
                                                               c->verdict]));
    err |= json_object_set_new(o, "message",
                               json_stringn((char *) buf, p - buf));

    if (err) {
        json_decref(o);
        return NULL;
    }

    return o;
}


static json_t *
ngx_http_retarget_report_json_srm(ngx_http_retarget_report_t *rp)
{
    int                              err;
    json_t                          *o, *groups, *g;
    ngx_str_t                       *name;
    ngx_uint_t                       i, a;
    ngx_http_retarget_report_srm_t  *s;

    s = &rp->srm;

    o = json_object();
    groups = json_array();

    if (o == NULL || groups == NULL) {
        json_decref(o);
        json_decref(groups);
        return NULL;
    }

    err = json_object_set_new(o, "mode",
                              json_string(
                                  ngx_http_retarget_srm_modes[s->mode]));

    /*
     * The groups are the arms with a share, in order, or holdout/variants.
     * Each value is handed over last: a failed set frees what it was
     * given.
     */

    a = 0;

    for (i = 0; i < s->groups; i++) {

        if (s->mode == ngx_http_retarget_srm_holdout) {
            name = (i == 0) ? &rp->arms[rp->nvariants].name
                            : &ngx_http_retarget_report_variants;

        } else {
            while (a < rp->narms && rp->arms[a].configured <= 0) {
                a++;
            }

            name = &rp->arms[a++].name;
        }

        g = json_object();

        if (g == NULL) {
            err = 1;
            break;
        }

        err |= json_object_set_new(g, "name",
                                   json_stringn((char *) name->data,
                                                name->len));
        err |= json_object_set_new(g, "observed",
                                   ngx_http_retarget_report_num(
                                                            s->observed[i]));
        err |= json_object_set_new(g, "expected_share",
                                   ngx_http_retarget_report_num(s->share[i]));
        err |= json_array_append_new(groups, g);
    }

    err |= json_object_set_new(o, "groups", groups);

    err |= json_object_set_new(o, "p",
                               s->p >= 0 ? ngx_http_retarget_report_num(s->p)
                                         : json_null());
    err |= json_object_set_new(o, "checked", json_boolean(s->checked));
    err |= json_object_set_new(o, "mismatch", json_boolean(s->mismatch));

    if (err) {
        json_decref(o);
        return NULL;
    }

    return o;
}


static json_t *
ngx_http_retarget_report_json_weights(ngx_http_retarget_report_t *rp)
{
    int          err;
    json_t      *o, *history;
    ngx_uint_t   i;

    if (rp->nweights == 0) {
        return json_null();
    }

    o = json_object();
    history = json_array();

    if (o == NULL || history == NULL) {
        json_decref(o);
        json_decref(history);
        return NULL;
    }

    err = 0;

    for (i = 0; i < rp->nweights; i++) {
        err |= json_array_append_new(history,
                   ngx_http_retarget_report_json_period(rp, &rp->weights[i]));
    }

    /* handed over last: a failed set frees what it was given */

    err |= json_object_set_new(o, "current",
              ngx_http_retarget_report_json_period(rp,
                                          &rp->weights[rp->nweights - 1]));
    err |= json_object_set_new(o, "history", history);

    if (err) {
        json_decref(o);
        return NULL;
    }

    return o;
}


static json_t *
ngx_http_retarget_report_json_period(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_weights_t *w)
{
    int          err;
    json_t      *o, *weights;
    ngx_uint_t   i;

    o = json_object();
    weights = json_object();

    if (o == NULL || weights == NULL) {
        json_decref(o);
        json_decref(weights);
        return NULL;
    }

    err = 0;

    for (i = 0; i < rp->nvariants; i++) {
        err |= json_object_setn_new(weights, (char *) rp->arms[i].name.data,
                                    rp->arms[i].name.len,
                                    ngx_http_retarget_report_num(w->w[i]));
    }

    /* handed over last: a failed set frees what it was given */

    err |= json_object_set_new(o, "start", json_integer((json_int_t) w->start));
    err |= json_object_set_new(o, "configured",
                               json_boolean(w->configured));
    err |= json_object_set_new(o, "weights", weights);

    if (err) {
        json_decref(o);
        return NULL;
    }

    return o;
}


/* the document as text in r->pool, with a newline; root is freed */

static ngx_int_t
ngx_http_retarget_report_dump(ngx_http_request_t *r, json_t *root,
    ngx_str_t *out)
{
    return ngx_http_retarget_json_document(r->pool, root,
                                           JSON_COMPACT
                                           | JSON_REAL_PRECISION(10),
                                           out);
}


/* each arm's days, then its total row: the distinct visitors of the days */

ngx_int_t
ngx_http_retarget_report_csv(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, ngx_str_t *out)
{
    u_char                          *p, *last;
    size_t                           len;
    ngx_uint_t                       a, d;
    ngx_http_retarget_report_arm_t  *arm;

    len = sizeof(NGX_HTTP_RETARGET_REPORT_CSV_HEADER)
          + rp->narms * (rp->ndays + 1) * NGX_HTTP_RETARGET_REPORT_CSV_ROW;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + len;

    p = ngx_cpymem(p, NGX_HTTP_RETARGET_REPORT_CSV_HEADER,
                   sizeof(NGX_HTTP_RETARGET_REPORT_CSV_HEADER) - 1);

    for (a = 0; a < rp->narms; a++) {
        arm = &rp->arms[a];

        for (d = 0; d < rp->ndays; d++) {
            p = ngx_http_retarget_report_csv_row(p, last, rp->dates[d], 8, arm,
                                                 arm->days[d].v, NULL);
        }

        p = ngx_http_retarget_report_csv_row(p, last, (u_char *) "total",
                                             5, arm, arm->sum, arm->people);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * A row; people is NULL on a day's row, whose distinct visitors are the
 * day's PFCOUNTs in v, and the union of the days on the total row.
 */

static u_char *
ngx_http_retarget_report_csv_row(u_char *p, u_char *last, u_char *date,
    size_t date_len, ngx_http_retarget_report_arm_t *arm, double *v,
    double *people)
{
    double                        e, k;
    ngx_uint_t                    i, variant;
    ngx_http_retarget_interval_t  iv;

    static ngx_uint_t  sums[] = {
        ngx_http_retarget_rd_impressions,
        ngx_http_retarget_rd_clicks,
        ngx_http_retarget_rd_conversions,
        ngx_http_retarget_rd_revenue,
        ngx_http_retarget_rd_view_conversions,
        ngx_http_retarget_rd_view_revenue,
        ngx_http_retarget_rd_buyers,
        ngx_http_retarget_rd_buyer_revenue,
        ngx_http_retarget_rd_squares
    };

    if (people) {
        e = people[ngx_http_retarget_rp_eligible];
        k = people[ngx_http_retarget_rp_converters];

    } else {
        e = v[ngx_http_retarget_rd_eligible];
        k = v[ngx_http_retarget_rd_converters];
    }

    ngx_http_retarget_stats_rate(ngx_min(k, e), e, &iv);

    p = ngx_http_retarget_report_csv_field(p, last, date, date_len);
    p = ngx_http_retarget_report_csv_field(p, last, arm->name.data,
                                           arm->name.len);
    p = ngx_http_retarget_report_csv_num(p, last, e, 1);
    p = ngx_http_retarget_report_csv_num(p, last, k, 1);
    p = ngx_http_retarget_report_csv_num(p, last, iv.est, iv.valid);
    p = ngx_http_retarget_report_csv_num(p, last, iv.lo, iv.valid);
    p = ngx_http_retarget_report_csv_num(p, last, iv.hi, iv.valid);

    for (i = 0; i < sizeof(sums) / sizeof(sums[0]); i++) {
        p = ngx_http_retarget_report_csv_num(p, last, v[sums[i]], 1);
    }

    /* only the total row has them: the days' HLLs of these are not read */

    variant = (people != NULL && !arm->holdout);

    p = ngx_http_retarget_report_csv_num(p, last,
            people ? people[ngx_http_retarget_rp_clickers] : 0, variant);
    p = ngx_http_retarget_report_csv_num(p, last,
            people ? people[ngx_http_retarget_rp_click_converters] : 0,
            variant);
    p = ngx_http_retarget_report_csv_num(p, last,
            people ? people[ngx_http_retarget_rp_view_converters] : 0,
            people != NULL);

    /* the last separator becomes the line's end */

    if (p + 1 < last) {
        p[-1] = CR;
        *p++ = LF;
    }

    return p;
}


/* a field and a comma: quoted, its quotes doubled, if it needs it */

static u_char *
ngx_http_retarget_report_csv_field(u_char *p, u_char *last, u_char *s,
    size_t len)
{
    size_t   i;
    ngx_uint_t  quote;

    quote = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == ',' || s[i] == '"' || s[i] == CR || s[i] == LF) {
            quote = 1;
        }
    }

    if ((size_t) (last - p) < 2 * len + 3) {
        return p;
    }

    if (quote) {
        *p++ = '"';
    }

    for (i = 0; i < len; i++) {
        if (s[i] == '"') {
            *p++ = '"';
        }

        *p++ = s[i];
    }

    if (quote) {
        *p++ = '"';
    }

    *p++ = ',';

    return p;
}


/* a number and a comma, or only the comma: an empty field */

static u_char *
ngx_http_retarget_report_csv_num(u_char *p, u_char *last, double v,
    ngx_uint_t valid)
{
    int  n;

    if (last - p < 26) {
        return p;
    }

    if (valid && isfinite(v)) {
        /* %g: nginx's own printf has none; 10 digits, as the JSON */
        n = snprintf((char *) p, 25, "%.10g", v);

        if (n > 0 && n < 25) {
            p += n;
        }
    }

    *p++ = ',';

    return p;
}


/* a 503 or a HEAD answer without the numbers */

ngx_int_t
ngx_http_retarget_report_error(ngx_http_request_t *r,
    ngx_http_retarget_report_format_e format, const char *message,
    ngx_str_t *out, ngx_str_t *type)
{
    u_char  *p;
    size_t   len;
    json_t  *root;

    if (format == ngx_http_retarget_format_json) {
        ngx_str_set(type, "application/json");

        root = json_pack("{ss}", "error", message);
        if (root == NULL) {
            return NGX_ERROR;
        }

        return ngx_http_retarget_report_dump(r, root, out);
    }

    ngx_str_set(type, "text/csv; charset=utf-8");

    /* a table of one column, "error" */

    len = ngx_strlen(message);

    p = ngx_pnalloc(r->pool, sizeof("error\r\n\"\"\r\n") + 2 * len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    p = ngx_cpymem(p, "error\r\n", 7);
    p = ngx_http_retarget_report_csv_field(p, p + 2 * len + 4,
                                           (u_char *) message, len);
    p[-1] = CR;
    *p++ = LF;

    out->len = p - out->data;

    return NGX_OK;
}
