
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Product data from the product page itself: the $retarget_page_*
 * variables, retarget_page_json, and the observer of the HTML response
 * that fills them (the scanner is ngx_http_retarget_page_scan.c).
 */


#ifndef _NGX_HTTP_RETARGET_PAGE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_PAGE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/* preconfiguration: $retarget_page_sku ... $retarget_page_in_stock */
ngx_int_t ngx_http_retarget_page_add_variables(ngx_conf_t *cf);

char *ngx_http_retarget_page_json_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
void ngx_http_retarget_page_create_conf(ngx_http_retarget_page_conf_t *conf);
void ngx_http_retarget_page_merge_conf(ngx_http_retarget_page_conf_t *prev,
    ngx_http_retarget_page_conf_t *conf);

/* the filter's observers: see every buffer once, change nothing */
void ngx_http_retarget_page_start(ngx_http_request_t *r);
void ngx_http_retarget_page_body(ngx_http_request_t *r, ngx_chain_t *in);

/*
 * The text of the object retarget_page_json names, once the page has
 * passed it: NGX_DECLINED when there is none (not configured, not in the
 * page, larger than 64 KB).  For "retarget_extract $x page PATH".
 */
ngx_int_t ngx_http_retarget_page_json_text(ngx_http_request_t *r,
    ngx_str_t *text);


#endif /* _NGX_HTTP_RETARGET_PAGE_H_INCLUDED_ */
