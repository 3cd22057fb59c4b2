
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The module: its directives, configuration, variables, the phase
 * handlers it registers and the worker's start and exit.  Every other
 * file is a concern this one calls; none calls back up here.
 *
 * A page's path through the module (a GET of a text/html page by a
 * returning visitor, in a location with "retarget on" and a campaign):
 *
 *   1. identify: the preaccess handler below finds or creates the
 *      request's context (ngx_http_retarget_request.c), which verifies
 *      the signed cookie and decides consent (identity.c, consent.c);
 *   2. read: still in preaccess, ngx_http_retarget_fetch_start() sends
 *      the one HGETALL of the visitor's meta hash (fetch.c, over the
 *      worker's link in redis.c) and the request goes on: Redis answers
 *      while the page is made;
 *   3. header filter (filter.c): a page that will be injected loses
 *      Content-Length, ranges and its validators and turns private;
 *   4. body filter and wait (filter.c): bytes before the first </body>
 *      go out as they come; at </body>, if the read has not answered,
 *      the filter hands its resume handler to the read and holds the
 *      rest (wait.c bounds it by retarget_redis_timeout); then the
 *      reminder is decided (campaign.c, rendered by banner.c) and the
 *      notice and the reminder are put before </body>;
 *   5. log: the log phase handler below counts the decision (status.c)
 *      and queues the page view and the events (event.c), and the
 *      reminder's own writes (campaign.c), as pipelined writes that no
 *      request waits for.
 */


#include "ngx_http_retarget_module.h"
#include "ngx_http_retarget_banner.h"
#include "ngx_http_retarget_body.h"
#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_control.h"
#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_event.h"
#include "ngx_http_retarget_extract.h"
#include "ngx_http_retarget_fetch.h"
#include "ngx_http_retarget_filter.h"
#include "ngx_http_retarget_hmac.h"
#include "ngx_http_retarget_identity.h"
#include "ngx_http_retarget_notice.h"
#include "ngx_http_retarget_optimize.h"
#include "ngx_http_retarget_page.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_status.h"
#include "ngx_http_retarget_report.h"
#include "ngx_http_retarget_stock.h"
#include "ngx_http_retarget_catalog.h"
#include "ngx_http_retarget_track.h"
#include "ngx_http_retarget_template.h"

#if (defined __GLIBC__)
#include <malloc.h>
#endif


/* freed heap a worker keeps at its top: ngx_http_retarget_heap_keep() */
#define NGX_HTTP_RETARGET_HEAP_KEEP  (4 * 1024 * 1024)


