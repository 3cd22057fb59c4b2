
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The bodies of retarget_extract.
 *
 * The request body is read by the module itself, in the precontent phase
 * of locations with events when some "request" extract is configured:
 * ngx_http_read_client_request_body(), the request suspended (NGX_DONE)
 * while the body arrives and resumed by running the phases again, as the
 * mirror module does.  nginx keeps the body for whoever comes next, so
 * proxy_pass and the other upstreams send the same body; the module
 * only reads it, into one piece of at most retarget_extract_max_size,
 * right when it is complete (a body spilled to a temporary file is read
 * back then, before the upstream module closes that file).
 *
 * The response body is copied as it passes through the body filter,
 * up to the same size, never held or changed: the header filter decides
 * whether to copy (a JSON or form body, not compressed, in a location with
 * events) and asks for the body in memory.
 */


#include "ngx_http_retarget_body.h"
#include "ngx_http_retarget_request.h"


/* ngx_http_retarget_bodies_t.reading */
#define NGX_HTTP_RETARGET_READ_NONE     0
#define NGX_HTTP_RETARGET_READ_CALL     1   /* inside the read call */
#define NGX_HTTP_RETARGET_READ_WAIT     2   /* the request is suspended */
#define NGX_HTTP_RETARGET_READ_DONE     3

/* the first piece of a response copy of unknown length */
#define NGX_HTTP_RETARGET_CAPTURE_FIRST 4096


static void ngx_http_retarget_bodies_cleanup(void *data);
static ngx_int_t ngx_http_retarget_body_wanted(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, size_t max);
static void ngx_http_retarget_body_done(ngx_http_request_t *r);
static void ngx_http_retarget_body_collect(ngx_http_request_t *r,
    ngx_http_retarget_bodies_t *st);
static ngx_int_t ngx_http_retarget_capture_append(ngx_http_request_t *r,
    ngx_http_retarget_bodies_t *st, u_char *p, size_t len);


ngx_http_retarget_bodies_t *
ngx_http_retarget_bodies(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_retarget_bodies_t  *st;

    r = r->main;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_retarget_bodies_cleanup) {
            return cln->data;
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_retarget_bodies_t));
    if (cln == NULL) {
        return NULL;
    }

    st = cln->data;
    ngx_memzero(st, sizeof(ngx_http_retarget_bodies_t));

    cln->handler = ngx_http_retarget_bodies_cleanup;

    return st;
}


static void
ngx_http_retarget_bodies_cleanup(void *data)
{
    ngx_http_retarget_bodies_t  *st = data;

    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_RETARGET_SRC_COUNT; i++) {
        if (st->doc[i] != NULL) {
            json_decref(st->doc[i]);
            st->doc[i] = NULL;
        }
    }
}


/*
 * application/json and any "+json" type (GraphQL over HTTP answers
 * application/graphql-response+json), the two form encodings; the
 * parameters after ";" do not matter here.
 */

ngx_http_retarget_body_kind_e
ngx_http_retarget_body_kind(ngx_str_t *type)
{
    u_char  *p, *last, *slash;
    size_t   len;

    if (type == NULL || type->len == 0) {
        return ngx_http_retarget_body_other;
    }

    p = type->data;
    last = ngx_strlchr(p, p + type->len, ';');

    if (last == NULL) {
        last = p + type->len;
    }

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    len = last - p;

    if (len == sizeof("application/json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/json", len) == 0)
    {
        return ngx_http_retarget_body_json;
    }

    slash = ngx_strlchr(p, last, '/');

    if (slash != NULL && slash > p
        && (size_t) (last - slash) > sizeof("+json") - 1
        && ngx_strncasecmp(last - 5, (u_char *) "+json", 5) == 0)
    {
        return ngx_http_retarget_body_json;
    }

    if (len == sizeof("application/x-www-form-urlencoded") - 1
        && ngx_strncasecmp(p, (u_char *) "application/x-www-form-urlencoded",
                           len) == 0)
    {
        return ngx_http_retarget_body_urlencoded;
    }

    if (len == sizeof("multipart/form-data") - 1
        && ngx_strncasecmp(p, (u_char *) "multipart/form-data", len) == 0)
    {
        return ngx_http_retarget_body_multipart;
    }

    return ngx_http_retarget_body_other;
}


