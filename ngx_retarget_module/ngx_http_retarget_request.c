
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The request: the context of the main request, found again after an
 * internal redirect, and the small responses of the module's endpoints.
 */


#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_identity.h"


static void ngx_http_retarget_ctx_cleanup(void *data);
static ngx_int_t ngx_http_retarget_list_delete(ngx_http_request_t *r,
    ngx_list_part_t *prev, ngx_list_part_t *part, ngx_uint_t i);


static ngx_str_t  ngx_http_retarget_if_none_match =
    ngx_string("If-None-Match");
static ngx_str_t  ngx_http_retarget_if_modified_since =
    ngx_string("If-Modified-Since");


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


/*
 * A page the module may personalise must never be answered with 304,
 * whoever answers: nginx's own not_modified filter is turned off (it
 * would run before our header filter), and the upstream must not see the
 * validators either, or the shop answers 304 itself and the browser shows
 * the copy it kept, with the notice the visitor has dismissed since, or
 * without the reminder.  Proxy, FastCGI, uwsgi, SCGI and gRPC all build
 * their request from r->headers_in.headers, element by element, and none
 * of them skips an element with hash 0: the elements are taken out of the
 * list.
 *
 * Only If-None-Match and If-Modified-Since lead to a 304.  The others
 * stay, on purpose:
 *
 *   - If-Match and If-Unmodified-Since can only turn a GET into a 412,
 *     never into a stale page; they guard writes and ranged downloads,
 *     and whoever sends them wants that answer.
 *   - If-Range makes a Range conditional: without it the upstream would
 *     answer 206 with the bytes asked for even when the client's copy is
 *     another page; with it, a changed page comes whole with 200.
 *     Removing it alone would make ranges more likely, not less.
 *
 * Called for GET and HEAD only: a 304 answers nothing else, and on a
 * write If-None-Match ("*": create only) is a precondition of its own.
 */

ngx_int_t
ngx_http_retarget_unconditional(ngx_http_request_t *r)
{
    ngx_int_t  inm, ims;

    inm = ngx_http_retarget_header_in_remove(r,
                                             &ngx_http_retarget_if_none_match);
    if (inm == NGX_ERROR) {
        return NGX_ERROR;
    }

    ims = ngx_http_retarget_header_in_remove(r,
                                        &ngx_http_retarget_if_modified_since);
    if (ims == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* the not_modified filter and the upstream cache look at these */

    r->headers_in.if_none_match = NULL;
    r->headers_in.if_modified_since = NULL;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: a page that may be personalised: "
                   "If-None-Match (%i) and If-Modified-Since (%i) "
                   "removed, no 304 from nginx or the upstream", inm, ims);

    return NGX_OK;
}


/*
 * Removes every request header named "name" (case-insensitive) from
 * r->headers_in.headers and returns how many there were, or NGX_ERROR.
 * The caller clears the r->headers_in field that points at such a header,
 * if there is one.
 *
 * The other elements keep their addresses, because r->headers_in points
 * into the list (host, cookies, ...): nothing is moved, a part is split
 * around the removed element instead.
 */

ngx_int_t
ngx_http_retarget_header_in_remove(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_int_t         n;
    ngx_uint_t        i;
    ngx_list_part_t  *part, *prev;
    ngx_table_elt_t  *h;

    n = 0;
    i = 0;
    prev = NULL;
    part = &r->headers_in.headers.part;

    for ( ;; ) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            prev = part;
            part = part->next;
            i = 0;
            continue;
        }

        h = part->elts;

        if (h[i].key.len != name->len
            || ngx_strncasecmp(h[i].key.data, name->data, name->len) != 0)
        {
            i++;
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: request header removed: \"%V: %V\"",
                       &h[i].key, &h[i].value);

        n++;

        if (ngx_http_retarget_list_delete(r, prev, part, i) != NGX_OK) {
            return NGX_ERROR;
        }

        /* what followed the element is in part->next now, or nothing */

        if (part->nelts == 0 && prev != NULL) {
            part = prev;
        }

        i = part->nelts;
    }

    return n;
}


/*
 * Takes element i out of a part of r->headers_in.headers, keeping what
 * ngx_list_push() and every walk of the list rely on:
 *
 *   - a part other than the first is never empty (a walk moves to the
 *     next part and reads its first element without looking at nelts);
 *   - the last part has room for l->nalloc elements from its start
 *     (ngx_list_push() writes there until nelts reaches nalloc).
 *
 * The elements after i become a part of their own, in the same memory;
 * when that part is the last one, nalloc shrinks to the room left after
 * element i, so that pushes go on in the same array and then to a new
 * part.
 */

static ngx_int_t
ngx_http_retarget_list_delete(ngx_http_request_t *r, ngx_list_part_t *prev,
    ngx_list_part_t *part, ngx_uint_t i)
{
    ngx_list_t       *l;
    ngx_list_part_t  *rest;
    ngx_table_elt_t  *h;

    l = &r->headers_in.headers;
    h = part->elts;

    if (i + 1 < part->nelts) {
        rest = ngx_palloc(r->pool, sizeof(ngx_list_part_t));
        if (rest == NULL) {
            return NGX_ERROR;
        }

        rest->elts = &h[i + 1];
        rest->nelts = part->nelts - i - 1;
        rest->next = part->next;
        part->next = rest;

        if (l->last == part) {
            l->last = rest;
            l->nalloc -= i + 1;
        }
    }

    part->nelts = i;

    if (part->nelts != 0 || prev == NULL) {
        /* the first part may be empty: a walk moves on from it */
        return NGX_OK;
    }

    prev->next = part->next;

    if (l->last != part) {
        return NGX_OK;
    }

    /* the emptied part was the last one */

    if (prev->nelts != 0) {
        /* full as far as ngx_list_push() knows: the next push adds a part */
        l->last = prev;
        l->nalloc = prev->nelts;
        return NGX_OK;
    }

    /*
     * The list is empty now (prev is the empty first part): the first
     * part takes over the emptied part's memory, which has room for
     * nalloc elements.
     */

    prev->elts = part->elts;
    l->last = prev;

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
