
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * retarget_optimize thompson [floor=1%] [min=100] [every=15m]: Thompson
 * sampling on the conversion rate per eligible visitor re-weights the
 * variants of a campaign.  The holdout is never re-weighted: its draw
 * comes first (campaign.c) and stays what the configuration says, so the
 * lift against it stays honest.
 *
 * Time is cut into periods of "every"; period k starts at k x every
 * (unix seconds).  Every decision goes through the period's field of
 * <prefix>optimize:ARMS, so that every worker of every nginx uses the
 * same weights in every period.  At the start of each period worker 0
 * of each nginx asks for the field; the first to find none computes:
 * the distinct eligible visitors and converters of each variant over the
 * last 28 UTC days (PFCOUNT of the 28 daily HyperLogLogs, their union),
 * then, until every variant has "min" eligible visitors, "configured",
 * and after that the probability that each variant has the best rate
 * (draws seeded from the arms and k), w_i = floor + (1 - arms x floor)
 * x p_i.  It writes with HSETNX and reads back, in the same pipeline,
 * what the field holds: its own value, or what another nginx wrote
 * first.  The other workers only read the field, a little later, and
 * again after 1, 2, 4... seconds within the period while it is not
 * there: one computation per period and nginx, not one per worker.
 *
 * No request waits for any of this: the weights in force are this
 * worker's copy; Redis away, an error or a value that is not a valid
 * set of weights leaves the last ones in force.
 */


#include "ngx_http_retarget_optimize.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_stats.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_weights.h"

#include <jansson.h>


/* the days whose distinct visitors are counted, today the first */
#define NGX_HTTP_RETARGET_OPTIMIZE_DAYS     28

/*
 * Thompson sampling's draws: 10000, fewer with many arms, so that one
 * computation (draws x arms x 2 Gamma samples) stays a few milliseconds
 * of one worker; the same number on every nginx, as the weights must be
 */
#define NGX_HTTP_RETARGET_OPTIMIZE_DRAWS    10000
#define NGX_HTTP_RETARGET_OPTIMIZE_SAMPLES  40000

/*
 * The fields of the hash: each write HDELs the field of 1000 periods
 * back; once the hash holds more than that anyway (periods nobody
 * wrote, fields someone else wrote), HSCAN steps of about 500 fields, at
 * most 4 a period, HDEL every field that is not one of the last 1000
 * period starts, 64 a command
 */
#define NGX_HTTP_RETARGET_OPTIMIZE_KEEP     1000
#define NGX_HTTP_RETARGET_OPTIMIZE_SCAN     "500"
#define NGX_HTTP_RETARGET_OPTIMIZE_STEPS    4
#define NGX_HTTP_RETARGET_OPTIMIZE_BATCH    64
#define NGX_HTTP_RETARGET_OPTIMIZE_TTL      (100 * 86400)

/* while Redis is away or a read failed: asked again this often */
#define NGX_HTTP_RETARGET_OPTIMIZE_RETRY    500

/* the period's field not there yet (a worker that does not compute) */
#define NGX_HTTP_RETARGET_OPTIMIZE_WAIT     1000

/* each worker asks a little after the period's start, its own delay */
#define NGX_HTTP_RETARGET_OPTIMIZE_JITTER   250

#define NGX_HTTP_RETARGET_OPTIMIZE_EVERY_MAX  (7 * 86400)
#define NGX_HTTP_RETARGET_OPTIMIZE_MIN_MAX    1000000000


struct ngx_http_retarget_optimize_s {
    /* the directive's */
    ngx_http_retarget_optimize_t   *origin;
    ngx_uint_t                      floor;       /* ten-thousandths */
    ngx_uint_t                      min;
    time_t                          every;
    u_char                         *file;
    ngx_uint_t                      line;

