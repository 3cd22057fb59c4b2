
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Behaviour logging: after the response (log phase), the page view and
 * the events of "retarget_event" become one pipelined batch of Redis
 * writes that nobody waits for, and an entry of the event stream.  The
 * values are checked in ngx_http_retarget_event_conf.c, the writes that
 * wait for an answer are in ngx_http_retarget_event_reply.c, and the
 * daily counters they move in ngx_http_retarget_counters.c.
 */


#include "ngx_http_retarget_event.h"
#include "ngx_http_retarget_catalog.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_store.h"

#include <jansson.h>
#include <openssl/rand.h>


/* this worker's logging state */
typedef struct {
    u_char                         id_prefix[12];  /* of event ids */
    int64_t                        cleared_ms; /* the last cart_cleared */
    int64_t                        last_ms;    /* the newest item */
} ngx_http_retarget_events_t;


static ngx_int_t ngx_http_retarget_log_pageview(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_log_event(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_event_conf_t *ec);
static ngx_int_t ngx_http_retarget_order_ask(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_visitor_writes(
    ngx_http_retarget_batch_t *b, ngx_http_retarget_ctx_t *ctx,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_product_hash(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_item(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev, ngx_uint_t cart);
static void ngx_http_retarget_event_item(ngx_http_retarget_event_t *ev,
    ngx_http_retarget_item_t *it);
static ngx_int_t ngx_http_retarget_cart_line(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_cart_replace(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_ask_last(ngx_http_retarget_batch_t *b);
static void ngx_http_retarget_send_last(ngx_http_retarget_batch_t *b);
static int64_t ngx_http_retarget_ms(ngx_uint_t clear);
static ngx_int_t ngx_http_retarget_cart_changed(ngx_http_retarget_batch_t *b);
static ngx_int_t ngx_http_retarget_touch(ngx_http_retarget_batch_t *b);
static ngx_http_retarget_cmd_t *ngx_http_retarget_vcmd(
    ngx_http_retarget_batch_t *b, const char *name,
    ngx_http_retarget_key_e key, ngx_str_t *a1, ngx_str_t *a2);
static ngx_http_retarget_cmd_t *ngx_http_retarget_qcmd(
    ngx_http_retarget_batch_t *b, const char *name, ngx_str_t *a1,
    ngx_str_t *a2);
static ngx_http_retarget_cmd_t *ngx_http_retarget_args(
    ngx_http_retarget_cmd_t *cmd, ngx_str_t *a1, ngx_str_t *a2);
static ngx_int_t ngx_http_retarget_vexpire(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_key_e key);
static ngx_int_t ngx_http_retarget_stream(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_str_t *type,
    ngx_http_retarget_event_t *ev, ngx_array_t *cmds);


static ngx_str_t  ngx_http_retarget_c_pageviews = ngx_string("pageviews");
static ngx_str_t  ngx_http_retarget_t_pageview = ngx_string("pageview");
static ngx_str_t  ngx_http_retarget_c_new = ngx_string("visitors_new");
static ngx_str_t  ngx_http_retarget_c_notices = ngx_string("notices");
static ngx_str_t  ngx_http_retarget_c_gpc = ngx_string("gpc");
static ngx_str_t  ngx_http_retarget_c_rejected = ngx_string("rejected");



/* constant arguments */
static ngx_str_t  ngx_http_retarget_s0 = ngx_string("0");
static ngx_str_t  ngx_http_retarget_viewed_last = ngx_string("19");


static ngx_http_retarget_events_t  *ngx_http_retarget_events;


ngx_int_t
ngx_http_retarget_event_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    u_char                       raw[8];
    ngx_str_t                    src, dst;
    ngx_http_retarget_events_t  *evs;

    evs = ngx_pcalloc(cycle->pool, sizeof(ngx_http_retarget_events_t));
    if (evs == NULL) {
        return NGX_ERROR;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "retarget: RAND_bytes() failed");
        return NGX_ERROR;
    }

    src.len = sizeof(raw);
    src.data = raw;
    dst.data = evs->id_prefix;

    /* 8 random bytes: 11 characters, null-terminated by ngx_pcalloc() */
    ngx_encode_base64url(&dst, &src);

    ngx_http_retarget_events = evs;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "retarget event: ids \"%s-...\"", evs->id_prefix);

    return NGX_OK;
}


/*
 * The page view: counted always, streamed when retarget_stream_pageviews
 * says so.  Called from the log phase (ngx_http_retarget_module.c) first,
 * before the reminder's writes and the location's events.
 */

ngx_int_t
ngx_http_retarget_event_pageview(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx)
{
    ngx_http_retarget_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    return ngx_http_retarget_log_pageview(r, ctx, rlcf);
}


/* the location's retarget_event events, each its own pipelined batch */

ngx_int_t
ngx_http_retarget_event_log(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx)
{
    ngx_uint_t                       i;
    ngx_http_retarget_loc_conf_t    *rlcf;
    ngx_http_retarget_event_conf_t  *ec;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    /* a HEAD request did not do what the location's events say */

    if (rlcf->events == NULL || !ctx->tracked
        || r->method == NGX_HTTP_HEAD
        || r->headers_out.status >= NGX_HTTP_BAD_REQUEST)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event: none logged, status %ui",
                       r->headers_out.status);
        return NGX_OK;
    }

    ec = rlcf->events->elts;

    for (i = 0; i < rlcf->events->nelts; i++) {
        (void) ngx_http_retarget_log_event(r, ctx, &ec[i]);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_log_pageview(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_loc_conf_t *rlcf)
{
    ngx_array_t  *cmds;

    if (ctx->consent == ngx_http_retarget_consent_gpc) {
        ngx_http_retarget_count(&ngx_http_retarget_c_gpc, 1);
    }

    if (ctx->notice_shown) {
        ngx_http_retarget_count(&ngx_http_retarget_c_notices, 1);
    }

    /* a page view: an HTML page this module may inject into */

    if (r->headers_out.status != NGX_HTTP_OK
        || ngx_http_test_content_type(r, &rlcf->types) == NULL)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event: not a page view, status %ui",
                       r->headers_out.status);
        return NGX_OK;
    }

    ngx_http_retarget_count(&ngx_http_retarget_c_pageviews, 1);

    if (ctx->new_visitor) {
        ngx_http_retarget_count(&ngx_http_retarget_c_new, 1);
    }

    if (!rlcf->stream_pageviews || !ctx->tracked) {
        /* plain page views touch no per-visitor state */
        return NGX_OK;
    }

    cmds = ngx_array_create(r->pool, 1, sizeof(ngx_http_retarget_cmd_t));
    if (cmds == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_stream(r, ctx, &ngx_http_retarget_t_pageview,
                                 NULL, cmds)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget event: page view streamed, %ui commands",
                   cmds->nelts);

    ngx_http_retarget_send_cmds(cmds->elts, cmds->nelts);

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_log_event(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_event_conf_t *ec)
{
    u_char                     *p;
    ngx_int_t                   rc;
    ngx_array_t                *stream;
    ngx_http_retarget_cmd_t    *cmd;
    ngx_http_retarget_batch_t   b;
    ngx_http_retarget_event_t   ev;

    ngx_memzero(&ev, sizeof(ngx_http_retarget_event_t));
    ev.conf = ec;

    rc = ngx_http_retarget_event_values(r, &ev);

    if (rc == NGX_DECLINED) {
        /* the "if=" condition is false */
        return NGX_OK;
    }

    if (rc == NGX_OK && ec->type == ngx_http_retarget_ev_cart_sync) {
        rc = ngx_http_retarget_cart_sync_values(r, &ev);
    }

    if (rc != NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event \"%V\" rejected", &ec->name);
        ngx_http_retarget_count(&ngx_http_retarget_c_rejected, 1);
        return NGX_OK;
    }

    ngx_memzero(&b, sizeof(ngx_http_retarget_batch_t));

    b.r = r;
    b.rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);
    b.vid = &ctx->visitor;
    b.line = NGX_CONF_UNSET_UINT;

    b.asks = ngx_array_create(r->pool, 2, sizeof(ngx_http_retarget_cmd_t));
    b.cmds = ngx_array_create(r->pool, 16, sizeof(ngx_http_retarget_cmd_t));
    stream = ngx_array_create(r->pool, 1, sizeof(ngx_http_retarget_cmd_t));
    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

    if (b.asks == NULL || b.cmds == NULL || stream == NULL || p == NULL) {
        return NGX_ERROR;
    }

    b.now.data = p;
    b.now.len = ngx_sprintf(p, "%T", ngx_time()) - p;

    rc = ngx_http_retarget_stream(r, ctx, &ec->name, &ev, stream);

    if (rc == NGX_DECLINED) {
        ngx_http_retarget_count(&ngx_http_retarget_c_rejected, 1);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ec->type == ngx_http_retarget_ev_purchase
        && ev.v[ngx_http_retarget_p_order].len
        && ngx_http_retarget_order_ask(&b, &ev) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_visitor_writes(&b, ctx, &ev) != NGX_OK) {
        return NGX_ERROR;
    }

    if (stream->nelts) {
        cmd = ngx_array_push(b.cmds);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        *cmd = *(ngx_http_retarget_cmd_t *) stream->elts;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget event \"%V\": %ui writes, %ui asks, "
                   "visitor \"%V\"", &ec->name, b.cmds->nelts,
                   b.asks->nelts, b.vid);

    if (b.asks->nelts) {
        switch (ec->type) {

        case ngx_http_retarget_ev_cart_add:
            return ngx_http_retarget_cart_op(&b, &ev);

        case ngx_http_retarget_ev_product:
            return ngx_http_retarget_viewed_op(&b, &ev);

        case ngx_http_retarget_ev_cart_remove:
        case ngx_http_retarget_ev_cart_update:
            return ngx_http_retarget_line_op(&b, &ev);

        default:
            return ngx_http_retarget_purchase_op(&b, &ev);
        }
    }

    ngx_http_retarget_send_cmds(b.cmds->elts, b.cmds->nelts);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget event \"%V\" written, counted as \"%V\"",
                   &ec->name, &ec->counter);

    ngx_http_retarget_count(&ec->counter, 1);

    if (ec->type == ngx_http_retarget_ev_purchase && ev.cents) {
        ngx_http_retarget_count(&ngx_http_retarget_c_revenue, ev.cents);
    }

    return NGX_OK;
}


