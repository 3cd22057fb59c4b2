
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The values of product pages (ngx_http_retarget_page_clean.c), shared by
 * the tokenizer's sources (ngx_http_retarget_page_scan.c) and JSON-LD
 * (ngx_http_retarget_page_ld.c).
 */


#ifndef _NGX_HTTP_RETARGET_PAGE_CLEAN_H_INCLUDED_
#define _NGX_HTTP_RETARGET_PAGE_CLEAN_H_INCLUDED_


#include "ngx_http_retarget_page_scan.h"


#define ngx_http_retarget_page_alpha(c)                                      \
    (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')


/* pool failures of a copy, ever */
extern ngx_uint_t  ngx_http_retarget_page_clean_nomem;


ngx_uint_t ngx_http_retarget_page_is(u_char *name, size_t len,
    const char *s);
/* the first value of a field in a source is kept */
void ngx_http_retarget_page_set(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t source, ngx_uint_t field, u_char *p, size_t len);
ngx_int_t ngx_http_retarget_page_clean(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t field, u_char *p, size_t len, ngx_str_t *out);


#endif /* _NGX_HTTP_RETARGET_PAGE_CLEAN_H_INCLUDED_ */
