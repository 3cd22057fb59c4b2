
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The daily counters, summed per worker and flushed each second.
 */


#ifndef _NGX_HTTP_RETARGET_COUNTERS_H_INCLUDED_
#define _NGX_HTTP_RETARGET_COUNTERS_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_counters_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
void ngx_http_retarget_count(ngx_str_t *field, int64_t n);


#endif /* _NGX_HTTP_RETARGET_COUNTERS_H_INCLUDED_ */
