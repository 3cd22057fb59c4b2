
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The request: the context of the main request, found again after an
 * internal redirect, and the small responses of the module's endpoints.
 */


#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_identity.h"


static void ngx_http_retarget_ctx_cleanup(void *data);


/* $retarget_decision, by ngx_http_retarget_decision_e */
ngx_str_t  ngx_http_retarget_decisions[NGX_HTTP_RETARGET_DECISIONS] = {
    ngx_string(""),
    ngx_string("notice"),
    ngx_string("optout"),
    ngx_string("not_html"),
    ngx_string("not_ok"),
    ngx_string("encoded"),
    ngx_string("nothing"),
    ngx_string("bypass"),
    ngx_string("shown"),
    ngx_string("no_cart"),
    ngx_string("too_soon"),
    ngx_string("too_late"),
    ngx_string("capped"),
    ngx_string("holdout"),
    ngx_string("dismissed"),
    ngx_string("purchased"),
    ngx_string("redis_down"),
    ngx_string("timeout")
};


/*
 * The context of the main request.  An internal redirect (try_files,
 * index, error_page) zeroes r->ctx, but the request pool and its cleanups
 * survive, so the context is found again through its pool cleanup: the
 * visitor is identified once and a new visitor gets one id, not two.
 */

ngx_http_retarget_ctx_t *
ngx_http_retarget_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_retarget_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_retarget_module);

    if (ctx != NULL || !r->internal) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_retarget_ctx_cleanup) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget: context found again after a redirect");

            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_retarget_module);
            return ctx;
        }
    }

    return NULL;
}


ngx_http_retarget_ctx_t *
ngx_http_retarget_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_retarget_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_retarget_ctx_cleanup;
    cln->data = ctx;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: context created %p", ctx);

    ngx_http_set_ctx(r, ctx, ngx_http_retarget_module);

    return ctx;
}


static void
ngx_http_retarget_ctx_cleanup(void *data)
{
    /*
     * Nothing to release yet: the cleanup entry exists so that
     * ngx_http_retarget_get_ctx() can find the context again.
     */
}


/*
 * Identifies the visitor of the main request once, lazily: from the
 * phase handler, a variable, or the header filter, whichever comes first.
 * Returns NULL when the module is off or bypassed for this request.
 */

ngx_http_retarget_ctx_t *
ngx_http_retarget_request(ngx_http_request_t *r)
{
    ngx_http_retarget_ctx_t       *ctx;
    ngx_http_retarget_loc_conf_t  *rlcf;

    r = r->main;

    ctx = ngx_http_retarget_get_ctx(r);

    if (ctx != NULL) {
        return ctx->bypass ? NULL : ctx;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (!rlcf->enable) {
        return NULL;
    }

    ctx = ngx_http_retarget_create_ctx(r);
    if (ctx == NULL) {
        return NULL;
    }

    if (rlcf->bypass != NULL
        && ngx_http_test_predicates(r, rlcf->bypass) == NGX_DECLINED)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: bypassed");

        ctx->bypass = 1;
        ctx->decision = ngx_http_retarget_decision_bypass;
        return NULL;
    }

    if (ngx_http_retarget_identify(r, rlcf, ctx) != NGX_OK) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: visitor not identified, bypassed");

        ctx->bypass = 1;
        return NULL;
    }

    return ctx;
}


/*
 * The module's own endpoints (control, status) are not pages of the
 * shop: no visitor id is issued there and nothing is injected.
 */

ngx_int_t
ngx_http_retarget_bypass(ngx_http_request_t *r)
{
    ngx_http_retarget_ctx_t  *ctx;

    ctx = ngx_http_retarget_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_retarget_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->bypass = 1;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: an endpoint of the module, not a page");

    return NGX_OK;
}


/* "Cache-Control: no-store": the answers of the module's endpoints */

ngx_int_t
ngx_http_retarget_no_store(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return NGX_OK;
}


/*
 * Sends a whole small response of the module's endpoints: never cached,
 * the body copied into the request pool unless it is static.
 */

ngx_int_t
ngx_http_retarget_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len, ngx_uint_t copy)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_retarget_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;

    /* a HEAD answer may be shorter than GET's (no Redis read for it) */
    r->headers_out.content_length_n = -1;

    if (r->method != NGX_HTTP_HEAD) {
        r->headers_out.content_length_n = len;
    }
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: answering %ui \"%V\", %uz bytes",
                   status, type, len);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (copy) {
        b = ngx_create_temp_buf(r->pool, len);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->last = ngx_cpymem(b->pos, body, len);

    } else {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->pos = body;
        b->last = body + len;
        b->memory = 1;
    }

    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
