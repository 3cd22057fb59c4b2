
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The header and body filters: Set-Cookie for every response of an
 * identified visitor, and the snippet injected into HTML responses right
 * before the first "</body>" that is page markup (case-insensitive, found
 * across buffer boundaries, never inside a script, style, textarea,
 * title or comment: ngx_http_retarget_html.c), or at the end when there
 * is none.
 *
 * The body is streamed.  Buffers without a match pass through as they
 * are; the buffer with the match is split into two pieces that point
 * into its memory, with the snippet between them.  The only bytes held
 * back are the up to six bytes of a "</body" prefix at the end of a
 * buffer, and those are copied, so the producer's buffer is released.
 *
 * When the page reaches its injection point before Redis has answered
 * the page's read, what comes after that point is kept aside (the
 * "stash", still in the producer's buffers) until the answer or
 * retarget_redis_timeout, whichever comes first; everything before it
 * has been sent on already.
 */


#include "ngx_http_retarget_filter.h"
#include "ngx_http_retarget_body.h"
#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_identity.h"
#include "ngx_http_retarget_notice.h"
#include "ngx_http_retarget_page.h"
#include "ngx_http_retarget_request.h"


static ngx_int_t ngx_http_retarget_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);

static ngx_int_t ngx_http_retarget_wants_injection(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);
static ngx_int_t ngx_http_retarget_prepare(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);
static ngx_int_t ngx_http_retarget_cache_private(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_cookies_out(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);
static ngx_uint_t ngx_http_retarget_shared_cacheable(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_decide(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);
static ngx_int_t ngx_http_retarget_snippet(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll);
static void ngx_http_retarget_filter_resume(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);

static ngx_int_t ngx_http_retarget_scan(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_buf_t *b, ngx_chain_t ***ll);
static ngx_int_t ngx_http_retarget_inject(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll, ngx_buf_t *b,
    u_char *start, u_char *at);
static ngx_int_t ngx_http_retarget_append(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll, ngx_buf_t *b,
    u_char *start, u_char *last);
static ngx_buf_t *ngx_http_retarget_new_buf(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll);
static ngx_int_t ngx_http_retarget_emit(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll, u_char *pos,
    u_char *last);
static ngx_int_t ngx_http_retarget_emit_rest(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll, ngx_buf_t *b,
    u_char *pos, u_char *last);
static ngx_int_t ngx_http_retarget_emit_flags(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll, ngx_buf_t *b);
static ngx_int_t ngx_http_retarget_emit_held(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll);
static ngx_int_t ngx_http_retarget_emit_buf(ngx_http_request_t *r,
    ngx_buf_t *b, ngx_chain_t ***ll);
static ngx_int_t ngx_http_retarget_hold(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, u_char *pos, u_char *last);
static void ngx_http_retarget_release(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);
static void ngx_http_retarget_cork(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);
static void ngx_http_retarget_uncork(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_retarget_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_retarget_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_retarget_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_header_filter(ngx_http_request_t *r)
{
    ngx_http_retarget_ctx_t       *ctx;
    ngx_http_retarget_loc_conf_t  *rlcf;

    ngx_http_retarget_capture_start(r);
    ngx_http_retarget_page_start(r);

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_retarget_request(r);

    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    switch (ngx_http_retarget_wants_injection(r, rlcf, ctx)) {

    case NGX_ERROR:
        return NGX_ERROR;

    case 0:
        break;

    default:
        if (ngx_http_retarget_prepare(r, rlcf, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* after prepare(): an injected page is "Cache-Control: private" */

    if (ngx_http_retarget_cookies_out(r, rlcf, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/*
 * The visitor cookie of a new id (or one to sign again), and a consent
 * cookie to sign again, unless a shared cache may store the response: it
 * would hand the one id to everybody it serves the response to.  Such a
 * visitor gets the cookie on the next response that no shared cache
 * keeps (every injected page is one).
 */

static ngx_int_t
ngx_http_retarget_cookies_out(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx)
{
    ngx_str_t  value;

    if (!(ctx->set_cookie && !ctx->cookie_sent) && !ctx->consent_resign) {
        return NGX_OK;
    }

    if (ngx_http_retarget_shared_cacheable(r)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: no Set-Cookie on a response a shared "
                       "cache may store (status %ui)",
                       r->headers_out.status);
        return NGX_OK;
    }

    if (ctx->set_cookie && !ctx->cookie_sent) {
        ctx->cookie_sent = 1;

        if (ngx_http_retarget_issue_cookie(r, rlcf, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx->consent_resign) {
        ctx->consent_resign = 0;

        if (ngx_http_retarget_consent_resigned(r, rlcf, &value) == NGX_OK
            && ngx_http_retarget_set_cookie(r, rlcf->cookie,
                                            &rlcf->cookie->consent_name,
                                            &value, rlcf->cookie->max_age)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Whether a shared cache may store the response: anything but a 2xx
 * (redirects and errors are cached by status), or, unless it says
 * "private" or "no-store", a "Cache-Control" with "public", "s-maxage"
 * or a positive "max-age", or an "Expires" ("expires 30d" on assets).
 */

static ngx_uint_t
ngx_http_retarget_shared_cacheable(ngx_http_request_t *r)
{
    u_char            *p, *last, *start;
    size_t             len;
    ngx_uint_t         i, shared;
    ngx_table_elt_t  **cc;

    if (r->headers_out.status < NGX_HTTP_OK
        || r->headers_out.status >= NGX_HTTP_SPECIAL_RESPONSE)
    {
        return 1;
    }

    shared = (r->headers_out.expires != NULL
              && r->headers_out.expires->hash != 0);

    cc = r->headers_out.cache_control.elts;

    for (i = 0; i < r->headers_out.cache_control.nelts; i++) {

        if (cc[i]->hash == 0) {
            continue;
        }

        p = cc[i]->value.data;
        last = p + cc[i]->value.len;

        while (p < last) {

            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < last && *p != ',' && *p != ' ' && *p != '\t') {
                p++;
            }

            len = p - start;

            if ((len == 7 && ngx_strncasecmp(start, (u_char *) "private", 7)
                             == 0)
                || (len == 8 && ngx_strncasecmp(start, (u_char *) "no-store",
                                                8) == 0))
            {
                return 0;
            }

            if ((len == 6 && ngx_strncasecmp(start, (u_char *) "public", 6)
                             == 0)
                || (len > 8 && ngx_strncasecmp(start, (u_char *) "s-maxage",
                                               8) == 0))
            {
                shared = 1;
            }

            if (len > 8 && ngx_strncasecmp(start, (u_char *) "max-age=", 8)
                           == 0
                && ngx_atoi(start + 8, len - 8) != 0)
            {
                /* a number, or anything else: not "max-age=0" */
                shared = 1;
            }
        }
    }

    return shared;
}


/* sets ctx->decision, and tells whether the body gets a snippet */

static ngx_int_t
ngx_http_retarget_wants_injection(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx)
{
    if (!rlcf->enable || ctx->inject) {
        return 0;
    }

    if (!ctx->show_notice && ctx->fetch == ngx_http_retarget_fetch_none
        && !ctx->may_remind)
    {
        ctx->decision = ngx_http_retarget_consent_tracks(ctx->consent)
                        ? ngx_http_retarget_decision_empty
                        : ngx_http_retarget_decision_optout;
        return 0;
    }

    if (r->headers_out.status != NGX_HTTP_OK) {
        ctx->decision = ngx_http_retarget_decision_not_ok;
        return 0;
    }

    /*
     * A Range request to a page assembled by the slice module: slice has
     * already chosen its first slice from the client's Range (the one
     * holding the first asked byte, not the page's start), turned the 206
     * into a 200 with subrequest_ranges set, and its later subrequests
     * each apply the Range.  Injecting would turn off ranges on the main
     * request only, and send a 200 of pieces that is not the page.  The
     * page as a whole cannot be had without fetching the slices again,
     * so such a response is left alone and nginx's 206 of the asked bytes
     * stands; it goes out as a 206, hence "not_ok".
     */

    if (r->subrequest_ranges && r->headers_in.range != NULL) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: ranged slice response left untouched");

        ctx->decision = ngx_http_retarget_decision_not_ok;
        return 0;
    }

    if (ngx_http_test_content_type(r, &rlcf->types) == NULL) {
        ctx->decision = ngx_http_retarget_decision_not_html;
        return 0;
    }

    if (r->headers_out.content_encoding != NULL
        && r->headers_out.content_encoding->value.len)
    {
        /* compressed by the upstream and not decoded by gunzip */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: \"%V\" encoded response left untouched",
                       &r->headers_out.content_encoding->value);

        ctx->decision = ngx_http_retarget_decision_encoded;
        return 0;
    }

    if (r->headers_out.content_length_n == 0) {
        ctx->decision = ngx_http_retarget_decision_empty;
        return 0;
    }

    if (ctx->show_notice) {
        ctx->decision = ngx_http_retarget_decision_notice;
        ctx->notice_shown = 1;

        if (ngx_http_retarget_notice_render(r, rlcf, ctx, &ctx->snippet)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ctx->fetch == ngx_http_retarget_fetch_pending || ctx->may_remind) {
        /* the page may get a reminder: decided at the injection point */
        return 1;
    }

    /* Redis answered before the upstream: the page is decided now */

    if (ngx_http_retarget_decide(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ctx->snippet.len != 0;
}


static ngx_int_t
ngx_http_retarget_prepare(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx)
{
    /* the body changes length, and differs per visitor state */

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_weak_etag(r);

    if (ngx_http_retarget_cache_private(r) != NGX_OK) {
        return NGX_ERROR;
    }

    if (r->header_only) {
        /* HEAD: the headers a GET would get, and no body to change */
        return NGX_OK;
    }

    ctx->inject = 1;
    r->filter_need_in_memory = 1;

    return NGX_OK;
}


/*
 * The page now depends on the visitor's cookies, so no shared cache may
 * keep it: "Cache-Control: private" replaces "public" and s-maxage, and
 * keeps what restricts caching further (no-store, no-cache, max-age).
 */

static ngx_int_t
ngx_http_retarget_cache_private(ngx_http_request_t *r)
{
    u_char           *p, *last, *start, *out;
    size_t            len;
    ngx_uint_t        i;
    ngx_table_elt_t  *h, **cc;

    cc = r->headers_out.cache_control.elts;
    len = sizeof("private") - 1;

    for (i = 0; i < r->headers_out.cache_control.nelts; i++) {
        if (cc[i]->hash != 0) {
            len += 2 + cc[i]->value.len;
        }
    }

    out = ngx_pnalloc(r->pool, len);
    if (out == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out, "private", sizeof("private") - 1);

    for (i = 0; i < r->headers_out.cache_control.nelts; i++) {

        if (cc[i]->hash == 0) {
            continue;
        }

        cc[i]->hash = 0;

        start = cc[i]->value.data;
        last = start + cc[i]->value.len;

        while (start < last) {

            while (start < last && (*start == ' ' || *start == ',')) {
                start++;
            }

            for (len = 0; start + len < last && start[len] != ','; len++) {
                /* void */
            }

            if (len == 0) {
                break;
            }

            if (!(len == 6 && ngx_strncasecmp(start, (u_char *) "public", 6)
                              == 0)
                && !(len == 7 && ngx_strncasecmp(start, (u_char *) "private",
                                                 7) == 0)
                && !(len > 8 && ngx_strncasecmp(start, (u_char *) "s-maxage",
                                                8) == 0))
            {
                *p++ = ',';
                *p++ = ' ';
                p = ngx_cpymem(p, start, len);
            }

            start += len;
        }
    }

    if (r->headers_out.cache_control.elts == NULL) {
        if (ngx_array_init(&r->headers_out.cache_control, r->pool, 1,
                           sizeof(ngx_table_elt_t *))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    r->headers_out.cache_control.nelts = 0;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    cc = ngx_array_push(&r->headers_out.cache_control);
    if (cc == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    h->value.data = out;
    h->value.len = p - out;

    *cc = h;

    return NGX_OK;
}


/* the reminder, once the page's read has ended: after the notice */

static ngx_int_t
ngx_http_retarget_decide(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx)
{
    u_char     *p;
    ngx_str_t   banner;

    if (ngx_http_retarget_campaign_decide(r, ctx, &banner) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget filter: decision \"%V\", banner %uz bytes, "
                   "notice %uz bytes",
                   &ngx_http_retarget_decisions[ctx->decision], banner.len,
                   ctx->snippet.len);

    if (banner.len == 0) {
        return NGX_OK;
    }

    if (ctx->snippet.len == 0) {
        ctx->snippet = banner;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, ctx->snippet.len + banner.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, ctx->snippet.data, ctx->snippet.len);
    ngx_memcpy(p + ctx->snippet.len, banner.data, banner.len);

    ctx->snippet.data = p;
    ctx->snippet.len += banner.len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t                 rc;
    ngx_chain_t              *cl, *out, **ll;
    ngx_http_retarget_ctx_t  *ctx;

    ngx_http_retarget_capture_body(r, in);
    ngx_http_retarget_page_body(r, in);

    if (in == NULL || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_retarget_module);

    if (ctx == NULL || !ctx->inject) {
        return ngx_http_next_body_filter(r, in);
    }

    out = NULL;
    ll = ctx->waiting ? ctx->stash_last : &out;

    for (cl = in; cl; cl = cl->next) {

        if (ctx->injected) {
            if (ngx_http_retarget_emit_buf(r, cl->buf, &ll) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_http_retarget_scan(r, ctx, cl->buf, &ll) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx->waiting) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget filter: page stashed while waiting");

        ctx->stash_last = ll;
        ngx_http_retarget_cork(r, ctx);
    }

    if (out == NULL && ctx->busy == NULL) {
        /* everything went into the held bytes, or waits for Redis */
        return NGX_OK;
    }

    rc = ngx_http_next_body_filter(r, out);

    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_retarget_module);

    ngx_http_retarget_release(r, ctx);

    return rc;
}


/*
 * Scans one buffer for the injection point, continuing what the previous
 * buffers began, and appends to *ll what can be sent now.
 */

static ngx_int_t
ngx_http_retarget_scan(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_buf_t *b, ngx_chain_t ***ll)
{
    size_t      n, tail;
    u_char     *start, *last, *at;
    ngx_int_t   rc;

    start = b->pos;
    last = ngx_buf_in_memory(b) ? b->last : b->pos;
    n = last - start;

    rc = ngx_http_retarget_html_scan(&ctx->html, start, last, &at);

    if (rc == NGX_OK) {
        if (at == NULL) {
            /* the tag began in an earlier buffer: the held bytes */
            return ngx_http_retarget_inject(r, ctx, ll, b, start, start);
        }

        if (ctx->held_len
            && ngx_http_retarget_emit_held(r, ctx, ll) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_retarget_inject(r, ctx, ll, b, start, at);
    }

    tail = ctx->html.tail;

    if (ctx->held_len && tail == ctx->held_len + n) {
        /* the whole buffer (maybe an empty one) extends the held bytes */
        if (ngx_http_retarget_hold(r, ctx, start, last) != NGX_OK) {
            return NGX_ERROR;
        }

        b->pos = last;

        if (b->last_buf) {
            return ngx_http_retarget_append(r, ctx, ll, b, last, last);
        }

        return ngx_http_retarget_emit_flags(r, ctx, ll, b);
    }

    if (ctx->held_len) {
        /* no tag after all: the held bytes are page content */
        if (ngx_http_retarget_emit_held(r, ctx, ll) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (tail) {
        /* a prefix of the tag ends the buffer: keep it aside */
        if (ngx_http_retarget_hold(r, ctx, last - tail, last) != NGX_OK) {
            return NGX_ERROR;
        }

        last -= tail;
    }

    if (b->last_buf) {
        return ngx_http_retarget_append(r, ctx, ll, b, start, last);
    }

    if (tail == 0) {
        return ngx_http_retarget_emit_buf(r, b, ll);
    }

    if (start == last) {
        /* all of it was copied aside */
        b->pos = b->last;
        return ngx_http_retarget_emit_flags(r, ctx, ll, b);
    }

    /* the part before the held bytes, tied to b until it is sent */
    return ngx_http_retarget_emit_rest(r, ctx, ll, b, start, last);
}


/*
 * The tag is at "at" in b, or began in earlier buffers (then at == start
 * and the held bytes are its beginning): [start, at), the snippet, the
 * held bytes, [at, end of b).
 */

static ngx_int_t
ngx_http_retarget_inject(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_chain_t ***ll, ngx_buf_t *b, u_char *start, u_char *at)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget filter: \"</body\" end tag found%s",
                   (at == start && ctx->held_len) ? " across buffers" : "");

    ctx->injected = 1;

    if (ngx_http_retarget_emit(r, ctx, ll, start, at) != NGX_OK
        || ngx_http_retarget_snippet(r, ctx, ll) != NGX_OK
        || ngx_http_retarget_emit_held(r, ctx, ll) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_emit_rest(r, ctx, ll, b, at, b->last);
}


/*
 * The page ended without "</body>": [start, last) of the final buffer,
 * the held bytes, which turned out to be page content, then the snippet.
 */

static ngx_int_t
ngx_http_retarget_append(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_chain_t ***ll, ngx_buf_t *b, u_char *start, u_char *last)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget filter: no \"</body>\", injecting at the end");

    ctx->injected = 1;

    if (ngx_http_retarget_emit(r, ctx, ll, start, last) != NGX_OK
        || ngx_http_retarget_emit_held(r, ctx, ll) != NGX_OK
        || ngx_http_retarget_snippet(r, ctx, ll) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_emit_rest(r, ctx, ll, b, last, last);
}


/*
 * At the injection point: the snippet, or, while the page's read is
 * still out, the start of the stash, where the rest of the page waits.
 */

static ngx_int_t
ngx_http_retarget_snippet(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_chain_t ***ll)
{
    if (ctx->fetch == ngx_http_retarget_fetch_pending) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget filter: waiting at the injection point, "
                       "read out for %M ms",
                       ngx_current_msec - ctx->fetch_start);

        ctx->waiting = 1;
        ctx->resume = ngx_http_retarget_filter_resume;
        r->buffered |= NGX_HTTP_RETARGET_BUFFERED;

        ctx->stash = NULL;
        *ll = &ctx->stash;

        return NGX_OK;
    }

    if (ngx_http_retarget_decide(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_retarget_emit(r, ctx, ll, ctx->snippet.data,
                                  ctx->snippet.data + ctx->snippet.len);
}


/*
 * The page's read has ended while the page waited at the injection
 * point: the snippet and the stash go out now, and the request's write
 * handler is run again, so that whoever produces the page (static file,
 * upstream) carries on and finishes the request.
 */

static void
ngx_http_retarget_filter_resume(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx)
{
    ngx_int_t          rc;
    ngx_chain_t       *out, **ll;
    ngx_connection_t  *c;

    c = r->connection;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "retarget filter: resuming the page%s",
                   ctx->stash ? ", with its stash" : "");

    ctx->waiting = 0;
    r->buffered &= ~NGX_HTTP_RETARGET_BUFFERED;

    out = NULL;
    ll = &out;

    if (ngx_http_retarget_decide(r, ctx) != NGX_OK
        || ngx_http_retarget_emit(r, ctx, &ll, ctx->snippet.data,
                                  ctx->snippet.data + ctx->snippet.len)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    *ll = ctx->stash;
    ctx->stash = NULL;

    rc = ngx_http_next_body_filter(r, out);

    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_retarget_module);

    ngx_http_retarget_release(r, ctx);
    ngx_http_retarget_uncork(r, ctx);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "retarget filter: resumed, rc:%i, the producer runs again",
                   rc);

    ngx_post_event(c->write, &ngx_posted_events);
}


/*
 * While the page waits for Redis, the part before the injection point is
 * sent, but with TCP_CORK set: the kernel sends every full segment at
 * once and keeps only a last partial one, which then leaves together
 * with the snippet and the rest of the page.  One packet (and, on
 * loopback, one wake-up of the client) fewer per page, and never more
 * than a segment held, only while waiting.  Nothing is done on a socket
 * nginx corked itself, nor for HTTP/2, where streams share the socket.
 */

static void
ngx_http_retarget_cork(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (ctx->corked || c->tcp_nopush == NGX_TCP_NOPUSH_SET
#if (NGX_HTTP_V2)
        || r->stream != NULL
#endif
       )
    {
        return;
    }

    if (ngx_tcp_nopush(c->fd) == -1) {
        /* not a TCP socket (unix), or not supported: nothing held then */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, ngx_socket_errno,
                       "retarget: " ngx_tcp_nopush_n " failed");
        return;
    }

    ctx->corked = 1;
}


static void
ngx_http_retarget_uncork(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx)
{
    if (!ctx->corked) {
        return;
    }

    ctx->corked = 0;

    if (ngx_tcp_push(r->connection->fd) == -1) {
        ngx_connection_error(r->connection, ngx_socket_errno,
                             ngx_tcp_push_n " failed");
    }
}


static ngx_buf_t *
ngx_http_retarget_new_buf(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_chain_t ***ll)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        return NULL;
    }

    b = cl->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));

    b->tag = (ngx_buf_tag_t) &ngx_http_retarget_module;

    **ll = cl;
    *ll = &cl->next;

    return b;
}


/* sends the memory [pos, last), which outlives the buffer, if any */

static ngx_int_t
ngx_http_retarget_emit(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_chain_t ***ll, u_char *pos, u_char *last)
{
    ngx_buf_t  *b;

    if (pos == last) {
        return NGX_OK;
    }

    b = ngx_http_retarget_new_buf(r, ctx, ll);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->memory = 1;
    b->pos = pos;
    b->last = last;

    return NGX_OK;
}


/*
 * Sends [pos, last) of the producer's buffer b with b's flags.  The
 * buffer is marked sent, so its memory can be reused, only once this
 * piece (the last one taken from it) has been sent: see
 * ngx_http_retarget_release().
 */

static ngx_int_t
ngx_http_retarget_emit_rest(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll, ngx_buf_t *b,
    u_char *pos, u_char *last)
{
    ngx_buf_t  *rest;

    rest = ngx_http_retarget_new_buf(r, ctx, ll);
    if (rest == NULL) {
        return NGX_ERROR;
    }

    if (pos != last) {
        rest->memory = 1;
        rest->pos = pos;
        rest->last = last;
    }

    rest->shadow = b;
    rest->flush = b->flush || b->recycled;
    rest->sync = b->sync;
    rest->last_buf = b->last_buf;
    rest->last_in_chain = b->last_in_chain;

    if (pos == last && !rest->flush && !rest->last_buf
        && !rest->last_in_chain)
    {
        /* an empty buffer that says nothing would upset the writer */
        rest->sync = 1;
    }

    return NGX_OK;
}


/* b was consumed whole: passes on the flush or sync it asked for */

static ngx_int_t
ngx_http_retarget_emit_flags(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll, ngx_buf_t *b)
{
    ngx_buf_t  *special;

    if (!b->flush && !b->sync) {
        return NGX_OK;
    }

    special = ngx_http_retarget_new_buf(r, ctx, ll);
    if (special == NULL) {
        return NGX_ERROR;
    }

    special->flush = b->flush;
    special->sync = b->sync;

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_emit_held(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_chain_t ***ll)
{
    ngx_int_t  rc;

    rc = ngx_http_retarget_emit(r, ctx, ll, ctx->held,
                                ctx->held + ctx->held_len);

    ctx->held = NULL;
    ctx->held_len = 0;

    if (!ctx->waiting) {
        r->buffered &= ~NGX_HTTP_RETARGET_BUFFERED;
    }

    return rc;
}


/* passes a buffer on as it is, in a chain link of ours */

static ngx_int_t
ngx_http_retarget_emit_buf(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_chain_t ***ll)
{
    ngx_chain_t  *cl;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


/*
 * Appends [pos, last) to the held bytes.  They are copied into the
 * request pool: the producer may reuse its buffer as soon as it is
 * marked sent.  At most NGX_HTTP_RETARGET_HTML_MAX_TAIL (six) bytes, and
 * only when a buffer ends inside what may be the "</body" end tag.
 */

static ngx_int_t
ngx_http_retarget_hold(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    u_char *pos, u_char *last)
{
    u_char  *held;
    size_t   n;

    n = last - pos;

    if (n == 0) {
        return NGX_OK;
    }

    held = ngx_pnalloc(r->pool, ctx->held_len + n);
    if (held == NULL) {
        return NGX_ERROR;
    }

    if (ctx->held_len) {
        ngx_memcpy(held, ctx->held, ctx->held_len);
    }

    ngx_memcpy(held + ctx->held_len, pos, n);

    ctx->held = held;
    ctx->held_len += n;
    r->buffered |= NGX_HTTP_RETARGET_BUFFERED;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget filter: holding %uz bytes of a possible tag",
                   ctx->held_len);

    return NGX_OK;
}


/*
 * Marks the producer's buffers sent once every buffer of ours that
 * points into them has been sent: only then may upstream or the copy
 * filter reuse their memory.
 */

static void
ngx_http_retarget_release(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx)
{
    ngx_chain_t  *cl;

    for (cl = ctx->free; cl; cl = cl->next) {
        if (cl->buf->shadow != NULL) {
            cl->buf->shadow->pos = cl->buf->shadow->last;
            cl->buf->shadow = NULL;
        }
    }
}
