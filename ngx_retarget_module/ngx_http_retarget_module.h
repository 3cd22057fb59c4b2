
/*
 * Copyright (C) The ngx_retarget_module authors
 */


#ifndef _NGX_HTTP_RETARGET_MODULE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>

#include "ngx_http_retarget_html.h"
#include "ngx_http_retarget_money.h"


/* 16 random bytes, base64url without padding */
#define NGX_HTTP_RETARGET_VID_LEN        22
/* the first 16 bytes of HMAC-SHA256, base64url without padding */
#define NGX_HTTP_RETARGET_SIG_LEN        22
/* "<vid>.<sig>" */
#define NGX_HTTP_RETARGET_COOKIE_LEN                                         \
    (NGX_HTTP_RETARGET_VID_LEN + 1 + NGX_HTTP_RETARGET_SIG_LEN)

#define NGX_HTTP_RETARGET_MAX_AGE_CAP    (400 * 86400)
#define NGX_HTTP_RETARGET_MIN_SECRET     16

/* r->buffered bit while the body filter holds bytes; shared only with the
 * image filter, which never runs on the text/html we inject into */
#define NGX_HTTP_RETARGET_BUFFERED       0x08


/* retarget_consent */
#define NGX_HTTP_RETARGET_MODE_NOTICE    0
#define NGX_HTTP_RETARGET_MODE_OPTIN     1

/* cookie SameSite attribute */
#define NGX_HTTP_RETARGET_SAMESITE_LAX     0
#define NGX_HTTP_RETARGET_SAMESITE_STRICT  1
#define NGX_HTTP_RETARGET_SAMESITE_NONE    2


/*
 * The visitor's consent state, as $retarget_consent names it.  Only
 * NOTICE, ACK and IN allow tracking.
 */
typedef enum {
    ngx_http_retarget_consent_notice = 0,  /* notice mode, not yet dismissed */
    ngx_http_retarget_consent_ack,         /* notice dismissed */
    ngx_http_retarget_consent_in,          /* explicit opt-in */
    ngx_http_retarget_consent_pending,     /* opt-in mode, no answer yet */
    ngx_http_retarget_consent_out,         /* explicit opt-out */
    ngx_http_retarget_consent_gpc,         /* Sec-GPC: 1, no explicit choice */
    ngx_http_retarget_consent_dnt          /* DNT: 1, no explicit choice */
} ngx_http_retarget_consent_e;


/* $retarget_decision: what the filter did with this response */
typedef enum {
    ngx_http_retarget_decision_none = 0,
    ngx_http_retarget_decision_notice,     /* the notice was injected */
    ngx_http_retarget_decision_optout,
    ngx_http_retarget_decision_not_html,
    ngx_http_retarget_decision_not_ok,     /* status other than 200 */
    ngx_http_retarget_decision_encoded,    /* Content-Encoding, untouched */
    ngx_http_retarget_decision_empty,      /* nothing to inject */
    ngx_http_retarget_decision_bypass,
    ngx_http_retarget_decision_shown,      /* a reminder was injected */
    ngx_http_retarget_decision_no_cart,    /* nothing to remind of */
    ngx_http_retarget_decision_too_soon,   /* retarget_delay */
    ngx_http_retarget_decision_too_late,   /* retarget_window */
    ngx_http_retarget_decision_capped,     /* retarget_frequency */
    ngx_http_retarget_decision_holdout,    /* retarget_holdout */
    ngx_http_retarget_decision_dismissed,  /* the visitor dismissed it */
    ngx_http_retarget_decision_purchased,  /* right after a purchase */
    ngx_http_retarget_decision_redis_down,
    ngx_http_retarget_decision_timeout     /* retarget_redis_timeout */
} ngx_http_retarget_decision_e;

#define NGX_HTTP_RETARGET_DECISIONS                                          \
    (ngx_http_retarget_decision_timeout + 1)


/* where the page's read of the visitor's state is */
typedef enum {
    ngx_http_retarget_fetch_none = 0,      /* not asked for */
    ngx_http_retarget_fetch_pending,
    ngx_http_retarget_fetch_done,
    ngx_http_retarget_fetch_timeout,
    ngx_http_retarget_fetch_failed         /* link down, or an error */
} ngx_http_retarget_fetch_e;