ngx_int_t
ngx_http_retarget_body_read(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_http_retarget_bodies_t    *st;
    ngx_http_retarget_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (!ngx_http_retarget_body_wanted(r, ctx, rlcf->extract_max_size)) {
        return NGX_DECLINED;
    }

    st = ngx_http_retarget_bodies(r, 1);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->max = rlcf->extract_max_size;
    st->reading = NGX_HTTP_RETARGET_READ_CALL;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget extract: reading the request body, "
                   "length %O", r->headers_in.content_length_n);

    rc = ngx_http_read_client_request_body(r, ngx_http_retarget_body_done);

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        st->reading = NGX_HTTP_RETARGET_READ_DONE;
        return rc;
    }

    /* the read took a reference of the request: given back either way */

    if (st->reading == NGX_HTTP_RETARGET_READ_DONE) {
        /* it was all there already: the phase goes on */
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DECLINED;
    }

    st->reading = NGX_HTTP_RETARGET_READ_WAIT;

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


/*
 * Whether the module reads this request's body: a main request whose body
 * nobody has read yet, with a body of a kind extracts read and not known
 * to be too large, in a location whose events may use it.
 */

static ngx_int_t
ngx_http_retarget_body_wanted(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, size_t max)
{
    ngx_str_t                       type;
    ngx_http_retarget_loc_conf_t   *rlcf;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (!(rmcf->extract_sources
          & NGX_HTTP_RETARGET_SRC_BIT(NGX_HTTP_RETARGET_SRC_REQUEST))
        || rlcf->events == NULL || r != r->main)
    {
        return 0;
    }

    if (r->request_body != NULL || r->discard_body) {
        /* read (by us: the phases run again after the read), or dropped */
        return 0;
    }

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: no request body");
        return 0;
    }

    if (!ctx->tracked) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: request body not read, "
                       "visitor not tracked");
        return 0;
    }

    if (r->headers_in.content_type == NULL) {
        ngx_str_null(&type);

    } else {
        type = r->headers_in.content_type->value;
    }

    if (ngx_http_retarget_body_kind(&type) == ngx_http_retarget_body_other) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: request body not read, "
                       "type \"%V\"", &type);
        return 0;
    }

    if (r->headers_in.content_length_n > (off_t) max) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: request body not read, "
                       "%O bytes, more than %uz",
                       r->headers_in.content_length_n, max);
        return 0;
    }

    return 1;
}