static ngx_int_t ngx_http_retarget_preaccess_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_precontent_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_wants_html(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_log_handler(ngx_http_request_t *r);

static ngx_int_t ngx_http_retarget_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_retarget_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_retarget_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_retarget_init_process(ngx_cycle_t *cycle);
static void ngx_http_retarget_exit_process(ngx_cycle_t *cycle);
static void ngx_http_retarget_heap_keep(ngx_cycle_t *cycle);

static void *ngx_http_retarget_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_retarget_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_retarget_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_retarget_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

static char *ngx_http_retarget_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_retarget_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_retarget_notice(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_retarget_check_positive(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_retarget_check_queue(ngx_conf_t *cf, void *post,
    void *data);


typedef enum {
    ngx_http_retarget_var_visitor = 0,
    ngx_http_retarget_var_new_visitor,
    ngx_http_retarget_var_consent,
    ngx_http_retarget_var_decision,
    ngx_http_retarget_var_variant,
    ngx_http_retarget_var_cart_count,
    ngx_http_retarget_var_cart_total
} ngx_http_retarget_var_e;


static ngx_conf_enum_t  ngx_http_retarget_consent_modes[] = {
    { ngx_string("notice"), NGX_HTTP_RETARGET_MODE_NOTICE },
    { ngx_string("optin"), NGX_HTTP_RETARGET_MODE_OPTIN },
    { ngx_null_string, 0 }
};


static ngx_conf_post_t  ngx_http_retarget_positive_msec = {
    ngx_http_retarget_check_positive
};


static ngx_conf_post_t  ngx_http_retarget_queue_bounds = {
    ngx_http_retarget_check_queue
};


static ngx_str_t  ngx_http_retarget_default_types[] = {
    ngx_string("text/html"),
    ngx_null_string
};


static ngx_command_t  ngx_http_retarget_commands[] = {

    { ngx_string("retarget"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_retarget_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, enable),
      NULL },

    { ngx_string("retarget_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_retarget_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_http_retarget_cookie,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_consent"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, consent_mode),
      &ngx_http_retarget_consent_modes },

    { ngx_string("retarget_notice"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_retarget_notice,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_privacy_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, privacy_url),
      NULL },

    { ngx_string("retarget_gpc"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, gpc),
      NULL },

    { ngx_string("retarget_dnt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, dnt),
      NULL },

    { ngx_string("retarget_types"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_types_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, types_keys),
      &ngx_http_retarget_default_types[0] },

    { ngx_string("retarget_bypass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_set_predicate_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, bypass),
      NULL },

    { ngx_string("retarget_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_retarget_main_conf_t, retention),
      NULL },

    { ngx_string("retarget_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_retarget_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_retarget_main_conf_t, redis.timeout),
      &ngx_http_retarget_positive_msec },

    { ngx_string("retarget_redis_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_retarget_main_conf_t, redis.queue),
      &ngx_http_retarget_queue_bounds },

    { ngx_string("retarget_stream_maxlen"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_retarget_main_conf_t, stream_maxlen),
      NULL },

    { ngx_string("retarget_stream_pageviews"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, stream_pageviews),
      NULL },

    { ngx_string("retarget_event"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_retarget_event_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_extract"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_retarget_extract_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_extract_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, extract_max_size),
      &ngx_http_retarget_extract_size_bounds },

    { ngx_string("retarget_page_json"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_retarget_page_json_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_campaign"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_retarget_campaign_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_delay"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, campaign.delay),
      NULL },

    { ngx_string("retarget_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_retarget_loc_conf_t, campaign.window),
      NULL },

    { ngx_string("retarget_cart_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_retarget_cart_lifetime_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_frequency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE2|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_retarget_frequency_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_incentive"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_retarget_incentive_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_variant"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE3,
      ngx_http_retarget_variant_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_holdout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_retarget_holdout_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_attribution"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_retarget_attribution_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* self-optimising variants (issue 12) */
    { ngx_string("retarget_optimize"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1234,
      ngx_http_retarget_optimize_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_retarget_status_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* issue 12: the campaign results */
    { ngx_string("retarget_report"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_retarget_report_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_control"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_retarget_control,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_banner_position"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_retarget_banner_position,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("retarget_currency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_retarget_currency_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_retarget_module_ctx = {
    ngx_http_retarget_add_variables,       /* preconfiguration */
    ngx_http_retarget_init,                /* postconfiguration */

    ngx_http_retarget_create_main_conf,    /* create main configuration */
    ngx_http_retarget_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_retarget_create_loc_conf,     /* create location configuration */
    ngx_http_retarget_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_retarget_module = {
    NGX_MODULE_V1,
    &ngx_http_retarget_module_ctx,         /* module context */
    ngx_http_retarget_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_retarget_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_retarget_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_retarget_vars[] = {

    { ngx_string("retarget_visitor"), NULL, ngx_http_retarget_variable,
      ngx_http_retarget_var_visitor, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_new_visitor"), NULL, ngx_http_retarget_variable,
      ngx_http_retarget_var_new_visitor, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_consent"), NULL, ngx_http_retarget_variable,
      ngx_http_retarget_var_consent, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_decision"), NULL, ngx_http_retarget_variable,
      ngx_http_retarget_var_decision, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_variant"), NULL, ngx_http_retarget_variable,
      ngx_http_retarget_var_variant, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_cart_count"), NULL, ngx_http_retarget_variable,
      ngx_http_retarget_var_cart_count, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_cart_total"), NULL, ngx_http_retarget_variable,
      ngx_http_retarget_var_cart_total, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * The request body retarget_extract reads, once the access checks
 * (allow/deny, auth_basic, auth_request) have let the request in: a
 * refused client cannot make nginx buffer it.  The phases run again once
 * it is read (ngx_http_retarget_body.c).
 */

static ngx_int_t
ngx_http_retarget_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_retarget_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_retarget_module);

    if (r != r->main || ctx == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_retarget_body_read(r, ctx);
}


static ngx_int_t
ngx_http_retarget_preaccess_handler(ngx_http_request_t *r)
{
    ngx_http_retarget_ctx_t        *ctx;
    ngx_http_retarget_loc_conf_t   *rlcf;
    ngx_http_retarget_main_conf_t  *rmcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_retarget_request(r);

    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    /*
     * The not_modified filter runs before ours and would answer 304 for a
     * page whose cached copy carries another visitor state (a notice that
     * was dismissed since, a reminder).  Conditional navigations to pages
     * the module handles therefore always get the full page: from nginx,
     * and from the upstream, which does not see the validators (request.c).
     * That holds whether or not this answer gets a snippet: the copy the
     * browser kept may have had one.
     */

    if (!ngx_http_retarget_wants_html(r)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: not a page load (no text/html accepted)");
        return NGX_DECLINED;
    }

    if (r->headers_in.if_modified_since != NULL
        || r->headers_in.if_none_match != NULL)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: conditional page load, full page sent");

        r->disable_not_modified = 1;

        if ((r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
            && ngx_http_retarget_unconditional(r) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /*
     * The visitor's state for a reminder, read now so that Redis answers
     * while the page is made.  Only for page loads of visitors who came
     * back (a new id has nothing stored yet), once per request: after an
     * internal redirect the context, and the read, are the same.
     */

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (ctx->fetch != ngx_http_retarget_fetch_none || ctx->decided
        || !ctx->tracked || ctx->new_visitor || ctx->visitor.len == 0
        || !rlcf->campaign.enable || rmcf->redis.name.len == 0)
    {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: no read of the visitor's state "
                       "(read %d, decided %d, new %d)",
                       (int) ctx->fetch, (int) ctx->decided,
                       (int) ctx->new_visitor);
        return NGX_DECLINED;
    }

    if (r->method == NGX_HTTP_HEAD) {
        /* no read: the headers a GET would get, and no body */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: HEAD, a reminder may be shown, no read");

        ctx->may_remind = 1;
        return NGX_DECLINED;
    }

    if (r->method == NGX_HTTP_GET
        && ngx_http_retarget_fetch_start(r, rlcf, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_retarget_wants_html(ngx_http_request_t *r)
{
    ngx_table_elt_t  *accept;

    accept = r->headers_in.accept;

    if (accept == NULL) {
        return 0;
    }

    return ngx_strlcasestrn(accept->value.data,
                            accept->value.data + accept->value.len,
                            (u_char *) "text/html", 9 - 1)
           != NULL;
}


/*
 * The log phase of the main request: the response is on its way, and
 * everything here only queues writes.  The page view first, then what
 * the page's reminder changed, then the location's events, all in the
 * link's one pipeline.
 */

static ngx_int_t
ngx_http_retarget_log_handler(ngx_http_request_t *r)
{
    ngx_http_retarget_ctx_t        *ctx;
    ngx_http_retarget_main_conf_t  *rmcf;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_retarget_get_ctx(r);

    if (ctx == NULL || ctx->logged) {
        return NGX_OK;
    }

    ctx->logged = 1;

    ngx_http_retarget_status_decision(ctx->decision);

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (ctx->bypass || rmcf->redis.name.len == 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: nothing to log (bypassed or no redis)");
        return NGX_OK;
    }

    if (ngx_http_retarget_event_pageview(r, ctx) != NGX_OK) {
        return NGX_OK;
    }

    (void) ngx_http_retarget_campaign_log(r, ctx);
    (void) ngx_http_retarget_event_log(r, ctx);

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    ngx_str_t                *s;
    ngx_http_retarget_ctx_t  *ctx;

    if (data >= ngx_http_retarget_var_decision) {
        /* what the page did: never a reason to identify anyone */
        ctx = ngx_http_retarget_get_ctx(r);

    } else {
        ctx = ngx_http_retarget_request(r);
    }

    if (ctx == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: variable %ui not found, no context",
                       (ngx_uint_t) data);

        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case ngx_http_retarget_var_visitor:
        s = &ctx->visitor;
        break;

    case ngx_http_retarget_var_new_visitor:
        v->len = 1;
        v->data = (u_char *) (ctx->new_visitor ? "1" : "0");
        goto found;

    case ngx_http_retarget_var_consent:
        s = ngx_http_retarget_consent_name(ctx->consent);
        break;

    case ngx_http_retarget_var_variant:
        if (ctx->variant == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        s = &ctx->variant->name;
        break;

    case ngx_http_retarget_var_cart_count:
    case ngx_http_retarget_var_cart_total:
        if (!ctx->decided || ctx->cart_count < 0
            || ctx->fetch != ngx_http_retarget_fetch_done)
        {
            v->not_found = 1;
            return NGX_OK;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 2);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = (data == ngx_http_retarget_var_cart_count)
                 ? ngx_sprintf(p, "%L", ctx->cart_count) - p
                 : ngx_sprintf(p, "%L.%02L", ctx->cart_cents / 100,
                               ctx->cart_cents % 100) - p;
        goto found;

    default: /* ngx_http_retarget_var_decision */
        s = &ngx_http_retarget_decisions[ctx->decision];
        break;
    }

    v->len = s->len;
    v->data = s->data;

found:

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_retarget_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return ngx_http_retarget_page_add_variables(cf);
}


static ngx_int_t
ngx_http_retarget_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    /* every retarget_extract is known now, wherever it was written */
    if (ngx_http_retarget_catalog_check(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* every level is merged: each retarget_optimize applied somewhere */
    if (ngx_http_retarget_optimize_check(cf, rmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!rmcf->used) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_retarget_preaccess_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_retarget_precontent_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_retarget_log_handler;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget: phase handlers and filters registered");

    return ngx_http_retarget_filter_init(cf);
}


static ngx_int_t
ngx_http_retarget_init_process(ngx_cycle_t *cycle)
{
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_retarget_module);

    if (rmcf == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        /* cache manager and loader processes serve no requests */
        return NGX_OK;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "retarget: worker %ui starts, redis %s",
                   ngx_worker,
                   rmcf->redis.name.len ? "configured" : "not configured");

    /*
     * The cached clock is the master's, from before it loaded the
     * configuration, which may have taken longer than
     * retarget_redis_timeout: timers armed from it (the first Redis
     * connect among them) would expire at the first turn of the loop.
     */

    ngx_time_update();

    if (ngx_http_retarget_status_init_process(cycle, rmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (rmcf->redis.name.len == 0) {
        return NGX_OK;
    }

    ngx_http_retarget_heap_keep(cycle);

    /* the link first: the counters ask it to tell them of the exit */

    if (ngx_http_retarget_redis_init_process(cycle, rmcf) != NGX_OK
        || ngx_http_retarget_event_init_process(cycle, rmcf) != NGX_OK
        || ngx_http_retarget_counters_init_process(cycle, rmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_stock_init_process(cycle, rmcf) != NGX_OK
        || ngx_http_retarget_catalog_init_process(cycle, rmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the optimizers' timers: their first ask once the link is up */

    if (ngx_http_retarget_optimize_init_process(cycle, rmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_retarget_track_init_process(cycle, rmcf);
}


/*
 * A worker of this module has many requests in flight, each waiting for
 * its Redis reply with its pool and its 32 KB output buffers allocated:
 * they are at the top of the heap, and when they are freed glibc gives
 * the top back to the kernel (its default trim threshold is 128 KB),
 * only to ask for it again a few requests later.  In make bench, (d) made
 * a brk() every 6 pages and took 1.4-1.7 page faults per page for that
 * (perf stat -e page-faults,syscalls:sys_enter_brk); (a), plain nginx,
 * none.  Up to 4 MB freed at the top are kept instead.
 */

static void
ngx_http_retarget_heap_keep(ngx_cycle_t *cycle)
{
#if (defined __GLIBC__ && defined M_TRIM_THRESHOLD)

    if (mallopt(M_TRIM_THRESHOLD, NGX_HTTP_RETARGET_HEAP_KEEP) != 1) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "retarget: mallopt(M_TRIM_THRESHOLD) failed");
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "retarget: heap top kept up to %d bytes",
                   NGX_HTTP_RETARGET_HEAP_KEEP);
#endif
}


static void
ngx_http_retarget_exit_process(ngx_cycle_t *cycle)
{
    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "retarget: worker exits");

    ngx_http_retarget_track_exit_process(cycle);
    ngx_http_retarget_redis_exit_process(cycle);
}


static void *
ngx_http_retarget_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_retarget_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rmcf->secrets = NULL;
     *     rmcf->control = { 0, NULL };
     *     rmcf->used = 0;
     */

    rmcf->retention = NGX_CONF_UNSET;
    rmcf->redis.timeout = NGX_CONF_UNSET_MSEC;
    rmcf->redis.queue = NGX_CONF_UNSET_UINT;
    rmcf->stream_maxlen = NGX_CONF_UNSET_SIZE;

    return rmcf;
}


static char *
ngx_http_retarget_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_retarget_main_conf_t *rmcf = conf;

    ngx_conf_init_value(rmcf->retention, 30 * 86400);
    ngx_conf_init_msec_value(rmcf->redis.timeout, 50);
    ngx_conf_init_uint_value(rmcf->redis.queue, 4096);
    ngx_conf_init_size_value(rmcf->stream_maxlen, 100000);

    if (rmcf->redis.prefix.len == 0) {
        ngx_str_set(&rmcf->redis.prefix, "rt:");
    }

    if (rmcf->used && rmcf->secrets == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"retarget on\" in %s:%ui requires "
                      "\"retarget_secret\" in the http block",
                      rmcf->used_file, rmcf->used_line);
        return NGX_CONF_ERROR;
    }

    if (rmcf->control.len == 0) {
        ngx_str_set(&rmcf->control, "/retarget/");
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_retarget_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_retarget_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_retarget_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rlcf->privacy_url = { 0, NULL };
     *     rlcf->types = { NULL };
     *     rlcf->types_keys = NULL;
     *     rlcf->control = 0;
     *     rlcf->events = NULL;
     *     rlcf->overlay = { { 0, NULL }, { 0, NULL } };
     */

    rlcf->enable = NGX_CONF_UNSET;
    rlcf->consent_mode = NGX_CONF_UNSET_UINT;
    rlcf->gpc = NGX_CONF_UNSET;
    rlcf->dnt = NGX_CONF_UNSET;
    rlcf->notice = NGX_CONF_UNSET_PTR;
    rlcf->bypass = NGX_CONF_UNSET_PTR;
    rlcf->cookie = NGX_CONF_UNSET_PTR;
    rlcf->stream_pageviews = NGX_CONF_UNSET;
    rlcf->extract_max_size = NGX_CONF_UNSET_SIZE;

    ngx_http_retarget_campaign_create(&rlcf->campaign);
    ngx_http_retarget_page_create_conf(&rlcf->page);

    return rlcf;
}


static char *
ngx_http_retarget_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_retarget_loc_conf_t *prev = parent;
    ngx_http_retarget_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->consent_mode, prev->consent_mode,
                              NGX_HTTP_RETARGET_MODE_NOTICE);
    ngx_conf_merge_value(conf->gpc, prev->gpc, 1);
    ngx_conf_merge_value(conf->dnt, prev->dnt, 0);
    ngx_conf_merge_str_value(conf->privacy_url, prev->privacy_url, "");
    ngx_conf_merge_ptr_value(conf->bypass, prev->bypass, NULL);
    ngx_conf_merge_value(conf->stream_pageviews, prev->stream_pageviews, 0);
    ngx_conf_merge_size_value(conf->extract_max_size, prev->extract_max_size,
                              128 * 1024);

    if (ngx_http_merge_types(cf, &conf->types_keys, &conf->types,
                             &prev->types_keys, &prev->types,
                             ngx_http_retarget_default_types)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->cookie == NGX_CONF_UNSET_PTR) {
        if (prev->cookie == NGX_CONF_UNSET_PTR) {
            /* the defaults, built once at the level that has none */
            prev->cookie = ngx_pcalloc(cf->pool,
                                     sizeof(ngx_http_retarget_cookie_conf_t));
            if (prev->cookie == NULL) {
                return NGX_CONF_ERROR;
            }

            if (ngx_http_retarget_cookie_conf(cf, prev->cookie)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }
        }

        conf->cookie = prev->cookie;
    }

    if (conf->notice == NGX_CONF_UNSET_PTR) {
        if (prev->notice == NGX_CONF_UNSET_PTR) {
            if (ngx_http_retarget_notice_init_conf(cf, prev) != NGX_OK) {
                return NGX_CONF_ERROR;
            }
        }

        conf->notice = prev->notice;
    }

    ngx_http_retarget_page_merge_conf(&prev->page, &conf->page);
    ngx_http_retarget_banner_merge_conf(&prev->overlay, &conf->overlay);

    return ngx_http_retarget_campaign_merge(cf, &prev->campaign,
                                            &conf->campaign);
}


static char *
ngx_http_retarget_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                           *rv;
    ngx_http_retarget_loc_conf_t   *rlcf = conf;
    ngx_http_retarget_main_conf_t  *rmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv != NGX_CONF_OK || !rlcf->enable) {
        return rv;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    if (!rmcf->used) {
        rmcf->used = 1;
        rmcf->used_file = cf->conf_file->file.name.data;
        rmcf->used_line = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_retarget_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_retarget_main_conf_t *rmcf = conf;

    ngx_str_t   *value, *s;
    ngx_uint_t   i;

    if (rmcf->secrets != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rmcf->secrets = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                     sizeof(ngx_str_t));
    if (rmcf->secrets == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len < NGX_HTTP_RETARGET_MIN_SECRET) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" key #%ui is too short: %uz bytes, "
                               "at least %d are required",
                               &cmd->name, i, value[i].len,
                               NGX_HTTP_RETARGET_MIN_SECRET);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(rmcf->secrets);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    if (ngx_http_retarget_hmac_init_conf(cf, rmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_retarget_notice(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    ngx_str_t  *value;

    if (rlcf->notice != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rlcf->notice = ngx_http_retarget_tpl_load(cf, &value[1]);
    if (rlcf->notice == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_retarget_check_positive(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    if (*ms == 0) {
        return "must be more than 0";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_retarget_check_queue(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *n = data;

    if (*n == 0) {
        return "must be at least 1";
    }

    return NGX_CONF_OK;
}
