
/*
 * Copyright (C) The ngx_retarget_module authors
 */


#ifndef _NGX_HTTP_RETARGET_MODULE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>


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
    ngx_http_retarget_decision_bypass
} ngx_http_retarget_decision_e;


/*
 * Templates: a Mustache subset compiled at configuration time.
 *
 * The data a template is rendered with is an "object": an array of
 * ngx_http_retarget_tfield_t.  A list is an array of objects (each an
 * ngx_array_t of fields).
 */

typedef enum {
    ngx_http_retarget_tv_str = 0,   /* printed HTML-escaped */
    ngx_http_retarget_tv_bool,
    ngx_http_retarget_tv_list,      /* ngx_array_t of ngx_array_t (objects) */
    ngx_http_retarget_tv_json       /* script-safe JSON, only {{{data_json}}} */
} ngx_http_retarget_tv_type_e;


typedef struct {
    ngx_str_t                      name;
    ngx_http_retarget_tv_type_e    type;
    ngx_str_t                      str;     /* str, json */
    ngx_flag_t                     flag;    /* bool */
    ngx_array_t                   *list;    /* list */
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
    void                          *hmac;          /* identity.c's keys */
    ngx_http_retarget_tpl_t       *builtin_notice;

    ngx_http_retarget_redis_conf_t redis;         /* redis.name.len: set */
    size_t                         stream_maxlen;

    ngx_shm_zone_t                *status_zone;   /* retarget_status */

    ngx_flag_t                     used;          /* any "retarget on" */
    u_char                        *used_file;     /* where, for errors */
    ngx_uint_t                     used_line;
} ngx_http_retarget_main_conf_t;


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
} ngx_http_retarget_loc_conf_t;


/*
 * Per main request.  It is reachable again after an internal redirect
 * (which wipes r->ctx) through a pool cleanup: see
 * ngx_http_retarget_get_ctx().
 */
typedef struct {
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
    unsigned                       show_notice:1;
    unsigned                       logged:1;

    /* body filter */
    unsigned                       inject:1;
    unsigned                       injected:1;

    ngx_str_t                      snippet;
    u_char                        *held;          /* partial "</body" */
    size_t                         held_len;
    ngx_chain_t                   *free;
    ngx_chain_t                   *busy;
} ngx_http_retarget_ctx_t;


/* ngx_http_retarget_module.c */
ngx_http_retarget_ctx_t *ngx_http_retarget_request(ngx_http_request_t *r);
ngx_int_t ngx_http_retarget_bypass(ngx_http_request_t *r);
ngx_int_t ngx_http_retarget_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len, ngx_uint_t copy);
ngx_http_retarget_ctx_t *ngx_http_retarget_get_ctx(ngx_http_request_t *r);
ngx_http_retarget_ctx_t *ngx_http_retarget_create_ctx(ngx_http_request_t *r);

/* ngx_http_retarget_identity.c */
ngx_int_t ngx_http_retarget_identity_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_cookie_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, u_char *vid, ngx_uint_t *resign);
ngx_int_t ngx_http_retarget_identify(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);
ngx_int_t ngx_http_retarget_set_cookie(ngx_http_request_t *r,
    ngx_http_retarget_cookie_conf_t *cc, ngx_str_t *name, ngx_str_t *value,
    time_t max_age);
char *ngx_http_retarget_cookie_conf(ngx_conf_t *cf,
    ngx_http_retarget_cookie_conf_t *cc);