static void
ngx_http_retarget_body_done(ngx_http_request_t *r)
{
    ngx_uint_t                   wait;
    ngx_http_retarget_bodies_t  *st;

    st = ngx_http_retarget_bodies(r, 0);

    if (st == NULL) {
        /* cannot be: created before the read */
        return;
    }

    wait = (st->reading == NGX_HTTP_RETARGET_READ_WAIT);
    st->reading = NGX_HTTP_RETARGET_READ_DONE;

    /* now: a temporary file may be closed once the upstream answers */
    ngx_http_retarget_body_collect(r, st);

    if (!wait) {
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget extract: request body read, phases resume");

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * The body as one piece in st->request: the one memory buffer it is in,
 * or a copy of its buffers and of its file.  Empty when it is larger than
 * st->max or cannot be read back.
 */

static void
ngx_http_retarget_body_collect(ngx_http_request_t *r,
    ngx_http_retarget_bodies_t *st)
{
    off_t                     size, offset;
    u_char                   *p;
    ssize_t                   n;
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_request_body_t  *rb;

    st->request_done = 1;
    ngx_str_null(&st->request);

    rb = r->main->request_body;

    if (rb == NULL || rb->bufs == NULL) {
        return;
    }

    size = 0;

    for (cl = rb->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    if (size == 0 || size > (off_t) st->max) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: request body of %O bytes "
                       "not used (max %uz)", size, st->max);
        return;
    }

    b = rb->bufs->buf;

    if (rb->bufs->next == NULL && ngx_buf_in_memory(b)) {
        st->request.data = b->pos;
        st->request.len = b->last - b->pos;
        return;
    }

    p = ngx_pnalloc(r->pool, (size_t) size);
    if (p == NULL) {
        return;
    }

    st->request.data = p;

    for (cl = rb->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (!b->in_file || b->file_last <= b->file_pos) {
            continue;
        }

        if (b->file == NULL || b->file->fd == NGX_INVALID_FILE) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: request body file closed");
            ngx_str_null(&st->request);
            return;
        }

        /* pread(): only the file's bookkeeping offset moves; kept */
        offset = b->file->offset;

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        b->file->offset = offset;

        if (n != b->file_last - b->file_pos) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "retarget: request body file read back short "
                          "(%z bytes), extracts empty", n);
            ngx_str_null(&st->request);
            return;
        }

        p += n;
    }

    st->request.len = p - st->request.data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget extract: request body of %uz bytes",
                   st->request.len);
}


ngx_int_t
ngx_http_retarget_body_request(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_http_request_t            *mr;
    ngx_http_request_body_t       *rb;
    ngx_http_retarget_bodies_t    *st;
    ngx_http_retarget_loc_conf_t  *rlcf;

    mr = r->main;
    st = ngx_http_retarget_bodies(mr, 0);

    if (st == NULL || !st->request_done) {
        /*
         * Not read by the module (a location without events): a body that
         * nginx has read whole for the content handler is used too.
         */

        rb = mr->request_body;

        if (rb == NULL || rb->rest != 0 || rb->bufs == NULL
            || mr->request_body_no_buffering || mr->reading_body
            || (st != NULL && st->reading != NGX_HTTP_RETARGET_READ_NONE))
        {
            return NGX_DECLINED;
        }

        st = ngx_http_retarget_bodies(mr, 1);
        if (st == NULL) {
            return NGX_DECLINED;
        }

        rlcf = ngx_http_get_module_loc_conf(mr, ngx_http_retarget_module);
        st->max = rlcf->extract_max_size;

        ngx_http_retarget_body_collect(mr, st);
    }

    if (st->request.len == 0) {
        return NGX_DECLINED;
    }

    *body = st->request;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_body_response(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_http_retarget_bodies_t  *st;

    st = ngx_http_retarget_bodies(r, 0);

    if (st == NULL || !st->response_done || st->response_over
        || st->response_len == 0)
    {
        return NGX_DECLINED;
    }

    body->data = st->response;
    body->len = st->response_len;

    return NGX_OK;
}


/* the header filter: whether the response body is copied */

void
ngx_http_retarget_capture_start(ngx_http_request_t *r)
{
    ngx_str_t                      *ce;
    ngx_http_retarget_ctx_t        *ctx;
    ngx_http_retarget_bodies_t     *st;
    ngx_http_retarget_loc_conf_t   *rlcf;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (r != r->main
        || !(rmcf->extract_sources
             & NGX_HTTP_RETARGET_SRC_BIT(NGX_HTTP_RETARGET_SRC_RESPONSE)))
    {
        return;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (rlcf->events == NULL) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: response not copied, "
                       "no events here");
        return;
    }

    if (r->header_only) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: response not copied, no body");
        return;
    }

    ctx = ngx_http_retarget_request(r);

    if (ctx == NULL || !ctx->tracked) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: response not copied, "
                       "visitor not tracked");
        return;
    }

    if (ngx_http_retarget_body_kind(&r->headers_out.content_type)
        == ngx_http_retarget_body_other)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: response not copied, "
                       "type \"%V\"", &r->headers_out.content_type);
        return;
    }

    if (r->headers_out.content_encoding != NULL
        && r->headers_out.content_encoding->hash != 0)
    {
        ce = &r->headers_out.content_encoding->value;

        if (ce->len != 0
            && !(ce->len == sizeof("identity") - 1
                 && ngx_strncasecmp(ce->data, (u_char *) "identity", ce->len)
                    == 0))
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: response not copied, "
                           "\"%V\" encoded", ce);
            return;
        }
    }

    if (r->headers_out.content_length_n > (off_t) rlcf->extract_max_size) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: response not copied, "
                       "%O bytes, more than %uz",
                       r->headers_out.content_length_n,
                       rlcf->extract_max_size);
        return;
    }

    st = ngx_http_retarget_bodies(r, 1);
    if (st == NULL) {
        return;
    }

    st->capture = 1;
    st->response_done = 0;
    st->response_over = 0;
    st->response_len = 0;
    st->max = rlcf->extract_max_size;

    /* buffers from files (a proxy temp file, sendfile) are read for us */
    r->filter_need_in_memory = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget extract: copying the response, up to %uz bytes",
                   st->max);
}