/*
 * The visitor's keys, all under the hash tag {vid} and with the
 * retention TTL.  A brand-new id gets none: the event is counted and
 * streamed, and the visitor's keys start when the cookie comes back
 * (clients that drop cookies never create any).
 */

static ngx_int_t
ngx_http_retarget_visitor_writes(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_event_t *ev)
{
    u_char                       *p;
    ngx_str_t                    *sku, qty, line;
    ngx_uint_t                    clear;
    ngx_http_retarget_ev_type_e   type;

    type = ev->conf->type;
    sku = &ev->v[ngx_http_retarget_p_sku];

    if (ev->conf->catalog) {
        if (ngx_http_retarget_product_hash(b, ev) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                       "retarget event \"%V\": not \"catalog\", the "
                       "product data is left alone", &ev->conf->name);
    }

    if (ctx->new_visitor || ctx->visitor.len == 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                       "retarget event: a new visitor, no visitor keys");
        return NGX_OK;
    }

    clear = (type == ngx_http_retarget_ev_cart_clear
             || type == ngx_http_retarget_ev_purchase
             || type == ngx_http_retarget_ev_cart_sync);

    p = ngx_pnalloc(b->r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    b->ms.data = p;
    b->ms.len = ngx_sprintf(p, "%L", ngx_http_retarget_ms(clear)) - p;

    switch (type) {

    case ngx_http_retarget_ev_product:
        /* newest first, each sku once, capped */
        if (ngx_http_retarget_vcmd(b, "LREM", ngx_http_retarget_key_viewed,
                                   &ngx_http_retarget_s0, sku)
            == NULL
            || ngx_http_retarget_vcmd(b, "LPUSH", ngx_http_retarget_key_viewed,
                                      sku, NULL)
               == NULL
            || ngx_http_retarget_vcmd(b, "LTRIM", ngx_http_retarget_key_viewed,
                                      &ngx_http_retarget_s0,
                                      &ngx_http_retarget_viewed_last)
               == NULL
            || ngx_http_retarget_vexpire(b, ngx_http_retarget_key_viewed)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /*
         * What a browse reminder shows: only products with something.
         * The line waits for "HLEN meta" and "HEXISTS meta v:SKU": a
         * meta hash at NGX_HTTP_RETARGET_META_MAX gets no new field.
         */

        if (ev->v[ngx_http_retarget_p_name].len
            || ev->v[ngx_http_retarget_p_price].len)
        {
            if (ngx_http_retarget_item_name(b->r->pool, 0, sku, &line)
                != NGX_OK
                || ngx_http_retarget_vcmd(b, "HLEN",
                                          ngx_http_retarget_key_meta,
                                          NULL, NULL)
                   == NULL
                || ngx_http_retarget_ask_last(b) != NGX_OK
                || ngx_http_retarget_vcmd(b, "HEXISTS",
                                          ngx_http_retarget_key_meta,
                                          &line, NULL)
                   == NULL
                || ngx_http_retarget_ask_last(b) != NGX_OK
                || ngx_http_retarget_item(b, ev, 0) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        goto meta;

    case ngx_http_retarget_ev_cart_add:
        p = ngx_pnalloc(b->r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        qty.data = p;
        qty.len = ngx_sprintf(p, "%L", ev->qty) - p;

        /*
         * The line in the meta holds the total the cart answers; the
         * sizes of the cart and of the meta, asked after it, decide
         * whether a new line may stay (ngx_http_retarget_cart_done()).
         */

        if (ngx_http_retarget_vcmd(b, "HINCRBY", ngx_http_retarget_key_cart,
                                   sku, &qty)
            == NULL
            || ngx_http_retarget_ask_last(b) != NGX_OK
            || ngx_http_retarget_vcmd(b, "HLEN", ngx_http_retarget_key_cart,
                                      NULL, NULL)
               == NULL
            || ngx_http_retarget_ask_last(b) != NGX_OK
            || ngx_http_retarget_vcmd(b, "HLEN", ngx_http_retarget_key_meta,
                                      NULL, NULL)
               == NULL
            || ngx_http_retarget_ask_last(b) != NGX_OK
            || ngx_http_retarget_item(b, ev, 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_retarget_cart_changed(b);

    case ngx_http_retarget_ev_cart_update:
        return ngx_http_retarget_cart_line(b, ev);

    case ngx_http_retarget_ev_cart_sync:
        return ngx_http_retarget_cart_replace(b, ev);

    case ngx_http_retarget_ev_cart_remove:
        if (sku->len == 0) {
            /* only the shop's line id: Redis knows its sku */
            return ngx_http_retarget_cart_line(b, ev);
        }

        if (ngx_http_retarget_item_name(b->r->pool, 1, sku, &line) != NGX_OK
            || ngx_http_retarget_vcmd(b, "HDEL", ngx_http_retarget_key_cart,
                                      sku, NULL)
               == NULL
            || ngx_http_retarget_vcmd(b, "HDEL", ngx_http_retarget_key_meta,
                                      &line, NULL)
               == NULL)
        {
            return NGX_ERROR;
        }

        return ngx_http_retarget_cart_changed(b);

    case ngx_http_retarget_ev_cart_clear:
    case ngx_http_retarget_ev_purchase:

        if (type == ngx_http_retarget_ev_purchase) {
            /*
             * Sent now, not behind the order check: the very next page
             * knows.  What the cart and its lines become waits for the
             * answer: a thank-you page loaded again clears nothing.
             */

            if (ngx_http_retarget_vcmd(b, "HSET", ngx_http_retarget_key_meta,
                                       &ngx_http_retarget_f_purchased,
                                       &b->now)
                == NULL)
            {
                return NGX_ERROR;
            }

            ngx_http_retarget_send_last(b);

            /* what led to it: the last click, the last reminder seen */

            if (ngx_http_retarget_vcmd(b, "HMGET", ngx_http_retarget_key_meta,
                                       &ngx_http_retarget_f_clicked,
                                       &ngx_http_retarget_f_seen)
                == NULL
                || ngx_http_retarget_ask_last(b) != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (ngx_http_retarget_vcmd(b, "HSET",
                                          ngx_http_retarget_key_meta,
                                          &ngx_http_retarget_f_cart_updated,
                                          &b->now)
                   == NULL)
        {
            return NGX_ERROR;
        }

        /*
         * The lines in the meta are stale from now on (state.c); those a
         * purchase clears were bought: the script deletes them and the
         * viewed products of the same skus.
         */

        if (ngx_http_retarget_vcmd(b, "DEL", ngx_http_retarget_key_cart,
                                   NULL, NULL)
            == NULL
            || ngx_http_retarget_qcmd(b, "ZREM", b->vid, NULL) == NULL)
        {
            return NGX_ERROR;
        }

        if (type == ngx_http_retarget_ev_purchase) {
            if (ngx_http_retarget_purchase_clear(b->r->pool, b->rmcf,
                                                 b->cmds, b->vid, &b->ms)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (ngx_http_retarget_vcmd(b, "HSET",
                                          ngx_http_retarget_key_meta,
                                          &ngx_http_retarget_f_cart_cleared,
                                          &b->ms)
                   == NULL)
        {
            return NGX_ERROR;
        }

        goto meta;

    case ngx_http_retarget_ev_checkout:
        if (ngx_http_retarget_vcmd(b, "HSET", ngx_http_retarget_key_meta,
                                   &ngx_http_retarget_f_checkout, &b->now)
            == NULL)
        {
            return NGX_ERROR;
        }

        goto meta;

    case ngx_http_retarget_ev_identify:
        if (ngx_http_retarget_vcmd(b, "HSET", ngx_http_retarget_key_meta,
                                   &ngx_http_retarget_f_user,
                                   &ev->v[ngx_http_retarget_p_user])
            == NULL)
        {
            return NGX_ERROR;
        }

        goto meta;

    default: /* custom events only reach the stream and the counters */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                       "retarget event \"%V\": stream and counter only",
                       &ev->conf->name);
        return NGX_OK;
    }

meta:

    return ngx_http_retarget_touch(b);
}


/*
 * "SET <order key> 1 NX EX <retention>": a purchase with an order
 * id is counted once, however often the thank-you page is loaded.
 */

static ngx_int_t
ngx_http_retarget_order_ask(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_key_cmd(b->r->pool, b->rmcf, b->cmds, "SET",
                                    ngx_http_retarget_key_order,
                                    &ev->v[ngx_http_retarget_p_order]);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg(cmd, (u_char *) "1", 1);
    ngx_http_retarget_arg(cmd, (u_char *) "NX", 2);
    ngx_http_retarget_arg(cmd, (u_char *) "EX", 2);

    if (ngx_http_retarget_arg_num(b->r->pool, cmd, b->rmcf->retention)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                   "retarget event: asks whether order \"%V\" is new",
                   &ev->v[ngx_http_retarget_p_order]);

    return ngx_http_retarget_ask_last(b);
}


/* the product's own hash, for reminders and email workers */

static ngx_int_t
ngx_http_retarget_product_hash(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_item_t  it;

    if (ev->v[ngx_http_retarget_p_sku].len == 0
        || (ev->v[ngx_http_retarget_p_name].len == 0
            && ev->v[ngx_http_retarget_p_price].len == 0))
    {
        return NGX_OK;
    }

    ngx_http_retarget_event_item(ev, &it);

    /*
     * A product page writes the product on every view: when the worker
     * knows it with these values already (read since its last change),
     * nothing is written.  Each write would make Redis tell every worker
     * to forget the product (ngx_http_retarget_catalog.c), and costs it
     * a write.  The TTL is then refreshed by the next write that changes
     * something, or by the shop's own writes.
     */

    if (ngx_http_retarget_catalog_same(&it, &it.currency,
                                       &ev->v[ngx_http_retarget_p_in_stock]))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                       "retarget event: product \"%V\" unchanged, "
                       "not written", &it.sku);
        return NGX_OK;
    }

    return ngx_http_retarget_product_set(b->r->pool, b->rmcf, b->cmds, &it,
                                         &ev->v[ngx_http_retarget_p_in_stock]);
}


/*
 * A cart line or a viewed product in the meta: what a reminder shows,
 * read with the rest of the meta.  The QTY of a cart line is the cart's
 * answer: room is left for it, see ngx_http_retarget_cart_done().
 */

static ngx_int_t
ngx_http_retarget_item(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev, ngx_uint_t cart)
{
    ngx_http_retarget_item_t  it;

    ngx_http_retarget_event_item(ev, &it);

    if (ngx_http_retarget_item_set(b->r->pool, b->rmcf, b->cmds, b->vid, &it,
                                   cart, &b->ms, &b->gap)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    b->line = b->cmds->nelts - 1;

    return NGX_OK;
}


/* the values of an event, as the store writes an item */

static void
ngx_http_retarget_event_item(ngx_http_retarget_event_t *ev,
    ngx_http_retarget_item_t *it)
{
    ngx_memzero(it, sizeof(ngx_http_retarget_item_t));

    it->sku = ev->v[ngx_http_retarget_p_sku];
    it->price = ev->v[ngx_http_retarget_p_price];
    it->name = ev->v[ngx_http_retarget_p_name];
    it->image = ev->v[ngx_http_retarget_p_image];
    it->url = ev->v[ngx_http_retarget_p_url];
    it->currency = ev->v[ngx_http_retarget_p_currency];
    it->line = ev->v[ngx_http_retarget_p_line];
    it->cents = ev->cents;
    it->qty = ev->qty;
}


/*
 * cart_remove by the shop's line id, cart_update by either: the line's
 * script asks, its answer (no such line: nothing changed) decides the
 * event's other writes, ngx_http_retarget_line_op().
 */

static ngx_int_t
ngx_http_retarget_cart_line(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_cart_change_t  ch;

    ngx_memzero(&ch, sizeof(ngx_http_retarget_cart_change_t));

    ch.sku = ev->v[ngx_http_retarget_p_sku];
    ch.line = ev->v[ngx_http_retarget_p_line];
    ch.now = &b->now;

    if (ev->conf->type == ngx_http_retarget_ev_cart_update) {
        ch.delta = (ev->conf->params[ngx_http_retarget_p_delta] != NULL);
        ch.qty = ch.delta ? ev->delta : ev->qty;
    }

    if (ngx_http_retarget_cart_line_op(b->r->pool, b->rmcf, b->cmds, b->vid,
                                       &ch)
        != NGX_OK
        || ngx_http_retarget_ask_last(b) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_touch(b);
}


/*
 * cart_sync: the shop's cart, in its order, replaces the visitor's.  Its
 * lines are stamped after the clear (b->ms), the first one newest: a
 * reminder lists them as the shop does.
 */

static ngx_int_t
ngx_http_retarget_cart_replace(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    u_char                    *p;
    size_t                     len;
    int64_t                    base;
    ngx_str_t                  ms, *enc, lines;
    ngx_uint_t                 i, n;
    ngx_http_retarget_item_t  *it;

    it = ev->items->elts;
    n = ev->items->nelts;

    base = ngx_http_retarget_ms(0);

    if (n > 1) {
        ngx_http_retarget_events->last_ms =
            ngx_max(ngx_http_retarget_events->last_ms,
                    base + (int64_t) n - 1);
    }

    enc = ngx_palloc(b->r->pool, (n + 1) * sizeof(ngx_str_t));
    p = ngx_pnalloc(b->r->pool, NGX_INT64_LEN);

    if (enc == NULL || p == NULL) {
        return NGX_ERROR;
    }

    ms.data = p;
    len = 0;

    for (i = 0; i < n; i++) {
        ms.len = ngx_sprintf(p, "%L", base + (int64_t) (n - 1 - i)) - p;

        if (ngx_http_retarget_cart_sync_line(b->r->pool, &it[i], &ms, &enc[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        len += enc[i].len;
    }

    lines.len = len;
    lines.data = ngx_pnalloc(b->r->pool, len + 1);
    if (lines.data == NULL) {
        return NGX_ERROR;
    }

    p = lines.data;

    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, enc[i].data, enc[i].len);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                   "retarget event: cart replaced by %ui lines of \"%V\"",
                   n, b->vid);

    if (ngx_http_retarget_cart_sync(b->r->pool, b->rmcf, b->cmds, b->vid,
                                    &b->now, &b->ms, &lines)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_touch(b);
}


/* the command just built is an ask: its answer decides the writes */

static ngx_int_t
ngx_http_retarget_ask_last(ngx_http_retarget_batch_t *b)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_array_push(b->asks);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    b->cmds->nelts--;
    *cmd = ((ngx_http_retarget_cmd_t *) b->cmds->elts)[b->cmds->nelts];

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                   "retarget event: \"%*s\" asks, its answer decides",
                   cmd->len[0], cmd->argv[0]);

    return NGX_OK;
}


/* the command just built goes out now, ahead of the event's others */

static void
ngx_http_retarget_send_last(ngx_http_retarget_batch_t *b)
{
    b->cmds->nelts--;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                   "retarget event: a write sent ahead of the batch");

    ngx_http_retarget_send_cmds(
        (ngx_http_retarget_cmd_t *) b->cmds->elts + b->cmds->nelts, 1);
}


/*
 * Now in milliseconds, the time of items and of "cart_cleared".  A line
 * is stale when it is not newer than the clear, so within a millisecond
 * (a location that logs cart_clear, then cart_add) what this worker
 * stamps keeps the order it happens in: a line after a clear is a
 * millisecond newer, a clear after a line is not older.
 */

static int64_t
ngx_http_retarget_ms(ngx_uint_t clear)
{
    int64_t                        ms;
    ngx_time_t                    *tp;
    ngx_http_retarget_events_t  *rc;

    rc = ngx_http_retarget_events;

    tp = ngx_timeofday();
    ms = (int64_t) tp->sec * 1000 + tp->msec;

    if (clear) {
        rc->cleared_ms = ngx_max(ms, rc->last_ms);
        return rc->cleared_ms;
    }

    ms = ngx_max(ms, rc->cleared_ms + 1);
    rc->last_ms = ngx_max(ms, rc->last_ms);

    return ms;
}


/* the cart changed: its TTL, the abandoned-cart queue, the meta */

static ngx_int_t
ngx_http_retarget_cart_changed(ngx_http_retarget_batch_t *b)
{
    ngx_http_retarget_cmd_t  *cmd;

    if (ngx_http_retarget_vexpire(b, ngx_http_retarget_key_cart) != NGX_OK) {
        return NGX_ERROR;
    }

    cmd = ngx_http_retarget_qcmd(b, "ZADD", &b->now, b->vid);
    if (cmd == NULL
        || ngx_http_retarget_vcmd(b, "HSET", ngx_http_retarget_key_meta,
                                  &ngx_http_retarget_f_cart_updated, &b->now)
           == NULL)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_touch(b);
}


/* last_seen, first_seen once, and the retention TTL of the meta */

static ngx_int_t
ngx_http_retarget_touch(ngx_http_retarget_batch_t *b)
{
    if (ngx_http_retarget_vcmd(b, "HSET", ngx_http_retarget_key_meta,
                               &ngx_http_retarget_f_last_seen, &b->now)
        == NULL
        || ngx_http_retarget_vcmd(b, "HSETNX", ngx_http_retarget_key_meta,
                                  &ngx_http_retarget_f_first_seen, &b->now)
           == NULL)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_vexpire(b, ngx_http_retarget_key_meta);
}


/* NAME <a key of the visitor> [a1 [a2]] */

static ngx_http_retarget_cmd_t *
ngx_http_retarget_vcmd(ngx_http_retarget_batch_t *b, const char *name,
    ngx_http_retarget_key_e key, ngx_str_t *a1, ngx_str_t *a2)
{
    return ngx_http_retarget_args(ngx_http_retarget_key_cmd(b->r->pool,
                                                            b->rmcf, b->cmds,
                                                            name, key,
                                                            b->vid),
                                  a1, a2);
}


/* NAME <the abandoned-cart queue> [a1 [a2]] */

static ngx_http_retarget_cmd_t *
ngx_http_retarget_qcmd(ngx_http_retarget_batch_t *b, const char *name,
    ngx_str_t *a1, ngx_str_t *a2)
{
    return ngx_http_retarget_args(ngx_http_retarget_key_cmd(b->r->pool,
                                                            b->rmcf, b->cmds,
                                                            name,
                                                  ngx_http_retarget_key_carts,
                                                            NULL),
                                  a1, a2);
}


static ngx_http_retarget_cmd_t *
ngx_http_retarget_args(ngx_http_retarget_cmd_t *cmd, ngx_str_t *a1,
    ngx_str_t *a2)
{
    if (cmd == NULL) {
        return NULL;
    }

    if (a1 != NULL) {
        ngx_http_retarget_arg_str(cmd, a1);
    }

    if (a2 != NULL) {
        ngx_http_retarget_arg_str(cmd, a2);
    }

    return cmd;
}


static ngx_int_t
ngx_http_retarget_vexpire(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_key_e key)
{
    return ngx_http_retarget_expire(b->r->pool, b->rmcf, b->cmds, key,
                                    b->vid);
}


/*
 * XADD <prefix>events MAXLEN ~ N * e <json>; the JSON carries an id of
 * its own, so consumers can drop duplicates however the entry reached
 * them.  A returning visitor's entry has the "vid" and is indexed under
 * the visitor's keys (ngx_http_retarget_stream_add()), so that "forget"
 * deletes it; a brand-new id has no keys, and its entries carry no vid
 * (nothing could find them to erase them).  The identify value (an
 * e-mail, often) is never streamed: it is kept in the meta hash only.
 */

static ngx_int_t
ngx_http_retarget_stream(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_str_t *type, ngx_http_retarget_event_t *ev, ngx_array_t *cmds)
{
    char                           *dump;
    u_char                          id[64], *p;
    size_t                          len;
    json_t                         *e, *s;
    ngx_str_t                       entry, *vid;
    ngx_uint_t                      k;
    static ngx_uint_t               seq;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->stream_maxlen == 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event: no stream");
        return NGX_OK;
    }

    e = json_object();
    if (e == NULL) {
        return NGX_ERROR;
    }

    /* unique across workers, restarts and the nginx servers of a shop */
    p = ngx_sprintf(id, "%s-%xi", ngx_http_retarget_events->id_prefix,
                    seq++);

    json_object_set_new(e, "id", json_stringn((char *) id, p - id));
    json_object_set_new(e, "type", json_stringn((char *) type->data,
                                                type->len));
    json_object_set_new(e, "ts", json_integer(ngx_time()));

    vid = NULL;

    if (ctx->visitor.len && !ctx->new_visitor) {
        vid = &ctx->visitor;
        json_object_set_new(e, "vid",
                            json_stringn((char *) ctx->visitor.data,
                                         ctx->visitor.len));
    }

    json_object_set_new(e, "new", json_boolean(ctx->new_visitor));

    /* escaped: a URI need not be UTF-8, the JSON must be */

    len = r->uri.len + 2 * ngx_escape_uri(NULL, r->uri.data, r->uri.len,
                                          NGX_ESCAPE_URI);
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        json_decref(e);
        return NGX_ERROR;
    }

    ngx_escape_uri(p, r->uri.data, r->uri.len, NGX_ESCAPE_URI);
    json_object_set_new(e, "uri", json_stringn((char *) p, len));

    if (ev != NULL && ev->conf->type == ngx_http_retarget_ev_cart_sync) {
        /* the cart it became, not its JSON nor its paths */
        json_object_set_new(e, "lines", json_integer(ev->items->nelts));
        ev = NULL;

    } else if (ev != NULL
               && ev->conf->params[ngx_http_retarget_p_qty] != NULL)
    {
        json_object_set_new(e, "qty", json_integer(ev->qty));
    }

    for (k = 0; ev != NULL && k < ngx_http_retarget_p_if; k++) {

        if (ev->v[k].len == 0 || k == ngx_http_retarget_p_qty
            || k == ngx_http_retarget_p_user)
        {
            continue;
        }

        /* NULL for bytes that are not UTF-8: the event is refused */
        s = json_stringn((char *) ev->v[k].data, ev->v[k].len);
        if (s == NULL) {
            json_decref(e);
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "retarget: event \"%V\" rejected: \"%s\" is "
                          "not UTF-8", type, ngx_http_retarget_json_keys[k]);
            return NGX_DECLINED;
        }

        json_object_set_new(e, ngx_http_retarget_json_keys[k], s);
    }

    dump = json_dumps(e, JSON_COMPACT);
    json_decref(e);

    if (dump == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(dump);
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        free(dump);
        return NGX_ERROR;
    }

    ngx_memcpy(p, dump, len);
    free(dump);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget event: stream entry \"%V\" %*s", type, len, p);

    entry.data = p;
    entry.len = len;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget event: stream entry %s, \"user\" %s",
                   vid ? "indexed for the visitor" : "without a visitor id",
                   ev && ev->v[ngx_http_retarget_p_user].len
                   ? "left out" : "absent");

    return ngx_http_retarget_stream_add(r->pool, rmcf, cmds, vid, &entry);
}