    /* the campaign's variants it re-weights, bound at merge */
    ngx_http_retarget_main_conf_t  *rmcf;
    ngx_array_t                    *variants;    /* NULL: the directive */
    ngx_uint_t                      narms;
    ngx_str_t                       names[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_str_t                       arms;        /* "A,B": of the key */
    ngx_uint_t                      configured[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_uint_t                      configured_total;

    /* the worker's: the weights in force and the refresh */
    ngx_uint_t                      weights[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_uint_t                      total;
    time_t                          period;      /* of the weights, or
                                                    -1: configured */
    time_t                          done;        /* last period decided */
    time_t                          asking;      /* in flight, or -1 */
    time_t                          waited;      /* the period of wait */
    ngx_msec_t                      wait;        /* the next delay */
    ngx_uint_t                      gen;         /* of the refresh */
    ngx_uint_t                      owed;        /* PFCOUNT replies */
    ngx_uint_t                      failed;      /* no reply: link */
    ngx_uint_t                      refused;     /* not a count */
    int64_t                         eligible[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    int64_t                         converters[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_event_t                     timer;
    ngx_msec_t                      jitter;

    /* the trimming of the hash: HSCAN's cursor, kept between periods */
    u_char                          cursor[NGX_INT64_LEN + 1];
    size_t                          cursor_len;
    ngx_uint_t                      steps;

    unsigned                        thompson:1;  /* the weights' source */
    unsigned                        bad_logged:1;
    unsigned                        applied:1;   /* the directive bound */
    unsigned                        trimming:1;
};


/* what a reply is the answer to */
typedef enum {
    ngx_http_retarget_optimize_hget = 0,         /* HGET, first */
    ngx_http_retarget_optimize_hget_written,     /* HGET after HSETNX */
    ngx_http_retarget_optimize_pfcount,
    ngx_http_retarget_optimize_hlen,
    ngx_http_retarget_optimize_hscan
} ngx_http_retarget_optimize_kind_e;


typedef struct {
    ngx_http_retarget_optimize_t   *opt;
    ngx_uint_t                      gen;
    ngx_uint_t                      index;       /* arm x 2 + kind */
    ngx_http_retarget_optimize_kind_e  kind;
    time_t                          period;      /* asked for */
} ngx_http_retarget_optimize_ask_t;


static char *ngx_http_retarget_optimize_param(ngx_conf_t *cf,
    ngx_http_retarget_optimize_t *opt, ngx_str_t *v);
static ngx_int_t ngx_http_retarget_optimize_percent(ngx_str_t *v,
    ngx_uint_t *n);
static ngx_int_t ngx_http_retarget_optimize_fits(ngx_conf_t *cf,
    ngx_http_retarget_optimize_t *opt, ngx_uint_t n);
static ngx_int_t ngx_http_retarget_optimize_bind(ngx_conf_t *cf,
    ngx_http_retarget_optimize_t *opt, ngx_array_t *variants);
static ngx_http_retarget_optimize_t *ngx_http_retarget_optimize_find(
    ngx_http_retarget_main_conf_t *rmcf, ngx_str_t *arms);
static void ngx_http_retarget_optimize_tick(ngx_event_t *ev);
static void ngx_http_retarget_optimize_schedule(
    ngx_http_retarget_optimize_t *opt, ngx_msec_t retry);
static ngx_int_t ngx_http_retarget_optimize_ask_stored(
    ngx_http_retarget_optimize_t *opt, ngx_uint_t written);
static void ngx_http_retarget_optimize_stored(void *data, redisReply *reply);
static void ngx_http_retarget_optimize_absent(
    ngx_http_retarget_optimize_t *opt, ngx_uint_t written);
static void ngx_http_retarget_optimize_use(ngx_http_retarget_optimize_t *opt,
    ngx_uint_t *w);
static ngx_int_t ngx_http_retarget_optimize_count(
    ngx_http_retarget_optimize_t *opt);
static void ngx_http_retarget_optimize_counted(void *data,
    redisReply *reply);
static void ngx_http_retarget_optimize_decide(
    ngx_http_retarget_optimize_t *opt);
static ngx_int_t ngx_http_retarget_optimize_write(
    ngx_http_retarget_optimize_t *opt, ngx_uint_t *w);
static ngx_int_t ngx_http_retarget_optimize_hash_cmd(ngx_pool_t *pool,
    ngx_http_retarget_optimize_t *opt, ngx_http_retarget_cmd_t *cmd,
    const char *name);
static void ngx_http_retarget_optimize_lengthed(void *data,
    redisReply *reply);
static ngx_int_t ngx_http_retarget_optimize_scan(
    ngx_http_retarget_optimize_t *opt, time_t period);
static void ngx_http_retarget_optimize_scanned(void *data,
    redisReply *reply);
static void ngx_http_retarget_optimize_trim(ngx_http_retarget_optimize_t *opt,
    redisReply *fields, time_t period);
static ngx_http_retarget_optimize_ask_t *ngx_http_retarget_optimize_ask(
    ngx_http_retarget_optimize_t *opt, ngx_uint_t index,
    ngx_http_retarget_optimize_kind_e kind);
static void ngx_http_retarget_optimize_failed(
    ngx_http_retarget_optimize_t *opt, const char *why);
static void ngx_http_retarget_optimize_refused(
    ngx_http_retarget_optimize_t *opt, const char *why);
static uint64_t ngx_http_retarget_optimize_seed(
    ngx_http_retarget_optimize_t *opt, time_t k);
static json_t *ngx_http_retarget_optimize_json(
    ngx_http_retarget_main_conf_t *rmcf);


static ngx_str_t  ngx_http_retarget_optimize_sources[] = {
    ngx_string("configured"),
    ngx_string("thompson")
};


/* worker 0 of each nginx computes; the others read what it wrote */
#define ngx_http_retarget_optimize_computes()  (ngx_worker == 0)


/* retarget_optimize thompson [floor=1%] [min=100] [every=15m] | off */

char *
ngx_http_retarget_optimize_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    char                           *rv;
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_retarget_optimize_t   *opt, **known;
    ngx_http_retarget_main_conf_t  *rmcf;

    if (rlcf->campaign.optimize != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0 && cf->args->nelts == 2) {
        rlcf->campaign.optimize = NULL;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "thompson") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"thompson\" "
                           "or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    opt = ngx_pcalloc(cf->pool, sizeof(ngx_http_retarget_optimize_t));
    if (opt == NULL) {
        return NGX_CONF_ERROR;
    }

    /*
     * 1 %, 100 eligible visitors a variant: GrowthBook's bandit defaults,
     * which re-weight no arm below 1 % and nothing before 100 units an
     * arm; 15 minutes between re-weightings.
     */

    opt->origin = opt;
    opt->floor = 100;
    opt->min = 100;
    opt->every = 15 * 60;
    opt->file = cf->conf_file->file.name.data;
    opt->line = cf->conf_file->line;
    opt->period = -1;
    opt->done = -1;
    opt->asking = -1;
    opt->waited = -1;

    for (i = 2; i < cf->args->nelts; i++) {
        rv = ngx_http_retarget_optimize_param(cf, opt, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);
    opt->rmcf = rmcf;

    if (rmcf->optimizers == NULL) {
        rmcf->optimizers = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_retarget_optimize_t *));
        if (rmcf->optimizers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    /* the directive itself, unbound: checked once every level is merged */

    known = ngx_array_push(rmcf->optimizers);
    if (known == NULL) {
        return NGX_CONF_ERROR;
    }

    *known = opt;

    rlcf->campaign.optimize = opt;

    return NGX_CONF_OK;
}

static char *
ngx_http_retarget_optimize_param(ngx_conf_t *cf,
    ngx_http_retarget_optimize_t *opt, ngx_str_t *v)
{
    ngx_int_t  n;
    ngx_str_t  s;

    if (ngx_strncmp(v->data, "floor=", 6) == 0) {
        s.data = v->data + 6;
        s.len = v->len - 6;

        if (ngx_http_retarget_optimize_percent(&s, &opt->floor) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": a percent of the variants' "
                               "traffic from 0 to 100 / variants, such as "
                               "\"floor=1%%\"", v);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(v->data, "min=", 4) == 0) {
        n = ngx_atoi(v->data + 4, v->len - 4);

        if (n == NGX_ERROR || n > NGX_HTTP_RETARGET_OPTIMIZE_MIN_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": a whole number of eligible "
                               "visitors each variant needs before the "
                               "weights move, such as \"min=100\"", v);
            return NGX_CONF_ERROR;
        }

        opt->min = n;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(v->data, "every=", 6) == 0) {
        s.data = v->data + 6;
        s.len = v->len - 6;

        n = ngx_parse_time(&s, 1);

        if (n == NGX_ERROR || n < 1
            || n > NGX_HTTP_RETARGET_OPTIMIZE_EVERY_MAX)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": a time from 1s to 7d, such "
                               "as \"every=15m\"", v);
            return NGX_CONF_ERROR;
        }

        opt->every = n;
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\": \"floor=\", \"min=\" or "
                       "\"every=\"", v);

    return NGX_CONF_ERROR;
}


/* "1%", "0.5%", "12.25": in ten-thousandths of the whole, at most 100 % */

static ngx_int_t
ngx_http_retarget_optimize_percent(ngx_str_t *v, ngx_uint_t *n)
{
    u_char      *p, *last;
    ngx_uint_t   x, digits, decimals;

    p = v->data;
    last = p + v->len;

    if (p < last && last[-1] == '%') {
        last--;
    }

    x = 0;
    digits = 0;

    while (p < last && *p >= '0' && *p <= '9' && digits < 3) {
        x = x * 10 + (*p++ - '0');
        digits++;
    }

    if (digits == 0) {
        return NGX_ERROR;
    }

    x *= 100;
    decimals = 0;

    if (p < last && *p == '.') {
        p++;

        while (p < last && *p >= '0' && *p <= '9' && decimals < 2) {
            x += (*p++ - '0') * (decimals ? 1 : 10);
            decimals++;
        }

        if (decimals == 0) {
            return NGX_ERROR;
        }
    }

    if (p != last || x > NGX_HTTP_RETARGET_WEIGHT_ONE) {
        return NGX_ERROR;
    }

    *n = x;

    return NGX_OK;
}


/*
 * After the campaign's variants are merged: retarget_optimize and the
 * variants it applies to make one optimizer.  It binds only where a
 * campaign shows those variants: a level with two or more in force, or
 * one that means its own (variants of its own, "retarget_campaign on"
 * here), where fewer than two is an error.  A level with only the
 * built-in banner that means nothing of it (a server whose locations
 * have the variants, a status location) keeps the directive, unbound,
 * for its children, and uses the configured weights.  Levels that
 * inherit the variants share the optimizer; variants of the same names
 * elsewhere share it too (they are one key in Redis), if its settings
 * are the same.
 */

char *
ngx_http_retarget_optimize_merge(ngx_conf_t *cf,
    ngx_http_retarget_campaign_t *prev, ngx_http_retarget_campaign_t *conf,
    ngx_uint_t strict)
{
    ngx_http_retarget_optimize_t   *opt, *tpl, *copy, *shared, **known;

    ngx_conf_merge_ptr_value(conf->optimize, prev->optimize, NULL);

    opt = conf->optimize;

    if (opt == NULL || opt->variants == conf->variants) {
        return NGX_CONF_OK;
    }

    tpl = opt->origin;

    if (!strict && conf->variants->nelts < 2) {
        conf->optimize = tpl;
        return NGX_CONF_OK;
    }

    if (ngx_http_retarget_optimize_fits(cf, tpl, conf->variants->nelts)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    copy = ngx_palloc(cf->pool, sizeof(ngx_http_retarget_optimize_t));
    if (copy == NULL) {
        return NGX_CONF_ERROR;
    }

    *copy = *tpl;

    if (ngx_http_retarget_optimize_bind(cf, copy, conf->variants) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    tpl->applied = 1;

    shared = ngx_http_retarget_optimize_find(tpl->rmcf, &copy->arms);

    if (shared != NULL) {
        if (shared->floor != copy->floor || shared->min != copy->min
            || shared->every != copy->every)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"retarget_optimize\" in %s:%ui and in %s:"
                               "%ui re-weight variants of the same names, "
                               "\"%V\", which share one hash in Redis: "
                               "their \"floor=\", \"min=\" and \"every=\" "
                               "must be the same", shared->file,
                               shared->line, copy->file, copy->line,
                               &copy->arms);
            return NGX_CONF_ERROR;
        }

        conf->optimize = shared;
        return NGX_CONF_OK;
    }

    known = ngx_array_push(tpl->rmcf->optimizers);
    if (known == NULL) {
        return NGX_CONF_ERROR;
    }

    *known = copy;
    conf->optimize = copy;

    return NGX_CONF_OK;
}


/* from 2 to 16 variants, and room for the floor of each */

static ngx_int_t
ngx_http_retarget_optimize_fits(ngx_conf_t *cf,
    ngx_http_retarget_optimize_t *opt, ngx_uint_t n)
{
    ngx_http_core_loc_conf_t  *clcf;

    if (n < 2 || n > NGX_HTTP_RETARGET_OPTIMIZE_ARMS) {
        /* the level being merged: a location's name says which */
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        if (clcf != NULL && clcf->name.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"retarget_optimize\" in %s:%ui re-weights "
                               "the campaign's variants: it needs from 2 "
                               "to %d \"retarget_variant\" where it "
                               "applies, here %ui, in location \"%V\"",
                               opt->file, opt->line,
                               NGX_HTTP_RETARGET_OPTIMIZE_ARMS, n,
                               &clcf->name);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"retarget_optimize\" in %s:%ui re-weights "
                               "the campaign's variants: it needs from 2 "
                               "to %d \"retarget_variant\" where it "
                               "applies, here %ui", opt->file, opt->line,
                               NGX_HTTP_RETARGET_OPTIMIZE_ARMS, n);
        }

        return NGX_ERROR;
    }

