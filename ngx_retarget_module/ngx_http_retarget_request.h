
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The request: its context, found again after internal redirects, the
 * names of its decisions, and the small responses of the endpoints.
 */


#ifndef _NGX_HTTP_RETARGET_REQUEST_H_INCLUDED_
#define _NGX_HTTP_RETARGET_REQUEST_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_http_retarget_ctx_t *ngx_http_retarget_get_ctx(ngx_http_request_t *r);
ngx_http_retarget_ctx_t *ngx_http_retarget_create_ctx(ngx_http_request_t *r);
ngx_http_retarget_ctx_t *ngx_http_retarget_request(ngx_http_request_t *r);
ngx_int_t ngx_http_retarget_bypass(ngx_http_request_t *r);
ngx_int_t ngx_http_retarget_unconditional(ngx_http_request_t *r);
ngx_int_t ngx_http_retarget_header_in_remove(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_retarget_no_store(ngx_http_request_t *r);
ngx_int_t ngx_http_retarget_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len, ngx_uint_t copy);

extern ngx_str_t  ngx_http_retarget_decisions[];


#endif /* _NGX_HTTP_RETARGET_REQUEST_H_INCLUDED_ */