/* the daily counters of a variant ("holdout" is one too) */
typedef enum {
    ngx_http_retarget_vc_impressions = 0,
    ngx_http_retarget_vc_clicks,
    ngx_http_retarget_vc_conversions,      /* within the click window */
    ngx_http_retarget_vc_revenue,
    ngx_http_retarget_vc_view_conversions, /* within the view window */
    ngx_http_retarget_vc_view_revenue,
    ngx_http_retarget_vc_buyers,           /* purchases within max(click,
                                              view window) of a reminder
                                              seen: the lift's converters */
    ngx_http_retarget_vc_buyer_revenue,    /* their amounts */
    ngx_http_retarget_vc_squares,          /* their (amount in units)^2 */
    ngx_http_retarget_vc_count
} ngx_http_retarget_vcounter_e;


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      counters[ngx_http_retarget_vc_count];
} ngx_http_retarget_variant_name_t;


/*
 * Templates: a Mustache subset compiled at configuration time.
 *
 * The data a template is rendered with is an "object": an array of
 * ngx_http_retarget_tfield_t.  A list is an array of objects (each an
 * ngx_array_t of fields).
 */

typedef enum {
    ngx_http_retarget_tv_str = 0,   /* printed HTML-escaped */
    ngx_http_retarget_tv_num,       /* an integer as text, printed as str */
    ngx_http_retarget_tv_bool,
    ngx_http_retarget_tv_list,      /* ngx_array_t of ngx_array_t (objects) */
    ngx_http_retarget_tv_obj,       /* a list of at most one: an object, or
                                       none (NULL or empty) */
    ngx_http_retarget_tv_json       /* script-safe JSON, only {{{data_json}}} */
} ngx_http_retarget_tv_type_e;


typedef struct {
    ngx_str_t                      name;
    ngx_http_retarget_tv_type_e    type;
    ngx_str_t                      str;     /* str, num, json */
    ngx_flag_t                     flag;    /* bool */
    ngx_array_t                   *list;    /* list, obj */
    unsigned                       hidden:1;  /* the page's plumbing, left
                                                 out of the data as JSON */
} ngx_http_retarget_tfield_t;


typedef struct ngx_http_retarget_tpl_s  ngx_http_retarget_tpl_t;


/* the Redis link of a worker */

typedef enum {
    ngx_http_retarget_link_down = 0,
    ngx_http_retarget_link_connecting,
    ngx_http_retarget_link_up
} ngx_http_retarget_link_e;


typedef struct {
    ngx_str_t                      name;          /* as configured, for logs */
    ngx_str_t                      host;          /* null-terminated IP */
    in_port_t                      port;
    ngx_str_t                      unix_path;     /* null-terminated */
    ngx_uint_t                     db;
    ngx_str_t                      password;
    ngx_str_t                      prefix;
    ngx_msec_t                     timeout;
    ngx_uint_t                     queue;
} ngx_http_retarget_redis_conf_t;


typedef struct {
    ngx_atomic_uint_t              sent;
    ngx_atomic_uint_t              dropped;
    ngx_atomic_uint_t              errors;
    ngx_atomic_uint_t              reconnects;
    ngx_atomic_uint_t              queued;
    ngx_atomic_uint_t              inflight;
} ngx_http_retarget_redis_stats_t;


typedef struct ngx_http_retarget_redis_s  ngx_http_retarget_redis_t;

/* run when the worker starts to leave, before the last writes go out */
typedef void (*ngx_http_retarget_redis_exit_pt)(void *data);
typedef void (*ngx_http_retarget_redis_link_pt)(void *data, ngx_uint_t up);


/* the pages' reads of visitor state, per worker */
typedef struct {
    ngx_atomic_uint_t              count;
    ngx_atomic_uint_t              timeouts;
    ngx_atomic_uint_t              failed;
    ngx_atomic_uint_t              msec;          /* summed latency */
} ngx_http_retarget_reads_t;


#define NGX_HTTP_RETARGET_MAX_ARGS  16

/* a Redis command, its arguments in some pool */
typedef struct {
    int                            argc;
    const char                    *argv[NGX_HTTP_RETARGET_MAX_ARGS];
    size_t                         len[NGX_HTTP_RETARGET_MAX_ARGS];
} ngx_http_retarget_cmd_t;

typedef void (*ngx_http_retarget_redis_reply_pt)(void *data,
    redisReply *reply);


typedef struct {
    ngx_http_retarget_redis_t         *rds;
    ngx_http_retarget_redis_reply_pt   handler;
    void                              *data;
    ngx_uint_t                         hold;    /* later commands wait */
} ngx_http_retarget_redis_read_t;


/*
 * Cookie attributes shared by the visitor and the consent cookie; the
 * attribute tail is built once at configuration time.
 */
typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      consent_name;
    ngx_str_t                      domain;
    ngx_str_t                      path;
    time_t                         max_age;
    ngx_uint_t                     samesite;
    ngx_flag_t                     secure;
    ngx_str_t                      tail;    /* "; Max-Age=..; Path=..;..." */
} ngx_http_retarget_cookie_conf_t;


typedef struct {
    ngx_array_t                   *secrets;       /* ngx_str_t */
    time_t                         retention;
    ngx_str_t                      control;       /* retarget_control prefix */
    void                          *hmac;          /* hmac.c's keys */
    ngx_http_retarget_tpl_t       *builtin_notice;

    ngx_http_retarget_redis_conf_t redis;         /* redis.name.len: set */
    size_t                         stream_maxlen;

    ngx_shm_zone_t                *status_zone;   /* retarget_status */

    ngx_array_t                   *variant_names; /* every variant, for
                                                     clicks and conversions:
                                                     ngx_http_retarget_
                                                     variant_name_t */
    ngx_http_retarget_tpl_t       *builtin_banner;

    ngx_uint_t                     extract_sources;  /* retarget_extract:
                                                        ..._SRC_BIT()s */
    ngx_array_t                   *catalog_values;   /* of "catalog"
                                                        events, checked
                                                        once every
                                                        retarget_extract is
                                                        known: ngx_http_
                                                        retarget_catalog_
                                                        value_t */

    ngx_array_t                   *optimizers;    /* retarget_optimize's
                                                     instances, for the
                                                     workers' timers */

    ngx_flag_t                     used;          /* any "retarget on" */
    u_char                        *used_file;     /* where, for errors */
    ngx_uint_t                     used_line;
} ngx_http_retarget_main_conf_t;


typedef struct {
    ngx_http_retarget_variant_name_t  *name;
    ngx_uint_t                         weight;
    ngx_http_retarget_tpl_t           *tpl;
    ngx_uint_t                         data_json;   /* the tpl prints it */
} ngx_http_retarget_variant_t;


typedef struct {
    time_t                         after;
    ngx_str_t                      code;          /* a fixed code, or */
    ngx_str_t                      pool;          /* pool:NAME */
    ngx_str_t                      text;
    int64_t                        min_cents;
} ngx_http_retarget_incentive_t;


/* retarget_optimize: ngx_http_retarget_optimize.c */
typedef struct ngx_http_retarget_optimize_s  ngx_http_retarget_optimize_t;


/* the reminder rules of a location: ngx_http_retarget_campaign_conf.c */
typedef struct {
    ngx_flag_t                     enable;        /* retarget_campaign */
    ngx_str_t                      link;          /* its link= */
    time_t                         delay;
    time_t                         window;
    time_t                         cart_lifetime; /* 0: no limit */
    ngx_uint_t                     frequency;     /* reminding visits */
    time_t                         period;
    ngx_uint_t                     pages;         /* shown in one visit */
    time_t                         visit_gap;     /* a visit's end */
    ngx_array_t                   *incentives;
    ngx_array_t                   *variants;
    ngx_uint_t                     total_weight;
    ngx_uint_t                     holdout;       /* percent */
    time_t                         click_window;
    time_t                         view_window;
    ngx_http_retarget_currency_t  *currency;      /* retarget_currency, or
                                                     NULL: plain numbers */
    ngx_http_retarget_optimize_t  *optimize;      /* retarget_optimize, or
                                                     NULL: the configured
                                                     weights */
} ngx_http_retarget_campaign_t;


/* a cart line or a viewed product, as the visitor's meta hash keeps it */
typedef struct {
    ngx_str_t                      sku;
    ngx_str_t                      price;
    ngx_str_t                      name;
    ngx_str_t                      image;
    ngx_str_t                      url;
    ngx_str_t                      line;          /* the shop's line id */
    ngx_str_t                      currency;      /* ISO 4217, or empty:
                                                     the catalogue's */
    int64_t                        cents;
    int64_t                        qty;
    int64_t                        ms;            /* added or viewed */
} ngx_http_retarget_item_t;


/* the visitor's stored state: one HGETALL of <prefix>{vid}:meta */
typedef struct {
    time_t                         cart_updated;
    time_t                         purchased;
    time_t                         last_reminder;
    time_t                         period_start;
    time_t                         dismissed;
    ngx_uint_t                     reminders;     /* reminding visits in
                                                     the period */
    time_t                         visit_last;    /* the reminding visit's
                                                     last page */
    ngx_uint_t                     visit_pages;   /* reminders in it */
    int64_t                        cart_cleared;  /* ms */

    time_t                         seen;          /* last impression */
    ngx_str_t                      seen_variant;
    time_t                         clicked;
    ngx_str_t                      clicked_variant;
    ngx_str_t                      variant;       /* assigned earlier */

    ngx_array_t                    cart;          /* items, newest first */
    ngx_array_t                    viewed;        /* items, newest first */
    ngx_array_t                    codes;         /* ngx_str_t pairs:
                                                     pool name, code */
    ngx_array_t                    stale;         /* fields to delete */
} ngx_http_retarget_state_t;