    if (opt->floor * n > NGX_HTTP_RETARGET_WEIGHT_ONE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"retarget_optimize\" in %s:%ui: \"floor=%ui."
                           "%02ui%%\" for %ui variants is more than the "
                           "whole: at most %ui.%02ui%%", opt->file,
                           opt->line, opt->floor / 100, opt->floor % 100,
                           n, NGX_HTTP_RETARGET_WEIGHT_ONE / n / 100,
                           NGX_HTTP_RETARGET_WEIGHT_ONE / n % 100);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_optimize_bind(ngx_conf_t *cf,
    ngx_http_retarget_optimize_t *opt, ngx_array_t *variants)
{
    u_char                       *p;
    ngx_uint_t                    i;
    ngx_http_retarget_variant_t  *v;

    opt->variants = variants;
    opt->narms = variants->nelts;
    opt->configured_total = 0;

    v = variants->elts;
    opt->arms.len = 0;

    for (i = 0; i < opt->narms; i++) {
        opt->names[i] = v[i].name->name;
        opt->configured[i] = v[i].weight;
        opt->weights[i] = v[i].weight;
        opt->configured_total += v[i].weight;
        opt->arms.len += v[i].name->name.len + 1;
    }

    opt->total = opt->configured_total;
    opt->arms.len--;

    opt->arms.data = ngx_pnalloc(cf->pool, opt->arms.len);
    if (opt->arms.data == NULL) {
        return NGX_ERROR;
    }

    p = opt->arms.data;

    for (i = 0; i < opt->narms; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, opt->names[i].data, opt->names[i].len);
    }

    return NGX_OK;
}


/* the optimizer of these names, bound before, or NULL */

static ngx_http_retarget_optimize_t *
ngx_http_retarget_optimize_find(ngx_http_retarget_main_conf_t *rmcf,
    ngx_str_t *arms)
{
    ngx_uint_t                     i;
    ngx_http_retarget_optimize_t  **known;

    known = rmcf->optimizers->elts;

    for (i = 0; i < rmcf->optimizers->nelts; i++) {
        if (known[i]->variants != NULL
            && known[i]->arms.len == arms->len
            && ngx_strncmp(known[i]->arms.data, arms->data, arms->len) == 0)
        {
            return known[i];
        }
    }

    return NULL;
}


