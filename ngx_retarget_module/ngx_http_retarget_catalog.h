
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The product catalogue (<prefix>p:SKU) as reminders show it: a cache
 * per worker of the products its pages met, kept current.
 */


#ifndef _NGX_HTTP_RETARGET_CATALOG_H_INCLUDED_
#define _NGX_HTTP_RETARGET_CATALOG_H_INCLUDED_


#include "ngx_http_retarget_module.h"


typedef void (*ngx_http_retarget_catalog_done_pt)(ngx_http_request_t *r,
    void *data);


ngx_int_t ngx_http_retarget_catalog_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_catalog_ask(ngx_http_request_t *r,
    ngx_http_retarget_state_t *state, ngx_http_retarget_catalog_done_pt done,
    void *data);
ngx_int_t ngx_http_retarget_catalog_merge(ngx_pool_t *pool,
    ngx_http_retarget_state_t *state);
ngx_uint_t ngx_http_retarget_out_of_stock(ngx_str_t *sku);
ngx_uint_t ngx_http_retarget_catalog_same(ngx_http_retarget_item_t *it,
    ngx_str_t *currency, ngx_str_t *in_stock);

/* from the invalidation link (ngx_http_retarget_track.c) */
void ngx_http_retarget_catalog_tracked(ngx_uint_t on);
void ngx_http_retarget_catalog_invalidate(ngx_str_t *key);
void ngx_http_retarget_catalog_flush(const char *why);

/* for the status page */
void ngx_http_retarget_catalog_stats(ngx_uint_t *products, size_t *bytes,
    ngx_uint_t *tracked, ngx_uint_t *invalidations);


#endif /* _NGX_HTTP_RETARGET_CATALOG_H_INCLUDED_ */