/* the body filter: copies what passes, changes nothing */

void
ngx_http_retarget_capture_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                      *b;
    ngx_chain_t                    *cl;
    ngx_http_retarget_bodies_t     *st;
    ngx_http_retarget_main_conf_t  *rmcf;

    if (r != r->main || in == NULL) {
        return;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (!(rmcf->extract_sources
          & NGX_HTTP_RETARGET_SRC_BIT(NGX_HTTP_RETARGET_SRC_RESPONSE)))
    {
        return;
    }

    st = ngx_http_retarget_bodies(r, 0);

    if (st == NULL || !st->capture) {
        return;
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            if (b->last > b->pos
                && ngx_http_retarget_capture_append(r, st, b->pos,
                                                    b->last - b->pos)
                   != NGX_OK)
            {
                st->capture = 0;
                st->response_over = 1;
                return;
            }

        } else if (ngx_buf_size(b) > 0) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: response buffer not in "
                           "memory, not copied");
            st->capture = 0;
            st->response_over = 1;
            return;
        }

        if (b->last_buf) {
            st->capture = 0;
            st->response_done = 1;

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: response copied, %uz bytes",
                           st->response_len);
            return;
        }
    }
}


/* NGX_DECLINED past st->max */

static ngx_int_t
ngx_http_retarget_capture_append(ngx_http_request_t *r,
    ngx_http_retarget_bodies_t *st, u_char *p, size_t len)
{
    u_char  *n;
    size_t   size;

    if (len > st->max - st->response_len) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: response over %uz bytes, "
                       "not used", st->max);
        return NGX_DECLINED;
    }

    if (st->response_len + len > st->response_size) {

        if (st->response_size == 0 && r->headers_out.content_length_n > 0) {
            /* the length is known and not over st->max */
            size = (size_t) r->headers_out.content_length_n;

        } else {
            size = st->response_size ? st->response_size * 2
                                     : NGX_HTTP_RETARGET_CAPTURE_FIRST;
        }

        if (size < st->response_len + len) {
            size = st->response_len + len;
        }

        if (size > st->max) {
            size = st->max;
        }

        n = ngx_pnalloc(r->pool, size);
        if (n == NULL) {
            return NGX_ERROR;
        }

        if (st->response_len) {
            ngx_memcpy(n, st->response, st->response_len);
        }

        if (st->response_size) {
            /* a large piece goes back to the pool at once */
            ngx_pfree(r->pool, st->response);
        }

        st->response = n;
        st->response_size = size;
    }

    ngx_memcpy(st->response + st->response_len, p, len);
    st->response_len += len;

    return NGX_OK;
}