/*
 * Every level merged (postconfiguration): a retarget_optimize that
 * found no variants to re-weight anywhere it applies is a mistake.
 */

ngx_int_t
ngx_http_retarget_optimize_check(ngx_conf_t *cf,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_uint_t                     i;
    ngx_http_retarget_optimize_t  **known;

    if (rmcf->optimizers == NULL) {
        return NGX_OK;
    }

    known = rmcf->optimizers->elts;

    for (i = 0; i < rmcf->optimizers->nelts; i++) {
        if (known[i]->variants == NULL && !known[i]->applied) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"retarget_optimize\" in %s:%ui re-weights "
                               "the campaign's variants: it needs from 2 "
                               "to %d \"retarget_variant\" where it "
                               "applies, here 1 (the built-in banner) "
                               "wherever it applies", known[i]->file,
                               known[i]->line,
                               NGX_HTTP_RETARGET_OPTIMIZE_ARMS);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_optimize_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_uint_t                     i;
    ngx_msec_t                     spread;
    ngx_http_retarget_optimize_t  *opt, **known;

    if (rmcf->optimizers == NULL) {
        return NGX_OK;
    }

    known = rmcf->optimizers->elts;

    for (i = 0; i < rmcf->optimizers->nelts; i++) {
        opt = known[i];

        if (opt->variants == NULL) {
            /* a directive: its optimizers are the bound ones */
            continue;
        }

        opt->timer.handler = ngx_http_retarget_optimize_tick;
        opt->timer.data = opt;
        opt->timer.log = cycle->log;
        opt->timer.cancelable = 1;

        /*
         * Worker 0 asks first, each optimizer a little apart; the others
         * after it, each its own delay, so that they find what it wrote.
         */

        spread = ngx_min(NGX_HTTP_RETARGET_OPTIMIZE_JITTER,
                         (ngx_msec_t) opt->every * 100);

        if (ngx_http_retarget_optimize_computes()) {
            opt->jitter = (i * 11) % spread;

        } else {
            opt->jitter = spread + ((ngx_msec_t) ngx_pid * 37 + i * 11)
                                   % spread;
        }

        /* the first ask once the link had a moment to come up */
        ngx_add_timer(&opt->timer, 10 + opt->jitter);
    }

    return NGX_OK;
}


/*
 * The weights for a new visitor's draw, their sum in total; NULL for a
 * campaign that is not optimised, or whose period says "configured":
 * the location's own weights then, exactly.
 */

ngx_uint_t *
ngx_http_retarget_optimize_weights(ngx_http_retarget_optimize_t *opt,
    ngx_uint_t *total)
{
    if (opt == NULL || !opt->thompson || opt->total == 0) {
        return NULL;
    }

    *total = opt->total;

    return opt->weights;
}


static void
ngx_http_retarget_optimize_tick(ngx_event_t *ev)
{
    time_t                         now, start;
    ngx_http_retarget_optimize_t  *opt;

    opt = ev->data;

    if (ngx_exiting) {
        return;
    }

    now = ngx_time();
    start = now - now % opt->every;

    if (start == opt->done || start == opt->asking) {
        /* early by a few milliseconds, or still being asked */
        ngx_http_retarget_optimize_schedule(opt, 0);
        return;
    }

    /* replies to an older period's questions are no longer wanted */

    opt->gen++;
    opt->asking = start;
    opt->owed = 0;
    opt->failed = 0;
    opt->refused = 0;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "retarget optimize \"%V\": asking for period %T, "
                   "weights in force of period %T%s", &opt->arms, start,
                   opt->period,
                   ngx_http_retarget_optimize_computes()
                   ? ", this worker computes" : "");

    if (ngx_http_retarget_optimize_ask_stored(opt, 0) != NGX_OK) {
        opt->asking = -1;
        ngx_http_retarget_optimize_schedule(opt,
                                            NGX_HTTP_RETARGET_OPTIMIZE_RETRY);
        return;
    }

    ngx_http_retarget_optimize_schedule(opt, 0);
}


/*
 * The timer: the next period's start and this worker's delay after it;
 * with retry, sooner if that comes first.
 */

static void
ngx_http_retarget_optimize_schedule(ngx_http_retarget_optimize_t *opt,
    ngx_msec_t retry)
{
    time_t       left;
    ngx_msec_t   delay;
    ngx_time_t  *tp;

    if (ngx_exiting) {
        return;
    }

    /* in seconds first: milliseconds since 1970 overflow a 32-bit msec */

    tp = ngx_timeofday();

    left = opt->every - tp->sec % opt->every;
    delay = (ngx_msec_t) left * 1000 - tp->msec + opt->jitter;

    if (retry && retry < delay) {
        delay = retry;
    }

    ngx_add_timer(&opt->timer, delay);
}


/* "HGET <prefix>optimize:ARMS <period start>" */