char *ngx_http_retarget_cookie(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_retarget_issue_cookie(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);

/* ngx_http_retarget_consent.c */
ngx_http_retarget_consent_e ngx_http_retarget_consent_state(
    ngx_http_request_t *r, ngx_http_retarget_loc_conf_t *rlcf);
ngx_int_t ngx_http_retarget_consent_tracks(ngx_http_retarget_consent_e c);
ngx_str_t *ngx_http_retarget_consent_name(ngx_http_retarget_consent_e c);

/* ngx_http_retarget_template.c */
ngx_http_retarget_tpl_t *ngx_http_retarget_tpl_compile(ngx_conf_t *cf,
    ngx_str_t *text, ngx_str_t *source);
ngx_http_retarget_tpl_t *ngx_http_retarget_tpl_load(ngx_conf_t *cf,
    ngx_str_t *path);
ngx_int_t ngx_http_retarget_tpl_render(ngx_pool_t *pool,
    ngx_http_retarget_tpl_t *tpl, ngx_array_t *data, ngx_str_t *out);
size_t ngx_http_retarget_escape_html(u_char *dst, u_char *src, size_t size);
size_t ngx_http_retarget_escape_json(u_char *dst, u_char *src, size_t size);

/* ngx_http_retarget_notice.c */
ngx_int_t ngx_http_retarget_notice_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_loc_conf_t *rlcf);
ngx_int_t ngx_http_retarget_notice_render(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx,
    ngx_str_t *out);

/* ngx_http_retarget_redis.c */
ngx_int_t ngx_http_retarget_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
void ngx_http_retarget_redis_exit_process(ngx_cycle_t *cycle);
ngx_http_retarget_redis_t *ngx_http_retarget_redis_get(void);
ngx_int_t ngx_http_retarget_redis_write(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen);
ngx_int_t ngx_http_retarget_redis_read(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_reply_pt handler, void *data);
void ngx_http_retarget_redis_hold(ngx_http_retarget_redis_t *rds);
void ngx_http_retarget_redis_release(ngx_http_retarget_redis_t *rds);
void ngx_http_retarget_redis_resume(ngx_http_retarget_redis_t *rds);
ngx_http_retarget_link_e ngx_http_retarget_redis_state(
    ngx_http_retarget_redis_t *rds, ngx_http_retarget_redis_stats_t *stats);
char *ngx_http_retarget_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_retarget_wait.c */
typedef struct ngx_http_retarget_wait_s  ngx_http_retarget_wait_t;
typedef void (*ngx_http_retarget_wait_reply_pt)(ngx_http_request_t *r,
    void *data, redisReply *reply);
typedef void (*ngx_http_retarget_wait_done_pt)(ngx_http_request_t *r,
    void *data, ngx_int_t rc);

ngx_int_t ngx_http_retarget_wait(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_retarget_cmd_t *cmds, ngx_http_retarget_wait_reply_pt reply,
    ngx_http_retarget_wait_done_pt done, void *data);

/* ngx_http_retarget_event.c */
ngx_http_retarget_cmd_t *ngx_http_retarget_cmd(ngx_array_t *cmds,
    const char *name);
void ngx_http_retarget_arg(ngx_http_retarget_cmd_t *cmd, u_char *data,
    size_t len);
ngx_int_t ngx_http_retarget_arg_key(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_str_t *vid, char *suffix, ngx_str_t *tail);
ngx_int_t ngx_http_retarget_arg_num(ngx_pool_t *pool,
    ngx_http_retarget_cmd_t *cmd, int64_t n);
void ngx_http_retarget_shutdown_hook(ngx_http_retarget_redis_t *rds);
ngx_int_t ngx_http_retarget_event_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_log_handler(ngx_http_request_t *r);
char *ngx_http_retarget_event_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_retarget_count(ngx_str_t *field, int64_t n);
ngx_int_t ngx_http_retarget_forget(ngx_http_request_t *r,
    ngx_str_t *visitor);

/* ngx_http_retarget_rights.c */
ngx_int_t ngx_http_retarget_me(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
ngx_int_t ngx_http_retarget_forget_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);

/* ngx_http_retarget_status.c */
char *ngx_http_retarget_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_retarget_status_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
void ngx_http_retarget_status_decision(ngx_http_retarget_decision_e d);

/* ngx_http_retarget_filter.c */
ngx_int_t ngx_http_retarget_filter_init(ngx_conf_t *cf);

/* ngx_http_retarget_control.c */
char *ngx_http_retarget_control(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_retarget_same_site_path(ngx_str_t *path);


extern ngx_module_t  ngx_http_retarget_module;


#endif /* _NGX_HTTP_RETARGET_MODULE_H_INCLUDED_ */
