
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * "location /retarget_report { retarget_report; }": the campaign's
 * results over ?days=N (1 to 90, 14 by default) as an HTML page, or
 * (?format=json, ?format=csv) the same numbers for a program.  Meant
 * behind allow/deny, as retarget_status is.
 *
 * The arms are the location's variants and, with retarget_holdout above
 * 0, the holdout.  What is read, all without blocking, through
 * ngx_http_retarget_wait_reads():
 *
 *   HGETALL <prefix>optimize:ARMS          the optimizer's weights
 *   HGETALL <prefix>stats:DAY              each day's counters
 *   PFCOUNT people:DAY1:KIND:ARM ... DAYN  each arm's distinct visitors
 *                                          over the days, for each kind
 *   PFCOUNT people:DAY:eligible:ARM        and each day's eligible and
 *   PFCOUNT people:DAY:converters:ARM      converters, for the series
 *
 * Up to 90 days of a handful of arms make hundreds of reads: they go out
 * in rounds of at most NGX_HTTP_RETARGET_REPORT_ROUND (and a quarter of
 * retarget_redis_queue), one round in flight at a time, each bounded by
 * retarget_redis_timeout, so that a report never fills the queue the
 * shop's pages need.  A Redis that is away or slow answers 503.
 *
 * Whatever Redis answers is someone's writing: a reply of a wrong type,
 * a value that is not a number, negative or beyond 10^15 counts as 0.
 */


#include "ngx_http_retarget_report.h"
#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_wait.h"
#include "ngx_http_retarget_weights.h"


#define NGX_HTTP_RETARGET_REPORT_ROUND       128
#define NGX_HTTP_RETARGET_REPORT_NUMBER_MAX  1e15

/*
 * A day's hash has some tens of fields per campaign; one with more than
 * this was not written by the module, and only so much of it is read.
 */
#define NGX_HTTP_RETARGET_REPORT_FIELDS_MAX  10000


/*
 * A daily counter of a variant is read into report_daily_e at its index
 * of vcounter_e: a counter added there must be added here (this fails to
 * compile until it is).
 */
typedef char  ngx_http_retarget_report_vc_check[
    (int) ngx_http_retarget_rd_eligible == (int) ngx_http_retarget_vc_count
    ? 1 : -1];


typedef enum {
    ngx_http_retarget_ask_weights = 0,
    ngx_http_retarget_ask_stats,
    ngx_http_retarget_ask_union,
    ngx_http_retarget_ask_daily
} ngx_http_retarget_report_ask_e;


/* what a read is for: its reply goes there */
typedef struct {
    ngx_http_retarget_report_ask_e  what;
    ngx_uint_t                      kind;     /* people or daily index */
    ngx_uint_t                      arm;
    ngx_uint_t                      day;
} ngx_http_retarget_report_ask_t;


/* a report request, in its pool */
typedef struct {
    ngx_http_retarget_report_t      rp;
    ngx_http_retarget_main_conf_t  *rmcf;
    ngx_http_retarget_variant_name_t **names;  /* of each arm's counters */
    ngx_str_t                      *variant_names;

    ngx_http_retarget_wait_read_t  *reads;
    ngx_http_retarget_report_ask_t *asks;
    ngx_uint_t                      nreads;
    ngx_uint_t                      sent;     /* reads sent so far */
    ngx_uint_t                      replied;  /* replies seen so far */
    ngx_uint_t                      round;    /* reads at a time */
    ngx_uint_t                      rounds;
} ngx_http_retarget_report_ctx_t;


static ngx_int_t ngx_http_retarget_report_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_report_args(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, const char **why);
static ngx_int_t ngx_http_retarget_report_arms(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx);
static void ngx_http_retarget_report_days(ngx_http_retarget_report_t *rp);
static ngx_int_t ngx_http_retarget_report_plan(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx);
static ngx_int_t ngx_http_retarget_report_ask(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_http_retarget_report_ask_e what,
    ngx_uint_t kind, ngx_uint_t arm, ngx_uint_t day, ngx_uint_t from,
    ngx_uint_t to);
static ngx_int_t ngx_http_retarget_report_key(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_http_retarget_report_ask_e what,
    ngx_uint_t kind, ngx_uint_t arm, ngx_uint_t day, ngx_str_t *key);
static ngx_int_t ngx_http_retarget_report_weights_key(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_str_t *key);
static ngx_int_t ngx_http_retarget_report_next(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx);
static void ngx_http_retarget_report_reply(ngx_http_request_t *r, void *data,
    redisReply *reply);
static void ngx_http_retarget_report_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);

static double ngx_http_retarget_report_count(ngx_http_request_t *r,
    redisReply *reply);
static double ngx_http_retarget_report_number(u_char *p, size_t len);
static void ngx_http_retarget_report_day(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_uint_t day, redisReply *reply);
static void ngx_http_retarget_report_field(ngx_http_retarget_report_ctx_t *ctx,
    ngx_uint_t day, redisReply *f, redisReply *v);
