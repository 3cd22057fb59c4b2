
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The bodies retarget_extract reads: the request body, read by the module
 * in the preaccess phase, and the upstream's response body, copied as it
 * passes through the body filter.  Both bounded by retarget_extract_max_size.
 */


#ifndef _NGX_HTTP_RETARGET_BODY_H_INCLUDED_
#define _NGX_HTTP_RETARGET_BODY_H_INCLUDED_


#include "ngx_http_retarget_module.h"

#include <jansson.h>


/* where a retarget_extract variable reads: rmcf->extract_sources bits */
#define NGX_HTTP_RETARGET_SRC_REQUEST   0
#define NGX_HTTP_RETARGET_SRC_RESPONSE  1
#define NGX_HTTP_RETARGET_SRC_PAGE      2
#define NGX_HTTP_RETARGET_SRC_COUNT     3

#define NGX_HTTP_RETARGET_SRC_BIT(s)    (1 << (s))


/* what a body is, by its Content-Type */
typedef enum {
    ngx_http_retarget_body_other = 0,
    ngx_http_retarget_body_json,
    ngx_http_retarget_body_urlencoded,
    ngx_http_retarget_body_multipart
} ngx_http_retarget_body_kind_e;


/*
 * Per main request, in a cleanup of its pool (found again after internal
 * redirects, which wipe r->ctx; the cleanup also releases the documents).
 */
typedef struct {
    ngx_str_t                      request;     /* valid when request_done */
    u_char                        *response;    /* the copy, so far */
    size_t                         response_len;
    size_t                         response_size;  /* allocated */
    size_t                         max;

    /* the parsed JSON of each source: ngx_http_retarget_extract.c's */
    json_t                        *doc[NGX_HTTP_RETARGET_SRC_COUNT];
    ngx_uint_t                     parsed;      /* SRC_BIT()s tried */

    unsigned                       reading:2;   /* the request body's read */
    unsigned                       request_done:1;  /* request is the body,
                                                       or empty: none, or
                                                       too large */
    unsigned                       capture:1;   /* copying the response */
    unsigned                       response_done:1; /* all of it copied */
    unsigned                       response_over:1; /* too large, or not
                                                       all in memory */
} ngx_http_retarget_bodies_t;


ngx_http_retarget_bodies_t *ngx_http_retarget_bodies(ngx_http_request_t *r,
    ngx_uint_t create);
ngx_http_retarget_body_kind_e ngx_http_retarget_body_kind(ngx_str_t *type);

/* preaccess: NGX_DECLINED to go on, NGX_DONE while the body is read */
ngx_int_t ngx_http_retarget_body_read(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);

/* NGX_OK and the whole body, or NGX_DECLINED: none, too large, not yet */
ngx_int_t ngx_http_retarget_body_request(ngx_http_request_t *r,
    ngx_str_t *body);
ngx_int_t ngx_http_retarget_body_response(ngx_http_request_t *r,
    ngx_str_t *body);

/* the filter's observers: they never change or hold a buffer */
void ngx_http_retarget_capture_start(ngx_http_request_t *r);
void ngx_http_retarget_capture_body(ngx_http_request_t *r, ngx_chain_t *in);


#endif /* _NGX_HTTP_RETARGET_BODY_H_INCLUDED_ */