static ngx_int_t
ngx_http_retarget_optimize_ask_stored(ngx_http_retarget_optimize_t *opt,
    ngx_uint_t written)
{
    ngx_int_t                          rc;
    ngx_pool_t                        *pool;
    ngx_http_retarget_cmd_t            cmd;
    ngx_http_retarget_optimize_ask_t  *ask;

    ask = ngx_http_retarget_optimize_ask(opt, 0,
                            written ? ngx_http_retarget_optimize_hget_written
                                    : ngx_http_retarget_optimize_hget);
    if (ask == NULL) {
        return NGX_ERROR;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        ngx_free(ask);
        return NGX_ERROR;
    }

    rc = ngx_http_retarget_optimize_hash_cmd(pool, opt, &cmd, "HGET");

    if (rc == NGX_OK) {
        /* after the HSETNX, in the order of the writes */
        rc = written
             ? ngx_http_retarget_redis_read_ordered(
                   ngx_http_retarget_redis_get(), cmd.argc, cmd.argv,
                   cmd.len, ngx_http_retarget_optimize_stored, ask, 0)
             : ngx_http_retarget_redis_read(ngx_http_retarget_redis_get(),
                   cmd.argc, cmd.argv, cmd.len,
                   ngx_http_retarget_optimize_stored, ask);
    }

    ngx_destroy_pool(pool);

    if (rc != NGX_OK) {
        ngx_free(ask);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The period's field: weights or "configured", whoever wrote them, are
 * used as they are; none yet, worker 0 reads the counters, the others
 * wait for it.
 */

static void
ngx_http_retarget_optimize_stored(void *data, redisReply *reply)
{
    ngx_http_retarget_optimize_ask_t *ask = data;

#if (NGX_DEBUG)
    u_char                         safe[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];
#endif
    ngx_int_t                      rc;
    ngx_uint_t                     w[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_uint_t                     written;
    ngx_http_retarget_optimize_t  *opt;

    opt = ask->opt;
    written = (ask->kind == ngx_http_retarget_optimize_hget_written);

    if (ngx_exiting || ask->gen != opt->gen || opt->asking < 0) {
        /* on exit nothing more is sent: the worker is going */
        ngx_free(ask);
        return;
    }

    ngx_free(ask);

    if (reply == NULL) {
        ngx_http_retarget_optimize_failed(opt, "no reply to HGET");
        return;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_http_retarget_optimize_absent(opt, written);
        return;
    }

    rc = NGX_DECLINED;

    if (reply->type == REDIS_REPLY_STRING) {
        rc = ngx_http_retarget_weights_parse((u_char *) reply->str,
                                             reply->len, opt->names,
                                             opt->narms, opt->floor, w);
    }

    if (rc != NGX_OK && rc != NGX_DONE) {
        ngx_http_retarget_optimize_refused(opt, "the weights of the period "
                                           "are not weights of these "
                                           "variants with this floor");
        return;
    }

#if (NGX_DEBUG)
    (void) ngx_http_retarget_log_value_buf(safe, (u_char *) reply->str,
                                           reply->len);
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget optimize \"%V\": period %T: \"%s\"",
                   &opt->arms, opt->asking, safe);
#endif

    ngx_http_retarget_optimize_use(opt, (rc == NGX_OK) ? w : NULL);
}


/* the period's field is not there (yet) */

static void
ngx_http_retarget_optimize_absent(ngx_http_retarget_optimize_t *opt,
    ngx_uint_t written)
{
    if (written) {
        /* gone between our HSETNX and HGET: asked again soon */
        ngx_http_retarget_optimize_failed(opt, "the field is gone");
        return;
    }

    if (ngx_http_retarget_optimize_computes()) {
        if (ngx_http_retarget_optimize_count(opt) != NGX_OK) {
            ngx_http_retarget_optimize_failed(opt, "PFCOUNT not sent");
        }

        return;
    }

    /*
     * Worker 0 of some nginx writes it: asked again after 1, 2, 4...
     * seconds, at most until the next period (the schedule's), so a
     * period costs this worker a few HGETs at most.
     */

    if (opt->waited != opt->asking) {
        opt->waited = opt->asking;
        opt->wait = NGX_HTTP_RETARGET_OPTIMIZE_WAIT;

    } else if (opt->wait < (ngx_msec_t) opt->every * 1000) {
        opt->wait *= 2;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget optimize \"%V\": period %T not written yet, "
                   "asked again in %M ms", &opt->arms, opt->asking,
                   opt->wait);

    opt->asking = -1;

    ngx_http_retarget_optimize_schedule(opt, opt->wait);
}


/* the period's weights in force: w, or NULL for the configured ones */

static void
ngx_http_retarget_optimize_use(ngx_http_retarget_optimize_t *opt,
    ngx_uint_t *w)
{
    ngx_uint_t  i, total;

    if (w == NULL) {
        ngx_memcpy(opt->weights, opt->configured,
                   opt->narms * sizeof(ngx_uint_t));
        opt->total = opt->configured_total;
        opt->thompson = 0;

    } else {
        total = 0;

        for (i = 0; i < opt->narms; i++) {
            opt->weights[i] = w[i];
            total += w[i];
        }

        opt->total = total;
        opt->thompson = 1;
    }

    opt->bad_logged = 0;
    opt->period = opt->asking;
    opt->done = opt->asking;
    opt->asking = -1;
}


/*
 * "PFCOUNT <prefix>people:D1:eligible:V ... D28" and the same for the
 * converters, for each variant: the distinct visitors of the 28 days.
 */

static ngx_int_t
ngx_http_retarget_optimize_count(ngx_http_retarget_optimize_t *opt)
{
    u_char                             days[NGX_HTTP_RETARGET_OPTIMIZE_DAYS]
                                           [NGX_HTTP_RETARGET_DAY_LEN];
    size_t                             lens[NGX_HTTP_RETARGET_OPTIMIZE_DAYS
                                            + 1];
    ngx_int_t                          rc;
    ngx_uint_t                         i, d, kind;
    ngx_pool_t                        *pool;
    const char                        *argv[NGX_HTTP_RETARGET_OPTIMIZE_DAYS
                                            + 1];
    ngx_http_retarget_cmd_t            cmd;
    ngx_http_retarget_redis_t         *rds;
    ngx_http_retarget_optimize_ask_t  *ask;

    rds = ngx_http_retarget_redis_get();

    for (d = 0; d < NGX_HTTP_RETARGET_OPTIMIZE_DAYS; d++) {
        ngx_http_retarget_utc_day(opt->asking - (time_t) d * 86400, days[d]);
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;
    argv[0] = "PFCOUNT";
    lens[0] = sizeof("PFCOUNT") - 1;

    for (i = 0; rc == NGX_OK && i < opt->narms * 2; i++) {
        kind = (i % 2) ? ngx_http_retarget_people_converters
                       : ngx_http_retarget_people_eligible;

        for (d = 0; d < NGX_HTTP_RETARGET_OPTIMIZE_DAYS; d++) {
            /* the store names the key: as the argument of a command */
            ngx_http_retarget_cmd_init(&cmd, "PFCOUNT");

            if (ngx_http_retarget_arg_people(pool, opt->rmcf, &cmd, days[d],
                                             kind, &opt->names[i / 2])
                != NGX_OK)
            {
                rc = NGX_ERROR;
                break;
            }

            argv[d + 1] = cmd.argv[1];
            lens[d + 1] = cmd.len[1];
        }

        if (rc != NGX_OK) {
            break;
        }

        ask = ngx_http_retarget_optimize_ask(opt, i,
                                            ngx_http_retarget_optimize_pfcount);
        if (ask == NULL) {
            rc = NGX_ERROR;
            break;
        }

        rc = ngx_http_retarget_redis_read(rds,
                                          NGX_HTTP_RETARGET_OPTIMIZE_DAYS + 1,
                                          argv, lens,
                                          ngx_http_retarget_optimize_counted,
                                          ask);
        if (rc != NGX_OK) {
            ngx_free(ask);
            break;
        }

        opt->owed++;
    }

    ngx_destroy_pool(pool);

    if (rc != NGX_OK) {
        /* what was sent is answered to no one: a new question later */
        opt->gen++;
        opt->owed = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}



static void
ngx_http_retarget_optimize_counted(void *data, redisReply *reply)
{
    ngx_http_retarget_optimize_ask_t *ask = data;

    int64_t                        n;
    ngx_uint_t                     index;
    ngx_http_retarget_optimize_t  *opt;

    opt = ask->opt;
    index = ask->index;

    if (ngx_exiting || ask->gen != opt->gen || opt->asking < 0) {
        ngx_free(ask);
        return;
    }

    ngx_free(ask);

    opt->owed--;

    if (reply == NULL) {
        opt->failed++;

    } else if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 0) {
        opt->refused++;

    } else {
        n = reply->integer;

        if (index % 2) {
            opt->converters[index / 2] = n;

        } else {
            opt->eligible[index / 2] = n;
        }
    }

    if (opt->owed) {
        return;
    }

    if (opt->failed) {
        ngx_http_retarget_optimize_failed(opt, "PFCOUNT failed");
        return;
    }

    if (opt->refused) {
        ngx_http_retarget_optimize_refused(opt, "PFCOUNT did not answer a "
                                           "count of visitors");
        return;
    }

    ngx_http_retarget_optimize_decide(opt);
}


/*
 * Every count is in: "configured" while a variant has fewer than "min"
 * eligible visitors, otherwise Thompson sampling's weights; written for
 * every nginx either way, so that all of them agree in every period,
 * the one where the counts reach "min" too.
 */

static void
ngx_http_retarget_optimize_decide(ngx_http_retarget_optimize_t *opt)
{
    double      k[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    double      n[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    double      p_best[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    unsigned    draws;
    ngx_uint_t  w[NGX_HTTP_RETARGET_OPTIMIZE_ARMS], *weights, i;

    weights = NULL;

    for (i = 0; i < opt->narms; i++) {
        if (opt->eligible[i] < (int64_t) opt->min) {
            ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "retarget optimize \"%V\": \"%V\" has %L "
                           "eligible visitors of %ui: configured weights",
                           &opt->arms, &opt->names[i], opt->eligible[i],
                           opt->min);
            goto write;
        }
    }

    for (i = 0; i < opt->narms; i++) {
        /* HyperLogLogs are approximate: never more converters than n */
        n[i] = (double) opt->eligible[i];
        k[i] = (double) ngx_min(opt->converters[i], opt->eligible[i]);
    }

    draws = ngx_min(NGX_HTTP_RETARGET_OPTIMIZE_DRAWS,
                    NGX_HTTP_RETARGET_OPTIMIZE_SAMPLES / opt->narms);

    ngx_http_retarget_stats_thompson(k, n, (unsigned) opt->narms,
                    ngx_http_retarget_optimize_seed(opt,
                                                    opt->asking / opt->every),
                    draws, p_best);

    ngx_http_retarget_weights_from_best(p_best, opt->narms, opt->floor, w);

    weights = w;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget optimize \"%V\": period %T computed from %ud "
                   "draws", &opt->arms, opt->asking, draws);

write:

    if (ngx_http_retarget_optimize_write(opt, weights) != NGX_OK) {
        ngx_http_retarget_optimize_failed(opt, "HSETNX not sent");
    }
}


/*
 * HSETNX the period's field, HGET it in the same pipeline (whoever wrote
 * first is what is used), HDEL the field of 1000 periods back, renew the
 * TTL, and HLEN: a longer hash is trimmed.
 */

static ngx_int_t
ngx_http_retarget_optimize_write(ngx_http_retarget_optimize_t *opt,
    ngx_uint_t *w)
{
    u_char                            *p;
    ngx_int_t                          rc;
    ngx_str_t                          value;
    ngx_pool_t                        *pool;
    ngx_http_retarget_cmd_t            cmd;
    ngx_http_retarget_redis_t         *rds;
    ngx_http_retarget_optimize_ask_t  *ask;

    rds = ngx_http_retarget_redis_get();

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (w == NULL) {
        ngx_str_set(&value, NGX_HTTP_RETARGET_WEIGHTS_CONFIGURED);

    } else {
        value.data = ngx_pnalloc(pool,
                                 ngx_http_retarget_weights_len(opt->names,
                                                               opt->narms));
        if (value.data == NULL) {
            goto done;
        }

        p = ngx_http_retarget_weights_format(value.data, opt->names,
                                             opt->narms, w);
        value.len = p - value.data;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget optimize \"%V\": period %T: HSETNX \"%V\"",
                   &opt->arms, opt->asking, &value);

    if (ngx_http_retarget_optimize_hash_cmd(pool, opt, &cmd, "HSETNX")
        != NGX_OK)
    {
        goto done;
    }

    ngx_http_retarget_arg_str(&cmd, &value);

    if (ngx_http_retarget_redis_write(rds, cmd.argc, cmd.argv, cmd.len)
        != NGX_OK
        || ngx_http_retarget_optimize_ask_stored(opt, 1) != NGX_OK)
    {
        goto done;
    }

    rc = NGX_OK;

    /* housekeeping: nothing waits for it */

    if (opt->asking / opt->every > NGX_HTTP_RETARGET_OPTIMIZE_KEEP) {
        ngx_http_retarget_cmd_init(&cmd, "HDEL");

        if (ngx_http_retarget_arg_key(pool, opt->rmcf, &cmd,
                                      ngx_http_retarget_key_optimize,
                                      &opt->arms)
            == NGX_OK
            && ngx_http_retarget_arg_num(pool, &cmd,
                           opt->asking - NGX_HTTP_RETARGET_OPTIMIZE_KEEP
                                         * opt->every)
               == NGX_OK)
        {
            (void) ngx_http_retarget_redis_write(rds, cmd.argc, cmd.argv,
                                                 cmd.len);
        }
    }

    ngx_http_retarget_cmd_init(&cmd, "EXPIRE");

    if (ngx_http_retarget_arg_key(pool, opt->rmcf, &cmd,
                                  ngx_http_retarget_key_optimize, &opt->arms)
        == NGX_OK
        && ngx_http_retarget_arg_num(pool, &cmd,
                                     NGX_HTTP_RETARGET_OPTIMIZE_TTL)
           == NGX_OK)
    {
        (void) ngx_http_retarget_redis_write(rds, cmd.argc, cmd.argv,
                                             cmd.len);
    }

    if (opt->trimming) {
        goto done;
    }

    ngx_http_retarget_cmd_init(&cmd, "HLEN");

    if (ngx_http_retarget_arg_key(pool, opt->rmcf, &cmd,
                                  ngx_http_retarget_key_optimize, &opt->arms)
        != NGX_OK)
    {
        goto done;
    }

    ask = ngx_http_retarget_optimize_ask(opt, 0,
                                         ngx_http_retarget_optimize_hlen);
    if (ask == NULL) {
        goto done;
    }

    if (ngx_http_retarget_redis_read_ordered(rds, cmd.argc, cmd.argv,
                             cmd.len, ngx_http_retarget_optimize_lengthed,
                             ask, 0)
        != NGX_OK)
    {
        ngx_free(ask);
        goto done;
    }

    opt->trimming = 1;

done:

    ngx_destroy_pool(pool);

    return rc;
}


/* "NAME <prefix>optimize:ARMS <period start>" */

static ngx_int_t
ngx_http_retarget_optimize_hash_cmd(ngx_pool_t *pool,
    ngx_http_retarget_optimize_t *opt, ngx_http_retarget_cmd_t *cmd,
    const char *name)
{
    ngx_http_retarget_cmd_init(cmd, name);

    if (ngx_http_retarget_arg_key(pool, opt->rmcf, cmd,
                                  ngx_http_retarget_key_optimize, &opt->arms)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_arg_num(pool, cmd, opt->asking);
}


/*
 * The hash's length after a write: more fields than the last 1000
 * periods' (periods nobody wrote left the field of 1000 periods before
 * them, or someone else wrote there) starts the trimming.
 */

static void
ngx_http_retarget_optimize_lengthed(void *data, redisReply *reply)
{
    ngx_http_retarget_optimize_ask_t *ask = data;

    time_t                         period;
    ngx_http_retarget_optimize_t  *opt;

    opt = ask->opt;
    period = ask->period;

    ngx_free(ask);

    if (ngx_exiting || reply == NULL || reply->type != REDIS_REPLY_INTEGER
        || reply->integer <= NGX_HTTP_RETARGET_OPTIMIZE_KEEP)
    {
        opt->trimming = 0;
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget optimize \"%V\": %L fields, more than %d: "
                   "trimmed", &opt->arms, (int64_t) reply->integer,
                   NGX_HTTP_RETARGET_OPTIMIZE_KEEP);

    opt->steps = 0;

    if (ngx_http_retarget_optimize_scan(opt, period) != NGX_OK) {
        opt->trimming = 0;
    }
}


/* "HSCAN <prefix>optimize:ARMS <cursor> COUNT 500": one bounded step */

static ngx_int_t
ngx_http_retarget_optimize_scan(ngx_http_retarget_optimize_t *opt,
    time_t period)
{
    ngx_int_t                          rc;
    ngx_pool_t                        *pool;
    ngx_http_retarget_cmd_t            cmd;
    ngx_http_retarget_optimize_ask_t  *ask;

    ask = ngx_http_retarget_optimize_ask(opt, 0,
                                         ngx_http_retarget_optimize_hscan);
    if (ask == NULL) {
        return NGX_ERROR;
    }

    ask->period = period;

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        ngx_free(ask);
        return NGX_ERROR;
    }

    if (opt->cursor_len == 0) {
        opt->cursor[0] = '0';
        opt->cursor_len = 1;
    }

    ngx_http_retarget_cmd_init(&cmd, "HSCAN");

    rc = ngx_http_retarget_arg_key(pool, opt->rmcf, &cmd,
                                   ngx_http_retarget_key_optimize,
                                   &opt->arms);

    if (rc == NGX_OK) {
        ngx_http_retarget_arg(&cmd, opt->cursor, opt->cursor_len);
        ngx_http_retarget_arg(&cmd, (u_char *) "COUNT", 5);
        ngx_http_retarget_arg(&cmd, (u_char *) NGX_HTTP_RETARGET_OPTIMIZE_SCAN,
                              sizeof(NGX_HTTP_RETARGET_OPTIMIZE_SCAN) - 1);

        rc = ngx_http_retarget_redis_read(ngx_http_retarget_redis_get(),
                                          cmd.argc, cmd.argv, cmd.len,
                                          ngx_http_retarget_optimize_scanned,
                                          ask);
    }

    ngx_destroy_pool(pool);

    if (rc != NGX_OK) {
        ngx_free(ask);
        return NGX_ERROR;
    }

    opt->steps++;

    return NGX_OK;
}


/* [cursor, [field, value, ...]]: the old fields go, then the next step */

static void
ngx_http_retarget_optimize_scanned(void *data, redisReply *reply)
{
    ngx_http_retarget_optimize_ask_t *ask = data;

    time_t                         period;
    redisReply                    *cursor, *fields;
    ngx_http_retarget_optimize_t  *opt;

    opt = ask->opt;
    period = ask->period;

    ngx_free(ask);

    if (ngx_exiting || reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        opt->trimming = 0;
        return;
    }

    cursor = reply->element[0];
    fields = reply->element[1];

    if (cursor->type != REDIS_REPLY_STRING || cursor->len == 0
        || cursor->len > NGX_INT64_LEN
        || ngx_atoi((u_char *) cursor->str, cursor->len) == NGX_ERROR
        || fields->type != REDIS_REPLY_ARRAY || fields->elements % 2)
    {
        opt->trimming = 0;
        opt->cursor_len = 0;
        return;
    }

    ngx_http_retarget_optimize_trim(opt, fields, period);

    opt->cursor_len = ngx_cpymem(opt->cursor, cursor->str, cursor->len)
                      - opt->cursor;

    if (cursor->len == 1 && cursor->str[0] == '0') {
        /* the whole hash was seen */
        opt->trimming = 0;
        return;
    }

    if (opt->steps >= NGX_HTTP_RETARGET_OPTIMIZE_STEPS
        || ngx_http_retarget_optimize_scan(opt, period) != NGX_OK)
    {
        /* the rest after a later write, from this cursor */
        opt->trimming = 0;
    }
}


/*
 * HDEL, 64 a command, every field of this step that is not one of the
 * last 1000 period starts up to the period written (or not a period
 * start at all).
 */

static void
ngx_http_retarget_optimize_trim(ngx_http_retarget_optimize_t *opt,
    redisReply *fields, time_t period)
{
    size_t                      lens[NGX_HTTP_RETARGET_OPTIMIZE_BATCH + 2];
    time_t                      oldest, t;
    ngx_uint_t                  i, n;
    ngx_pool_t                 *pool;
    redisReply                 *f;
    const char                 *argv[NGX_HTTP_RETARGET_OPTIMIZE_BATCH + 2];
    ngx_http_retarget_cmd_t     cmd;
    ngx_http_retarget_redis_t  *rds;

    rds = ngx_http_retarget_redis_get();

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    ngx_http_retarget_cmd_init(&cmd, "HDEL");

    if (ngx_http_retarget_arg_key(pool, opt->rmcf, &cmd,
                                  ngx_http_retarget_key_optimize, &opt->arms)
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    argv[0] = cmd.argv[0];
    lens[0] = cmd.len[0];
    argv[1] = cmd.argv[1];
    lens[1] = cmd.len[1];

    oldest = period - (NGX_HTTP_RETARGET_OPTIMIZE_KEEP - 1) * opt->every;
    n = 0;

    for (i = 0; i < fields->elements; i += 2) {
        f = fields->element[i];

        if (f->type != REDIS_REPLY_STRING) {
            continue;
        }

        t = (f->len && f->len <= NGX_TIME_T_LEN)
            ? ngx_atotm((u_char *) f->str, f->len) : NGX_ERROR;

        if (t != NGX_ERROR && t >= oldest && t % opt->every == 0) {
            continue;
        }

        argv[2 + n] = f->str;
        lens[2 + n] = f->len;
        n++;

        if (n == NGX_HTTP_RETARGET_OPTIMIZE_BATCH) {
            (void) ngx_http_retarget_redis_write(rds, 2 + n, argv, lens);
            n = 0;
        }
    }

    if (n) {
        (void) ngx_http_retarget_redis_write(rds, 2 + n, argv, lens);
    }

    ngx_destroy_pool(pool);
}


static ngx_http_retarget_optimize_ask_t *
ngx_http_retarget_optimize_ask(ngx_http_retarget_optimize_t *opt,
    ngx_uint_t index, ngx_http_retarget_optimize_kind_e kind)
{
    ngx_http_retarget_optimize_ask_t  *ask;

    ask = ngx_alloc(sizeof(ngx_http_retarget_optimize_ask_t), ngx_cycle->log);
    if (ask == NULL) {
        return NULL;
    }

    ask->opt = opt;
    ask->gen = opt->gen;
    ask->index = index;
    ask->kind = kind;
    ask->period = opt->asking;

    return ask;
}


/* Redis away or an error: the last weights stay, asked again soon */

static void
ngx_http_retarget_optimize_failed(ngx_http_retarget_optimize_t *opt,
    const char *why)
{
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget optimize \"%V\": period %T not decided: %s, "
                   "the last weights stay", &opt->arms, opt->asking, why);

    opt->gen++;
    opt->owed = 0;
    opt->asking = -1;

    ngx_http_retarget_optimize_schedule(opt,
                                        NGX_HTTP_RETARGET_OPTIMIZE_RETRY);
}


/*
 * Redis answered, but not what it should have (a hostile value, a key of
 * another type): the last weights stay for the period, said once until
 * a period goes well again; not asked again before the next period.
 */

static void
ngx_http_retarget_optimize_refused(ngx_http_retarget_optimize_t *opt,
    const char *why)
{
    if (!opt->bad_logged) {
        opt->bad_logged = 1;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "retarget optimize \"%V\": period %T in Redis: %s "
                      "(floor %ui.%02ui%%), ignored: the last weights stay",
                      &opt->arms, opt->asking, why, opt->floor / 100,
                      opt->floor % 100);
    }

    opt->done = opt->asking;
    opt->asking = -1;
}


/*
 * The seed of period k's draws: FNV-1a of "ARMS:k", the same on every
 * nginx, so that any two that compute from the same counts get the same
 * weights.
 */

static uint64_t
ngx_http_retarget_optimize_seed(ngx_http_retarget_optimize_t *opt, time_t k)
{
    u_char      buf[NGX_TIME_T_LEN + 1], *p, *last;
    uint64_t    h;
    ngx_uint_t  i;

    h = 0xcbf29ce484222325ULL;

    for (i = 0; i < opt->arms.len; i++) {
        h = (h ^ opt->arms.data[i]) * 0x100000001b3ULL;
    }

    last = ngx_sprintf(buf, ":%T", k);

    for (p = buf; p < last; p++) {
        h = (h ^ *p) * 0x100000001b3ULL;
    }

    return h;
}


/*
 * retarget_status: "optimize", what this worker uses for each optimised
 * campaign, so that operators and tests see the weights in force; not
 * there without retarget_optimize.  Nonzero on an error, as jansson's.
 */

int
ngx_http_retarget_optimize_status(json_t *root,
    ngx_http_retarget_main_conf_t *rmcf)
{
    if (rmcf->optimizers == NULL) {
        return 0;
    }

    return json_object_set_new(root, "optimize",
                               ngx_http_retarget_optimize_json(rmcf));
}


/*
 * Each json_*_set_new() and append_new() takes its value, on failure
 * too: the weights go into their object and the object into the list
 * last, so that nothing is used after it was handed over.
 */

static json_t *
ngx_http_retarget_optimize_json(ngx_http_retarget_main_conf_t *rmcf)
{
    int                            err;
    json_t                        *list, *o, *w;
    ngx_str_t                     *source;
    ngx_uint_t                     i, j;
    ngx_http_retarget_optimize_t  *opt, **known;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    known = rmcf->optimizers->elts;
    err = 0;

    for (i = 0; i < rmcf->optimizers->nelts; i++) {
        opt = known[i];

        if (opt->variants == NULL) {
            /* the directive: its bound optimizers are listed */
            continue;
        }

        o = json_object();
        w = json_object();

        if (o == NULL || w == NULL) {
            json_decref(o);
            json_decref(w);
            json_decref(list);
            return NULL;
        }

        for (j = 0; j < opt->narms; j++) {
            err |= json_object_setn_new(w, (char *) opt->names[j].data,
                                        opt->names[j].len,
                                        json_real((double) opt->weights[j]
                                                  / opt->total));
        }

        source = &ngx_http_retarget_optimize_sources[opt->thompson];

        err |= json_object_set_new(o, "weights", w);
        err |= json_object_set_new(o, "arms",
                                   json_stringn((char *) opt->arms.data,
                                                opt->arms.len));
        err |= json_object_set_new(o, "every", json_integer(opt->every));
        err |= json_object_set_new(o, "floor",
                          json_real((double) opt->floor
                                    / NGX_HTTP_RETARGET_WEIGHT_ONE));
        err |= json_object_set_new(o, "min", json_integer(opt->min));
        err |= json_object_set_new(o, "period",
                                   opt->period >= 0
                                   ? json_integer(opt->period) : json_null());
        err |= json_object_set_new(o, "source",
                                   json_stringn((char *) source->data,
                                                source->len));
        err |= json_array_append_new(list, o);

        if (err) {
            break;
        }
    }

    if (err) {
        json_decref(list);
        return NULL;
    }

    return list;
}