static void ngx_http_retarget_report_weights(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_retarget_report_weights_parse(
    ngx_http_retarget_report_ctx_t *ctx, redisReply *f, redisReply *v,
    ngx_http_retarget_report_weights_t *out);
static void ngx_http_retarget_report_weights_configured(
    ngx_http_retarget_report_t *rp, double *w);
static ngx_uint_t ngx_http_retarget_report_weights_moved(
    ngx_http_retarget_report_t *rp);
static int ngx_libc_cdecl ngx_http_retarget_report_weights_cmp(const void *a,
    const void *b);

static ngx_int_t ngx_http_retarget_report_compute(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx);
static void ngx_http_retarget_report_arm(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_arm_t *arm);
static void ngx_http_retarget_report_compare(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_cmp_t *c);
static void ngx_http_retarget_report_srm(ngx_http_retarget_report_t *rp);
static double ngx_http_retarget_report_converters(
    ngx_http_retarget_report_arm_t *arm);

static ngx_int_t ngx_http_retarget_report_send(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx);
static ngx_int_t ngx_http_retarget_report_csp(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_report_bad(ngx_http_request_t *r,
    const char *why);
static ngx_int_t ngx_http_retarget_report_message(ngx_http_request_t *r,
    ngx_http_retarget_report_format_e format, ngx_uint_t status,
    const char *message);


static char  *ngx_http_retarget_report_formats[] = { "html", "json", "csv" };

/* campaign.c counts the holdout's withheld pages under this field */
static ngx_str_t  ngx_http_retarget_report_withheld =
    ngx_string("eligible:holdout");

/* the kinds of the union reads, in the order of report_people_e */
static ngx_http_retarget_people_e  ngx_http_retarget_report_kinds[] = {
    ngx_http_retarget_people_eligible,
    ngx_http_retarget_people_clickers,
    ngx_http_retarget_people_converters,
    ngx_http_retarget_people_click_converters,
    ngx_http_retarget_people_view_converters,
    ngx_http_retarget_people_eligible
};


char *
ngx_http_retarget_report_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_retarget_report_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_retarget_report_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_retarget_report_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    const char                      *why;
    ngx_http_retarget_report_ctx_t  *ctx;

    /* no visitor id, no notice: this is not a page of the shop */

    if (ngx_http_retarget_bypass(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_report_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_retarget_report_args(r, &ctx->rp, &why) != NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget report: bad arguments: %s", why);

        return ngx_http_retarget_report_bad(r, why);
    }

    ctx->rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (ngx_http_retarget_report_arms(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->rp.dates = ngx_palloc(r->pool, ctx->rp.ndays * 8);
    if (ctx->rp.dates == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_retarget_report_days(&ctx->rp);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget report: %s of %ui days from %*s",
                   ngx_http_retarget_report_formats[ctx->rp.format],
                   ctx->rp.ndays, (size_t) 8, ctx->rp.dates[0]);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget report: %ui arms, holdout %ui%%",
                   ctx->rp.narms, ctx->rp.holdout);

    if (ctx->rmcf->redis.name.len == 0) {
        return ngx_http_retarget_report_message(r, ctx->rp.format,
                                                NGX_HTTP_SERVICE_UNAVAILABLE,
                                                "Redis is not configured: "
                                                "there are no counters to "
                                                "report.");
    }

    if (r->method == NGX_HTTP_HEAD) {
        /* no body to show the numbers in: no reads for them */
        return ngx_http_retarget_report_message(r, ctx->rp.format,
                                                NGX_HTTP_OK, "");
    }

    if (ngx_http_retarget_report_plan(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_retarget_report_next(r, ctx);

    if (rc == NGX_DECLINED) {
        return ngx_http_retarget_report_message(r, ctx->rp.format,
                                                NGX_HTTP_SERVICE_UNAVAILABLE,
                                                "Redis is not reachable: the "
                                                "report cannot be read now. "
                                                "Try again in a minute.");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


/* ?format=html|json|csv, ?days=1..90; NGX_ERROR with why for anything else */

static ngx_int_t
ngx_http_retarget_report_args(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, const char **why)
{
    ngx_int_t  n;
    ngx_str_t  v;

    rp->format = ngx_http_retarget_format_html;
    rp->ndays = NGX_HTTP_RETARGET_REPORT_DAYS;

    if (ngx_http_arg(r, (u_char *) "format", 6, &v) == NGX_OK) {

        if (v.len == 4 && ngx_strncmp(v.data, "html", 4) == 0) {
            rp->format = ngx_http_retarget_format_html;

        } else if (v.len == 4 && ngx_strncmp(v.data, "json", 4) == 0) {
            rp->format = ngx_http_retarget_format_json;

        } else if (v.len == 3 && ngx_strncmp(v.data, "csv", 3) == 0) {
            rp->format = ngx_http_retarget_format_csv;

        } else {
            *why = "invalid format: html, json or csv";
            return NGX_ERROR;
        }
    }

    if (ngx_http_arg(r, (u_char *) "days", 4, &v) == NGX_OK) {

        /* digits only: ngx_atoi() takes no sign, "%2B1" is not "1" */
        n = (v.len == 0 || v.len > 2) ? NGX_ERROR : ngx_atoi(v.data, v.len);

        if (n == NGX_ERROR || n < 1 || n > NGX_HTTP_RETARGET_REPORT_DAYS_MAX) {
            *why = "invalid days: a whole number from 1 to 90";
            return NGX_ERROR;
        }

        rp->ndays = n;
    }

    return NGX_OK;
}


/*
 * The location's variants in their configured order, then the holdout;
 * each arm's share of the traffic as configured: the holdout's percent,
 * and the rest split by the variants' weights.
 */

static ngx_int_t
ngx_http_retarget_report_arms(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx)
{
    ngx_uint_t                       i, n;
    ngx_http_retarget_variant_t     *v;
    ngx_http_retarget_report_t      *rp;
    ngx_http_retarget_loc_conf_t    *rlcf;
    ngx_http_retarget_campaign_t    *cp;
    ngx_http_retarget_report_arm_t  *arm;

    rp = &ctx->rp;
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);
    cp = &rlcf->campaign;

    rp->currency = cp->currency;
    rp->holdout = cp->holdout;
    rp->nvariants = cp->variants->nelts;
    rp->narms = rp->nvariants + (cp->holdout > 0);

    n = rp->narms;

    rp->arms = ngx_pcalloc(r->pool,
                           n * sizeof(ngx_http_retarget_report_arm_t));
    ctx->names = ngx_pcalloc(r->pool,
                             n * sizeof(ngx_http_retarget_variant_name_t *));
    ctx->variant_names = ngx_palloc(r->pool,
                                    (rp->nvariants + 1) * sizeof(ngx_str_t));

    if (rp->arms == NULL || ctx->names == NULL || ctx->variant_names == NULL) {
        return NGX_ERROR;
    }

    v = cp->variants->elts;

    for (i = 0; i < rp->nvariants; i++) {
        arm = &rp->arms[i];

        arm->name = v[i].name->name;
        arm->variant = i;
        arm->current = -1;
        arm->configured = (100.0 - cp->holdout) / 100.0 * v[i].weight
                          / (cp->total_weight ? cp->total_weight : 1);

        ctx->names[i] = v[i].name;
        ctx->variant_names[i] = v[i].name->name;
    }

    if (cp->holdout) {
        arm = &rp->arms[rp->nvariants];

        arm->name = ngx_http_retarget_holdout_name;
        arm->holdout = 1;
        arm->current = -1;
        arm->configured = cp->holdout / 100.0;

        ctx->names[rp->nvariants] = ngx_http_retarget_variant_find(
                                         ctx->rmcf,
                                         ngx_http_retarget_holdout_name.data,
                                         ngx_http_retarget_holdout_name.len);
    }

    return NGX_OK;
}


/* the UTC days of the report, oldest first; today is the last */

static void
ngx_http_retarget_report_days(ngx_http_retarget_report_t *rp)
{
    time_t      today;
    ngx_uint_t  i;

    rp->now = ngx_time();
    today = rp->now - rp->now % 86400;
    rp->start = today - (time_t) (rp->ndays - 1) * 86400;

    for (i = 0; i < rp->ndays; i++) {
        ngx_http_retarget_utc_day(rp->start + (time_t) i * 86400,
                                  rp->dates[i]);
    }
}


/* every read of the report, in the order they are sent */

static ngx_int_t
ngx_http_retarget_report_plan(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx)
{
    ngx_uint_t                   a, d, k, n, before;
    ngx_http_retarget_report_t  *rp;

    rp = &ctx->rp;

    for (a = 0; a < rp->narms; a++) {
        rp->arms[a].days = ngx_pcalloc(r->pool,
                               rp->ndays
                               * sizeof(ngx_http_retarget_report_day_t));
        if (rp->arms[a].days == NULL) {
            return NGX_ERROR;
        }
    }

    before = (rp->ndays > NGX_HTTP_RETARGET_REPORT_RECENT);

    n = 1 + rp->ndays
        + rp->narms * (ngx_http_retarget_rp_count + 2 * rp->ndays);

    ctx->reads = ngx_pcalloc(r->pool,
                             n * sizeof(ngx_http_retarget_wait_read_t));
    ctx->asks = ngx_pcalloc(r->pool,
                            n * sizeof(ngx_http_retarget_report_ask_t));

    if (ctx->reads == NULL || ctx->asks == NULL) {
        return NGX_ERROR;
    }

    if (rp->nvariants
        && ngx_http_retarget_report_ask(r, ctx, ngx_http_retarget_ask_weights,
                                        0, 0, 0, 0, 0)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (d = 0; d < rp->ndays; d++) {
        if (ngx_http_retarget_report_ask(r, ctx, ngx_http_retarget_ask_stats,
                                         0, 0, d, 0, 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    for (a = 0; a < rp->narms; a++) {
        for (k = 0; k < ngx_http_retarget_rp_count; k++) {

            if (rp->arms[a].holdout
                && (k == ngx_http_retarget_rp_clickers
                    || k == ngx_http_retarget_rp_click_converters))
            {
                /* no reminder shown, none clicked */
                continue;
            }

            if (k == ngx_http_retarget_rp_before) {
                if (!before) {
                    continue;
                }

                if (ngx_http_retarget_report_ask(r, ctx,
                        ngx_http_retarget_ask_union, k, a, 0, 0,
                        rp->ndays - NGX_HTTP_RETARGET_REPORT_RECENT)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                continue;
            }

            if (ngx_http_retarget_report_ask(r, ctx,
                                             ngx_http_retarget_ask_union, k,
                                             a, 0, 0, rp->ndays)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    for (d = 0; d < rp->ndays; d++) {
        for (a = 0; a < rp->narms; a++) {
            if (ngx_http_retarget_report_ask(r, ctx,
                                             ngx_http_retarget_ask_daily,
                                             ngx_http_retarget_rd_eligible,
                                             a, d, 0, 0)
                != NGX_OK
                || ngx_http_retarget_report_ask(r, ctx,
                                             ngx_http_retarget_ask_daily,
                                             ngx_http_retarget_rd_converters,
                                             a, d, 0, 0)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    ctx->round = ngx_min(NGX_HTTP_RETARGET_REPORT_ROUND,
                         ngx_max(ctx->rmcf->redis.queue / 4, 1));

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget report: %ui reads, %ui at a time, %ui rounds",
                   ctx->nreads, ctx->round,
                   (ctx->nreads + ctx->round - 1) / ctx->round);

    return NGX_OK;
}


/*
 * One read: HGETALL of a key, PFCOUNT of a day's HLL, or PFCOUNT of the
 * union of days [from, to) of an arm's HLLs of a kind.
 */

static ngx_int_t
ngx_http_retarget_report_ask(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_http_retarget_report_ask_e what,
    ngx_uint_t kind, ngx_uint_t arm, ngx_uint_t day, ngx_uint_t from,
    ngx_uint_t to)
{
    size_t                           *len;
    ngx_str_t                         key;
    ngx_uint_t                        i, argc;
    const char                      **argv;
    ngx_http_retarget_wait_read_t    *rd;
    ngx_http_retarget_report_ask_t   *ask;

    argc = (what == ngx_http_retarget_ask_union) ? 1 + to - from : 2;

    argv = ngx_palloc(r->pool, argc * sizeof(char *));
    len = ngx_palloc(r->pool, argc * sizeof(size_t));

    if (argv == NULL || len == NULL) {
        return NGX_ERROR;
    }

    if (what == ngx_http_retarget_ask_weights
        || what == ngx_http_retarget_ask_stats)
    {
        argv[0] = "HGETALL";
        len[0] = sizeof("HGETALL") - 1;

    } else {
        argv[0] = "PFCOUNT";
        len[0] = sizeof("PFCOUNT") - 1;
    }

    if (what == ngx_http_retarget_ask_union) {
        for (i = from; i < to; i++) {
            if (ngx_http_retarget_report_key(r, ctx, what, kind, arm, i, &key)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            argv[1 + i - from] = (const char *) key.data;
            len[1 + i - from] = key.len;
        }

    } else {
        if (ngx_http_retarget_report_key(r, ctx, what, kind, arm, day, &key)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        argv[1] = (const char *) key.data;
        len[1] = key.len;
    }

    rd = &ctx->reads[ctx->nreads];
    ask = &ctx->asks[ctx->nreads];
    ctx->nreads++;

    rd->argc = (int) argc;
    rd->argv = argv;
    rd->len = len;

    ask->what = what;
    ask->kind = kind;
    ask->arm = arm;
    ask->day = day;

    return NGX_OK;
}


/* the key of a read, built by the store, which owns the names */

static ngx_int_t
ngx_http_retarget_report_key(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_http_retarget_report_ask_e what,
    ngx_uint_t kind, ngx_uint_t arm, ngx_uint_t day, ngx_str_t *key)
{
    ngx_str_t                 date;
    ngx_http_retarget_cmd_t   cmd;
    ngx_http_retarget_people_e  people;

    ngx_http_retarget_cmd_init(&cmd, "");

    switch (what) {

    case ngx_http_retarget_ask_weights:
        return ngx_http_retarget_report_weights_key(r, ctx, key);

    case ngx_http_retarget_ask_stats:
        date.data = ctx->rp.dates[day];
        date.len = 8;

        if (ngx_http_retarget_arg_key(r->pool, ctx->rmcf, &cmd,
                                      ngx_http_retarget_key_stats, &date)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        break;

    default: /* the HLLs */
        people = (what == ngx_http_retarget_ask_union)
                 ? ngx_http_retarget_report_kinds[kind]
                 : (kind == ngx_http_retarget_rd_eligible
                    ? ngx_http_retarget_people_eligible
                    : ngx_http_retarget_people_converters);

        if (ngx_http_retarget_arg_people(r->pool, ctx->rmcf, &cmd,
                                         ctx->rp.dates[day], people,
                                         &ctx->rp.arms[arm].name)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    key->data = (u_char *) cmd.argv[1];
    key->len = cmd.len[1];

    return NGX_OK;
}


/* "<prefix>optimize:A,B,C": the variants in configuration order */

static ngx_int_t
ngx_http_retarget_report_weights_key(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_str_t *key)
{
    u_char                      *p;
    size_t                       len;
    ngx_str_t                    arms;
    ngx_uint_t                   i;
    ngx_http_retarget_cmd_t      cmd;
    ngx_http_retarget_report_t  *rp;

    rp = &ctx->rp;

    len = 0;

    for (i = 0; i < rp->nvariants; i++) {
        len += rp->arms[i].name.len + 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    arms.data = p;

    for (i = 0; i < rp->nvariants; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, rp->arms[i].name.data, rp->arms[i].name.len);
    }

    arms.len = p - arms.data;

    ngx_http_retarget_cmd_init(&cmd, "HGETALL");

    if (ngx_http_retarget_arg_key(r->pool, ctx->rmcf, &cmd,
                                  ngx_http_retarget_key_optimize, &arms)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    key->data = (u_char *) cmd.argv[1];
    key->len = cmd.len[1];

    return NGX_OK;
}


/* the next round of reads; NGX_DECLINED when the link is not up */

static ngx_int_t
ngx_http_retarget_report_next(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_uint_t  n;

    n = ngx_min(ctx->round, ctx->nreads - ctx->sent);

    rc = ngx_http_retarget_wait_reads(r, n, ctx->reads + ctx->sent,
                                      ngx_http_retarget_report_reply,
                                      ngx_http_retarget_report_done, ctx);

    if (rc == NGX_OK) {
        ctx->sent += n;
        ctx->rounds++;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget report: round %ui, %ui of %ui reads sent",
                       ctx->rounds, ctx->sent, ctx->nreads);
    }

    return rc;
}


static void
ngx_http_retarget_report_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_report_ctx_t *ctx = data;

    ngx_http_retarget_report_ask_t  *ask;
    ngx_http_retarget_report_arm_t  *arm;

    if (ctx->replied >= ctx->sent) {
        return;
    }

    ask = &ctx->asks[ctx->replied++];
    arm = &ctx->rp.arms[ask->arm];

    switch (ask->what) {

    case ngx_http_retarget_ask_weights:
        ngx_http_retarget_report_weights(r, ctx, reply);
        break;

    case ngx_http_retarget_ask_stats:
        ngx_http_retarget_report_day(r, ctx, ask->day, reply);
        break;

    case ngx_http_retarget_ask_union:
        arm->people[ask->kind] = ngx_http_retarget_report_count(r, reply);
        break;

    default: /* ngx_http_retarget_ask_daily */
        arm->days[ask->day].v[ask->kind] =
                                   ngx_http_retarget_report_count(r, reply);
    }
}


/*
 * The end of a round: after its replies (NGX_OK), at the timeout
 * (NGX_AGAIN), or when the link went away first (NGX_ERROR).
 */

static void
ngx_http_retarget_report_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_report_ctx_t *ctx = data;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget report: round %ui ended rc:%i, %ui replies",
                   ctx->rounds, rc, ctx->replied);

    if (rc == NGX_OK && ctx->sent < ctx->nreads) {

        rc = ngx_http_retarget_report_next(r, ctx);

        if (rc == NGX_OK) {
            return;
        }

        rc = NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        rc = ngx_http_retarget_report_message(r, ctx->rp.format,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "Redis did not answer in time: "
                                              "the report cannot be read now. "
                                              "Try again in a minute.");

    } else if (rc != NGX_OK || ctx->replied != ctx->nreads) {
        rc = ngx_http_retarget_report_message(r, ctx->rp.format,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "Redis went away while the "
                                              "report was read. Try again "
                                              "in a minute.");

    } else if (ngx_http_retarget_report_compute(r, ctx) != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        rc = ngx_http_retarget_report_send(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
}


/* a PFCOUNT's answer; anything but a sane integer counts as 0 */

static double
ngx_http_retarget_report_count(ngx_http_request_t *r, redisReply *reply)
{
    ngx_str_t  safe;

    if (reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer < 0
            || (double) reply->integer > NGX_HTTP_RETARGET_REPORT_NUMBER_MAX)
        {
            return 0;
        }

        return (double) reply->integer;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* a key of another type: WRONGTYPE, or INVALIDOBJ */
        ngx_http_retarget_log_value(r->pool, (u_char *) reply->str,
                                    reply->len, &safe);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget report: PFCOUNT: \"%V\"", &safe);
    }

    return 0;
}


/*
 * A counter as the daily hash keeps it: digits, or digits, a point and
 * digits (HINCRBYFLOAT's amounts).  Anything else, negative or above
 * 10^15, is 0.
 */

static double
ngx_http_retarget_report_number(u_char *p, size_t len)
{
    u_char      *last;
    double       v, scale;
    ngx_uint_t   digits, dot;

    v = 0;
    scale = 1;
    digits = 0;
    dot = 0;

    for (last = p + len; p < last; p++) {

        if (*p == '.' && !dot && digits) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || digits == 32) {
            return 0;
        }

        digits++;

        if (dot) {
            scale /= 10;
            v += (*p - '0') * scale;

        } else {
            v = v * 10 + (*p - '0');
        }
    }

    if (digits == 0 || v > NGX_HTTP_RETARGET_REPORT_NUMBER_MAX) {
        return 0;
    }

    return v;
}


/* HGETALL <prefix>stats:DAY: the counters of the arms on that day */

static void
ngx_http_retarget_report_day(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, ngx_uint_t day, redisReply *reply)
{
    size_t  i;

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget report: reply type %d to HGETALL of %*s, "
                      "the day counts as empty", reply->type, (size_t) 8,
                      ctx->rp.dates[day]);
        return;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {

        if (i / 2 == NGX_HTTP_RETARGET_REPORT_FIELDS_MAX) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "retarget report: the counters of %*s have %uz "
                          "fields, only the first %d are read", (size_t) 8,
                          ctx->rp.dates[day], reply->elements / 2,
                          NGX_HTTP_RETARGET_REPORT_FIELDS_MAX);
            break;
        }

        ngx_http_retarget_report_field(ctx, day, reply->element[i],
                                       reply->element[i + 1]);
    }
}


/*
 * A field of the daily hash, if it is one of an arm's counters: the arm
 * is the name after the last ':', and then the field is one of its
 * counters' names (campaign_conf.c made them).
 */

static void
ngx_http_retarget_report_field(ngx_http_retarget_report_ctx_t *ctx,
    ngx_uint_t day, redisReply *f, redisReply *v)
{
    u_char                           *p, *last;
    ngx_str_t                        *name;
    ngx_uint_t                        a, k;
    ngx_http_retarget_report_t       *rp;
    ngx_http_retarget_report_arm_t   *arm;
    ngx_http_retarget_variant_name_t *vn;

    if (f == NULL || v == NULL || f->type != REDIS_REPLY_STRING
        || v->type != REDIS_REPLY_STRING || f->len == 0)
    {
        return;
    }

    rp = &ctx->rp;
    last = (u_char *) f->str + f->len;

    for (p = last; p > (u_char *) f->str && p[-1] != ':'; p--) { /* void */ }

    if (p == (u_char *) f->str) {
        return;
    }

    for (a = 0; a < rp->narms; a++) {
        if ((size_t) (last - p) == rp->arms[a].name.len
            && ngx_strncmp(p, rp->arms[a].name.data, last - p) == 0)
        {
            break;
        }
    }

    if (a == rp->narms) {
        return;
    }

    arm = &rp->arms[a];

    if (arm->holdout
        && f->len == ngx_http_retarget_report_withheld.len
        && ngx_strncmp(f->str, ngx_http_retarget_report_withheld.data,
                       f->len) == 0)
    {
        arm->days[day].v[ngx_http_retarget_rd_impressions] =
            ngx_http_retarget_report_number((u_char *) v->str, v->len);
        return;
    }

    vn = ctx->names[a];

    if (vn == NULL) {
        return;
    }

    for (k = 0; k < ngx_http_retarget_vc_count; k++) {
        name = &vn->counters[k];

        if (f->len != name->len
            || ngx_strncmp(f->str, name->data, name->len) != 0)
        {
            continue;
        }

        if (arm->holdout && k == ngx_http_retarget_vc_impressions) {
            /* a holdout shows nothing: its pages are "eligible" */
            return;
        }

        arm->days[day].v[k] =
            ngx_http_retarget_report_number((u_char *) v->str, v->len);
        return;
    }
}


/*
 * HGETALL <prefix>optimize:ARMS: field a period's start, value its
 * weights.  An entry that is not one of the campaign's, in its order, is
 * left out; the latest NGX_HTTP_RETARGET_REPORT_WEIGHTS are kept.
 */

static void
ngx_http_retarget_report_weights(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx, redisReply *reply)
{
    size_t                               i, n, skipped;
    ngx_http_retarget_report_t          *rp;
    ngx_http_retarget_report_weights_t  *w;

    rp = &ctx->rp;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget report: no weights (reply type %d, "
                       "%uz elements)", reply->type,
                       reply->type == REDIS_REPLY_ARRAY ? reply->elements
                                                        : (size_t) 0);
        return;
    }

    /* the optimizer keeps 1000: twice that is someone else's writing */

    n = ngx_min(reply->elements / 2, 2 * NGX_HTTP_RETARGET_REPORT_WEIGHTS);

    w = ngx_pcalloc(r->pool, n * sizeof(ngx_http_retarget_report_weights_t));
    if (w == NULL) {
        return;
    }

    skipped = reply->elements / 2 - n;
    rp->nweights = 0;

    for (i = 0; i < n; i++) {

        if (w[rp->nweights].w == NULL) {
            w[rp->nweights].w = ngx_palloc(r->pool,
                                           rp->nvariants * sizeof(double));
            if (w[rp->nweights].w == NULL) {
                return;
            }
        }

        if (ngx_http_retarget_report_weights_parse(ctx,
                                                   reply->element[2 * i],
                                                   reply->element[2 * i + 1],
                                                   &w[rp->nweights])
            != NGX_OK)
        {
            skipped++;
            continue;
        }

        rp->nweights++;
    }

    ngx_qsort(w, rp->nweights, sizeof(ngx_http_retarget_report_weights_t),
              ngx_http_retarget_report_weights_cmp);

    if (rp->nweights > NGX_HTTP_RETARGET_REPORT_WEIGHTS) {
        w += rp->nweights - NGX_HTTP_RETARGET_REPORT_WEIGHTS;
        rp->nweights = NGX_HTTP_RETARGET_REPORT_WEIGHTS;
    }

    rp->weights = w;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget report: %ui periods of weights, %uz left out",
                   rp->nweights, skipped);
}


/*
 * "1764633600" => "A=0.7012,B=0.2988": a period's start and weights as
 * the optimizer writes them (weights.c reads them as strictly as the
 * optimizer itself does: the variants, in order, summing to one).
 */

static ngx_int_t
ngx_http_retarget_report_weights_parse(ngx_http_retarget_report_ctx_t *ctx,
    redisReply *f, redisReply *v, ngx_http_retarget_report_weights_t *out)
{
    int64_t      t;
    ngx_str_t    s;
    ngx_uint_t   i, w[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];

    if (f == NULL || v == NULL || f->type != REDIS_REPLY_STRING
        || v->type != REDIS_REPLY_STRING
        || ctx->rp.nvariants > NGX_HTTP_RETARGET_OPTIMIZE_ARMS)
    {
        return NGX_DECLINED;
    }

    s.data = (u_char *) f->str;
    s.len = f->len;

    t = ngx_http_retarget_parse_number(&s);

    if (t == NGX_ERROR || t > 253402300799) {    /* 9999-12-31 */
        return NGX_DECLINED;
    }

    switch (ngx_http_retarget_weights_parse((u_char *) v->str, v->len,
                                            ctx->variant_names,
                                            ctx->rp.nvariants, 0, w))
    {
    case NGX_OK:
        break;

    case NGX_DONE:
        /* a period under "min": the configured weights applied */
        out->start = (time_t) t;
        out->configured = 1;
        ngx_http_retarget_report_weights_configured(&ctx->rp, out->w);
        return NGX_OK;

    default:
        return NGX_DECLINED;
    }

    out->start = (time_t) t;
    out->configured = 0;

    for (i = 0; i < ctx->rp.nvariants; i++) {
        out->w[i] = (double) w[i] / NGX_HTTP_RETARGET_WEIGHT_ONE;
    }

    return NGX_OK;
}


/* the variants' configured weights, as shares of the variants' traffic */

static void
ngx_http_retarget_report_weights_configured(ngx_http_retarget_report_t *rp,
    double *w)
{
    double      all;
    ngx_uint_t  i;

    all = 0;

    for (i = 0; i < rp->nvariants; i++) {
        all += rp->arms[i].configured;
    }

    for (i = 0; i < rp->nvariants; i++) {
        w[i] = (all > 0) ? rp->arms[i].configured / all
                         : 1.0 / rp->nvariants;
    }
}


static int ngx_libc_cdecl
ngx_http_retarget_report_weights_cmp(const void *a, const void *b)
{
    const ngx_http_retarget_report_weights_t  *wa = a, *wb = b;

    return (wa->start > wb->start) - (wa->start < wb->start);
}


/* the numbers of the report, from what was read */

static ngx_int_t
ngx_http_retarget_report_compute(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx)
{
    double                           today;
    ngx_uint_t                       a, b, n, recent;
    ngx_http_retarget_report_t      *rp;
    ngx_http_retarget_report_cmp_t  *c;

    rp = &ctx->rp;

    /*
     * The recent rate: new eligible visitors over the last 7 days, today
     * counting for the part of it that has passed (an hour at least).
     */

    recent = ngx_min(rp->ndays, NGX_HTTP_RETARGET_REPORT_RECENT);
    today = (double) (rp->now % 86400) / 86400;
    rp->recent_days = (recent - 1) + ngx_max(today, 1.0 / 24);

    for (a = 0; a < rp->narms; a++) {
        ngx_http_retarget_report_arm(rp, &rp->arms[a]);

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget report: arm \"%V\": %.0f eligible, %.0f "
                       "converters, %.0f buyers, %.2f new a day",
                       &rp->arms[a].name,
                       rp->arms[a].people[ngx_http_retarget_rp_eligible],
                       rp->arms[a].people[ngx_http_retarget_rp_converters],
                       rp->arms[a].sum[ngx_http_retarget_rd_buyers],
                       rp->arms[a].recent);
    }

    if (rp->nweights) {
        for (a = 0; a < rp->nvariants; a++) {
            rp->arms[a].current = rp->weights[rp->nweights - 1].w[a];
        }
    }

    /* each variant against the holdout, then against each other variant */

    n = rp->nvariants * (rp->narms - 1);

    if (n) {
        rp->cmps = ngx_pcalloc(r->pool,
                               n * sizeof(ngx_http_retarget_report_cmp_t));
        if (rp->cmps == NULL) {
            return NGX_ERROR;
        }
    }

    for (b = 0; b < rp->nvariants; b++) {

        if (rp->holdout) {
            c = &rp->cmps[rp->ncmps++];
            c->a = rp->nvariants;
            c->b = b;
            ngx_http_retarget_report_compare(rp, c);
        }

        for (a = 0; a < rp->nvariants; a++) {
            if (a == b) {
                continue;
            }

            c = &rp->cmps[rp->ncmps++];
            c->a = a;
            c->b = b;
            ngx_http_retarget_report_compare(rp, c);
        }

        for (c = &rp->cmps[rp->ncmps - (rp->narms - 1)];
             c < &rp->cmps[rp->ncmps];
             c++)
        {
            ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget report: \"%V\" against \"%V\": diff "
                           "%.6f, %s, %.0f days",
                           &rp->arms[c->b].name, &rp->arms[c->a].name,
                           c->diff.est,
                           ngx_http_retarget_report_verdict_code(c->verdict),
                           c->days);
        }
    }

    ngx_http_retarget_report_srm(rp);

    return NGX_OK;
}


static void
ngx_http_retarget_report_arm(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_arm_t *arm)
{
    double      e, fresh;
    ngx_uint_t  d, k;

    for (d = 0; d < rp->ndays; d++) {
        for (k = 0; k < ngx_http_retarget_rd_count; k++) {
            arm->sum[k] += arm->days[d].v[k];
        }
    }

    e = arm->people[ngx_http_retarget_rp_eligible];

    fresh = e - arm->people[ngx_http_retarget_rp_before];
    arm->recent = (fresh > 0 ? fresh : 0) / rp->recent_days;

    ngx_http_retarget_stats_per_unit(
        arm->sum[ngx_http_retarget_rd_impressions], e, &arm->per_visitor);

    if (!arm->holdout) {
        /* the HLLs' error may count more clickers than visitors */
        ngx_http_retarget_stats_rate(
            ngx_min(arm->people[ngx_http_retarget_rp_clickers], e), e,
            &arm->click_rate);
    }

    ngx_http_retarget_stats_rate(ngx_http_retarget_report_converters(arm), e,
                                 &arm->conversion_rate);

    ngx_http_retarget_stats_mean(arm->sum[ngx_http_retarget_rd_buyer_revenue],
                                 arm->sum[ngx_http_retarget_rd_squares], e,
                                 &arm->revenue);
}


/* the lift of b against a, and what it says */

static void
ngx_http_retarget_report_compare(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_cmp_t *c)
{
    double                           ka, na, kb, nb;
    ngx_http_retarget_report_arm_t  *a, *b;

    a = &rp->arms[c->a];
    b = &rp->arms[c->b];

    na = a->people[ngx_http_retarget_rp_eligible];
    nb = b->people[ngx_http_retarget_rp_eligible];
    ka = ngx_http_retarget_report_converters(a);
    kb = ngx_http_retarget_report_converters(b);

    ngx_http_retarget_stats_lift(ka, na, kb, nb, &c->diff, &c->rel);

    c->days = ngx_http_retarget_stats_days_needed(ka, na, kb, nb, a->recent,
                                                  b->recent);

    if (na < NGX_HTTP_RETARGET_STATS_MIN_ARM
        || nb < NGX_HTTP_RETARGET_STATS_MIN_ARM)
    {
        c->verdict = ngx_http_retarget_verdict_early;

    } else if (c->diff.valid && c->diff.lo > 0) {
        c->verdict = ngx_http_retarget_verdict_better;

    } else if (c->diff.valid && c->diff.hi < 0) {
        c->verdict = ngx_http_retarget_verdict_worse;

    } else if (c->days == 0) {
        c->verdict = ngx_http_retarget_verdict_same;

    } else if (c->days > 0) {
        c->verdict = ngx_http_retarget_verdict_waiting;

    } else {
        c->verdict = ngx_http_retarget_verdict_too_slow;
    }
}


/* whether the optimizer's weights ever were its own in these periods */

static ngx_uint_t
ngx_http_retarget_report_weights_moved(ngx_http_retarget_report_t *rp)
{
    ngx_uint_t  i;

    for (i = 0; i < rp->nweights; i++) {
        if (!rp->weights[i].configured) {
            return 1;
        }
    }

    return 0;
}


/*
 * The arms' sizes against their shares.  Once the optimizer has moved
 * the variants' weights, their configured shares say nothing: only the
 * holdout against all the variants together is checked.
 */

static void
ngx_http_retarget_report_srm(ngx_http_retarget_report_t *rp)
{
    ngx_uint_t                       a, g;
    ngx_http_retarget_report_srm_t  *s;
    ngx_http_retarget_report_arm_t  *arm;

    s = &rp->srm;
    s->p = -1;
    g = 0;

    if (!ngx_http_retarget_report_weights_moved(rp)) {
        s->mode = ngx_http_retarget_srm_configured;

        for (a = 0; a < rp->narms && g < NGX_HTTP_RETARGET_REPORT_GROUPS_MAX;
             a++)
        {
            arm = &rp->arms[a];

            if (arm->configured <= 0) {
                continue;           /* a holdout of 100 % leaves nothing */
            }

            s->observed[g] = arm->people[ngx_http_retarget_rp_eligible];
            s->share[g] = arm->configured;
            g++;
        }

    } else if (rp->holdout > 0 && rp->holdout < 100) {
        s->mode = ngx_http_retarget_srm_holdout;

        s->observed[0] = rp->arms[rp->nvariants]
                             .people[ngx_http_retarget_rp_eligible];
        s->share[0] = rp->holdout / 100.0;
        s->observed[1] = 0;
        s->share[1] = 1 - s->share[0];

        for (a = 0; a < rp->nvariants; a++) {
            s->observed[1] +=
                rp->arms[a].people[ngx_http_retarget_rp_eligible];
        }

        g = 2;
    }

    if (g < 2) {
        s->mode = ngx_http_retarget_srm_none;
        s->groups = 0;
        return;
    }

    s->groups = g;
    s->p = ngx_http_retarget_stats_srm(s->observed, s->share, (unsigned) g);
    s->checked = 1;

    for (a = 0; a < g; a++) {
        if (s->observed[a] < NGX_HTTP_RETARGET_STATS_SRM_MIN) {
            s->checked = 0;
        }
    }

    s->mismatch = s->checked && s->p >= 0
                  && s->p < NGX_HTTP_RETARGET_STATS_SRM_P;
}


/* converters, at most the eligible: the HLLs count each with an error */

static double
ngx_http_retarget_report_converters(ngx_http_retarget_report_arm_t *arm)
{
    return ngx_min(arm->people[ngx_http_retarget_rp_converters],
                   arm->people[ngx_http_retarget_rp_eligible]);
}


static ngx_int_t
ngx_http_retarget_report_send(ngx_http_request_t *r,
    ngx_http_retarget_report_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_str_t   body, *type;

    static ngx_str_t  html_type = ngx_string("text/html; charset=utf-8");
    static ngx_str_t  json_type = ngx_string("application/json");
    static ngx_str_t  csv_type = ngx_string("text/csv; charset=utf-8");

    switch (ctx->rp.format) {

    case ngx_http_retarget_format_json:
        type = &json_type;
        rc = ngx_http_retarget_report_json(r, &ctx->rp, &body);
        break;

    case ngx_http_retarget_format_csv:
        type = &csv_type;
        rc = ngx_http_retarget_report_csv(r, &ctx->rp, &body);
        break;

    default:
        type = &html_type;
        rc = ngx_http_retarget_report_page(r, &ctx->rp, &body);

        if (rc == NGX_OK) {
            rc = ngx_http_retarget_report_csp(r);
        }
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget report: %uz bytes, %ui comparisons, srm p %.6f, "
                   "%ui weights", body.len, ctx->rp.ncmps, ctx->rp.srm.p,
                   ctx->rp.nweights);

    return ngx_http_retarget_send(r, NGX_HTTP_OK, type, body.data, body.len,
                                  0);
}


/*
 * The page loads nothing and runs nothing: a policy that says so keeps it
 * that way should a name ever slip through unescaped.  Its style is
 * inline, and so are its charts.
 */

static ngx_int_t
ngx_http_retarget_report_csp(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Security-Policy");
    ngx_str_set(&h->value, "default-src 'none'; style-src 'unsafe-inline'; "
                           "base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'");

    return NGX_OK;
}


/* an answer without the numbers, in the format asked for */

static ngx_int_t
ngx_http_retarget_report_message(ngx_http_request_t *r,
    ngx_http_retarget_report_format_e format, ngx_uint_t status,
    const char *message)
{
    ngx_str_t  body, type;

    if (status != NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget report: %ui: %s", status, message);
    }

    if (format == ngx_http_retarget_format_html) {
        if (ngx_http_retarget_report_error_page(r, message, &body, &type)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (ngx_http_retarget_report_error(r, format, message, &body,
                                              &type)
               != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_retarget_send(r, status, &type, body.data, body.len, 0);
}


/* 400: the format asked for may be the bad argument, so plain text */

static ngx_int_t
ngx_http_retarget_report_bad(ngx_http_request_t *r, const char *why)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   type = ngx_string("text/plain; charset=utf-8");

    len = ngx_strlen(why);

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, why, len);
    p[len] = LF;

    return ngx_http_retarget_send(r, NGX_HTTP_BAD_REQUEST, &type, p, len + 1,
                                  0);
}
