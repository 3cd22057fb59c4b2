
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The page's read of the visitor's state: one "HGETALL <prefix>{vid}:meta",
 * sent from the preaccess phase so that Redis answers while the upstream
 * works.  The write path keeps everything a reminder needs in that one
 * hash (cart lines and viewed products with their product details, the
 * timing and frequency state), so the read costs Redis a single cheap
 * command.  The request does not wait here: the body filter waits at the
 * injection point if the answer has not come yet, and never longer than
 * retarget_redis_timeout after the read was sent.  The waiter leaves its
 * resume handler in ctx->resume, called once the read has ended: this
 * file does not know who waits.  When the hash names skus this worker
 * does not know yet (their product in the catalogue, their place in the
 * out-of-stock set), the read ends only once those are answered: one
 * more pipelined round, the first time a worker meets a sku, of the
 * HMGETs of ngx_http_retarget_catalog.c and the SMISMEMBER of
 * ngx_http_retarget_stock.c together.  The items then take the
 * catalogue's current values.
 */


#include "ngx_http_retarget_fetch.h"
#include "ngx_http_retarget_catalog.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_state.h"
#include "ngx_http_retarget_status.h"
#include "ngx_http_retarget_stock.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_wait.h"


static void ngx_http_retarget_fetch_reply(ngx_http_request_t *r, void *data,
    redisReply *reply);
static void ngx_http_retarget_fetch_ended(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static void ngx_http_retarget_fetch_second_done(ngx_http_request_t *r,
    void *data);


/* the second round of a page: its questions still unanswered */
typedef struct {
    ngx_http_retarget_ctx_t        *ctx;
    ngx_uint_t                      pending;
} ngx_http_retarget_fetch_second_t;
static void ngx_http_retarget_fetch_finish(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_int_t rc);


ngx_int_t
ngx_http_retarget_fetch_start(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_http_retarget_cmd_t         cmd;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    ngx_http_retarget_cmd_init(&cmd, "HGETALL");

    if (ngx_http_retarget_arg_key(r->pool, rmcf, &cmd,
                                  ngx_http_retarget_key_meta, &ctx->visitor)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->cart_count = -1;

    rc = ngx_http_retarget_wait(r, 1, &cmd, ngx_http_retarget_fetch_reply,
                                ngx_http_retarget_fetch_ended, ctx);

    if (rc == NGX_DECLINED) {
        /* the link is down: the page goes out without a reminder */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget fetch: not sent, the link is down");

        ctx->fetch = ngx_http_retarget_fetch_failed;
        ngx_http_retarget_status_cart_read(ctx->fetch, 0);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->fetch = ngx_http_retarget_fetch_pending;
    ctx->fetch_start = ngx_current_msec;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget fetch: sent \"HGETALL %*s\"",
                   cmd.len[1], cmd.argv[1]);

    return NGX_OK;
}


static void
ngx_http_retarget_fetch_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_ctx_t *ctx = data;

    size_t                      i, n, len;
    ngx_str_t                  *kv;
    redisReply                 *e;
    ngx_http_retarget_state_t  *st;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        /* an error reply is counted by the link; the page fails open */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget fetch: unusable reply, type %d",
                       reply->type);
        return;
    }

    /*
     * The module's writes keep the hash within NGX_HTTP_RETARGET_META_MAX
     * fields of bounded size, but anyone may write Redis: the first
     * READ_MAX fields are looked at, and a value is copied up to one
     * byte beyond VALUE_MAX (the parser then finds it too long).
     */

    n = ngx_min(reply->elements, 2 * NGX_HTTP_RETARGET_READ_MAX);

    if (n < reply->elements) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget fetch: %uz fields, the first %uz read",
                       reply->elements / 2, n / 2);
    }

    kv = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    st = ngx_palloc(r->pool, sizeof(ngx_http_retarget_state_t));
    if (kv == NULL || st == NULL) {
        return;
    }

    /* the reply is freed when this returns: what is kept is copied */

    for (i = 0; i < n; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            return;
        }

        len = e->len;

        if (i % 2 && len > NGX_HTTP_RETARGET_VALUE_MAX) {
            len = NGX_HTTP_RETARGET_VALUE_MAX + 1;
        }

        kv[i].len = len;
        kv[i].data = ngx_pnalloc(r->pool, len + 1);
        if (kv[i].data == NULL) {
            return;
        }

        ngx_memcpy(kv[i].data, e->str, len);
    }

    if (ngx_http_retarget_state_parse(r->pool, kv, n, st) != NGX_OK) {
        return;
    }

    ctx->state = st;
}


static void
ngx_http_retarget_fetch_ended(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_ctx_t *ctx = data;

    ngx_http_retarget_fetch_second_t  *sec;

    if (rc != NGX_OK || ctx->state == NULL) {
        ngx_http_retarget_fetch_finish(r, ctx, rc);
        return;
    }

    sec = ngx_palloc(r->pool, sizeof(ngx_http_retarget_fetch_second_t));
    if (sec == NULL) {
        ngx_http_retarget_fetch_finish(r, ctx, NGX_ERROR);
        return;
    }

    sec->ctx = ctx;
    sec->pending = 0;

    /* neither calls its handler before it returns */

    if (ngx_http_retarget_stock_check(r, ctx->state,
                                      ngx_http_retarget_fetch_second_done,
                                      sec)
        == NGX_OK)
    {
        sec->pending++;
    }

    if (ngx_http_retarget_catalog_ask(r, ctx->state,
                                        ngx_http_retarget_fetch_second_done,
                                        sec)
        == NGX_OK)
    {
        sec->pending++;
    }

    if (sec->pending) {
        /* ctx->fetch stays pending: the waiter waits for the skus too */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget fetch: answered, asking about its skus "
                       "(%ui questions)", sec->pending);
        return;
    }

    ngx_http_retarget_fetch_finish(r, ctx, rc);
}


static void
ngx_http_retarget_fetch_second_done(ngx_http_request_t *r, void *data)
{
    ngx_http_retarget_fetch_second_t *sec = data;

    if (--sec->pending) {
        return;
    }

    /* the state was read; skus without an answer count as in stock */
    ngx_http_retarget_fetch_finish(r, sec->ctx, NGX_OK);
}


static void
ngx_http_retarget_fetch_finish(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_int_t rc)
{
    ngx_http_retarget_resume_pt  resume;

    if (rc == NGX_AGAIN) {
        ctx->fetch = ngx_http_retarget_fetch_timeout;

    } else if (rc == NGX_OK && ctx->state != NULL) {
        ctx->fetch = ngx_http_retarget_fetch_done;

        if (ngx_http_retarget_catalog_merge(r->pool, ctx->state) != NGX_OK) {
            ctx->fetch = ngx_http_retarget_fetch_failed;
        }

    } else {
        ctx->fetch = ngx_http_retarget_fetch_failed;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget fetch: %s after %M ms, %s%s",
                   ctx->fetch == ngx_http_retarget_fetch_done ? "answered"
                   : ctx->fetch == ngx_http_retarget_fetch_timeout
                     ? "timed out" : "failed",
                   ngx_current_msec - ctx->fetch_start,
                   ctx->state ? "state read" : "no state",
                   ctx->resume ? ", resuming the waiter" : "");

    ngx_http_retarget_status_cart_read(ctx->fetch,
                                  ngx_current_msec - ctx->fetch_start);

    /* whoever waits for the read gave its handler */

    resume = ctx->resume;

    if (resume != NULL) {
        ctx->resume = NULL;
        resume(r, ctx);
    }
}
