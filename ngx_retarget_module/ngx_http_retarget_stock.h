
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The out-of-stock set: asked about per sku, never read whole.
 */


#ifndef _NGX_HTTP_RETARGET_STOCK_H_INCLUDED_
#define _NGX_HTTP_RETARGET_STOCK_H_INCLUDED_


#include "ngx_http_retarget_module.h"


typedef void (*ngx_http_retarget_stock_done_pt)(ngx_http_request_t *r,
    void *data);


ngx_int_t ngx_http_retarget_stock_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_stock_check(ngx_http_request_t *r,
    ngx_http_retarget_state_t *state, ngx_http_retarget_stock_done_pt done,
    void *data);
ngx_uint_t ngx_http_retarget_stock_listed(ngx_str_t *sku);
void ngx_http_retarget_stock_tracked(ngx_uint_t on);
void ngx_http_retarget_stock_changed(void);


#endif /* _NGX_HTTP_RETARGET_STOCK_H_INCLUDED_ */
