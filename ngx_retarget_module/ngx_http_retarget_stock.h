
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The out-of-stock set, read once a second.
 */


#ifndef _NGX_HTTP_RETARGET_STOCK_H_INCLUDED_
#define _NGX_HTTP_RETARGET_STOCK_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_stock_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_out_of_stock(ngx_str_t *sku);


#endif /* _NGX_HTTP_RETARGET_STOCK_H_INCLUDED_ */
