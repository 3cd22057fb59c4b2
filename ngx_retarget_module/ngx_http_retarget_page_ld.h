
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The JSON-LD of a product page (ngx_http_retarget_page_ld.c): a captured
 * script's text, parsed into the JSON-LD values of the scan, and the
 * worker's cache of the results.
 */


#ifndef _NGX_HTTP_RETARGET_PAGE_LD_H_INCLUDED_
#define _NGX_HTTP_RETARGET_PAGE_LD_H_INCLUDED_


#include "ngx_http_retarget_page_scan.h"


void ngx_http_retarget_page_ld(ngx_http_retarget_page_scan_t *s, u_char *p,
    size_t len);

/* the worker's cache of JSON-LD results emptied (for the fuzz target) */
void ngx_http_retarget_page_ld_cache_flush(void);


#endif /* _NGX_HTTP_RETARGET_PAGE_LD_H_INCLUDED_ */
