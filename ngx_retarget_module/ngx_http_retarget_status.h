
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The status endpoint and its per-worker shared memory.
 */


#ifndef _NGX_HTTP_RETARGET_STATUS_H_INCLUDED_
#define _NGX_HTTP_RETARGET_STATUS_H_INCLUDED_


#include "ngx_http_retarget_module.h"


char *ngx_http_retarget_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_retarget_status_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
void ngx_http_retarget_status_decision(ngx_http_retarget_decision_e d);
void ngx_http_retarget_status_cart_read(ngx_http_retarget_fetch_e outcome,
    ngx_msec_t ms);


#endif /* _NGX_HTTP_RETARGET_STATUS_H_INCLUDED_ */