/* the page data a location reads: ngx_http_retarget_page.c */
typedef struct {
    ngx_uint_t                     json;          /* retarget_page_json:
                                                     id=, var= or none */
    ngx_str_t                      json_name;
    ngx_flag_t                     events;        /* an event here reads
                                                     $retarget_page_* */
} ngx_http_retarget_page_conf_t;


/* where the built-in banner sits: ngx_http_retarget_banner.c */
typedef struct {
    ngx_str_t                      position;      /* "bottom-right" ...,
                                                     NULL data: unset */
    ngx_str_t                      offset;        /* a CSS length */
} ngx_http_retarget_overlay_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_uint_t                     consent_mode;
    ngx_flag_t                     gpc;
    ngx_flag_t                     dnt;

    ngx_http_retarget_tpl_t       *notice;
    ngx_str_t                      privacy_url;

    ngx_hash_t                     types;
    ngx_array_t                   *types_keys;

    ngx_array_t                   *bypass;        /* complex values */

    ngx_http_retarget_cookie_conf_t  *cookie;

    ngx_flag_t                     control;       /* retarget_control here */

    ngx_array_t                   *events;        /* retarget_event */
    ngx_flag_t                     stream_pageviews;
    size_t                         extract_max_size;

    ngx_http_retarget_campaign_t   campaign;

    ngx_http_retarget_page_conf_t  page;

    ngx_http_retarget_overlay_conf_t  overlay;
} ngx_http_retarget_loc_conf_t;


typedef struct ngx_http_retarget_ctx_s  ngx_http_retarget_ctx_t;

/* wakes up whoever waits for the page's read: set by the waiter */
typedef void (*ngx_http_retarget_resume_pt)(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);


/*
 * Per main request.  It is reachable again after an internal redirect
 * (which wipes r->ctx) through a pool cleanup: see
 * ngx_http_retarget_get_ctx().
 */
struct ngx_http_retarget_ctx_s {
    u_char                         vid[NGX_HTTP_RETARGET_VID_LEN];
    ngx_str_t                      visitor;       /* empty: not identified */

    ngx_http_retarget_consent_e    consent;
    ngx_http_retarget_decision_e   decision;

    unsigned                       identified:1;  /* identify() has run */
    unsigned                       bypass:1;
    unsigned                       tracked:1;     /* consent allows it */
    unsigned                       new_visitor:1;
    unsigned                       set_cookie:1;  /* issue or re-sign */
    unsigned                       cookie_sent:1;
    unsigned                       consent_resign:1; /* an older key */
    unsigned                       show_notice:1;
    unsigned                       notice_shown:1;
    unsigned                       logged:1;

    /* body filter */
    unsigned                       inject:1;
    unsigned                       injected:1;

    /* the page's read, and what the reminder decided */
    ngx_http_retarget_fetch_e      fetch;
    ngx_msec_t                     fetch_start;
    ngx_http_retarget_state_t     *state;
    ngx_http_retarget_resume_pt    resume;        /* called when it ends */
    unsigned                       decided:1;
    unsigned                       may_remind:1;  /* HEAD of such a page */
    unsigned                       waiting:1;     /* at the injection point */
    unsigned                       corked:1;      /* TCP_CORK while waiting */
    unsigned                       impression:1;  /* shown, or holdout */
    unsigned                       pop_code:1;    /* take a pool code */
    unsigned                       visit:1;       /* the page goes on with
                                                     the reminding visit */
    ngx_http_retarget_variant_name_t  *variant;
    ngx_http_retarget_incentive_t *incentive;
    int64_t                        cart_count;    /* -1: unknown */
    int64_t                        cart_cents;
    ngx_chain_t                   *stash;         /* the rest of the page */
    ngx_chain_t                  **stash_last;

    ngx_str_t                      snippet;
    ngx_http_retarget_html_t       html;          /* the tokenizer */
    u_char                        *held;          /* partial "</body" */
    size_t                         held_len;
    ngx_chain_t                   *free;
    ngx_chain_t                   *busy;
};

extern ngx_module_t  ngx_http_retarget_module;


#endif /* _NGX_HTTP_RETARGET_MODULE_H_INCLUDED_ */
