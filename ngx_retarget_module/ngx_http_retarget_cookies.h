
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Finding one cookie in the request's Cookie headers, refusing
 * ambiguity.
 */


#ifndef _NGX_HTTP_RETARGET_COOKIES_H_INCLUDED_
#define _NGX_HTTP_RETARGET_COOKIES_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_cookie_find(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);
ngx_int_t ngx_http_retarget_cookie_lookup(ngx_array_t *headers,
    ngx_str_t *name, ngx_str_t *value);
ngx_int_t ngx_http_retarget_cookie_scan(u_char *p, u_char *last,
    ngx_str_t *name, ngx_str_t *value, ngx_uint_t *found);


#endif /* _NGX_HTTP_RETARGET_COOKIES_H_INCLUDED_ */
