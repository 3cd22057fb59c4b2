
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Self-optimising variants: retarget_optimize thompson re-weights a
 * campaign's variants (never the holdout) from the distinct eligible
 * visitors and converters of the last 28 days, the same weights on every
 * nginx in front of the shop.
 */


#ifndef _NGX_HTTP_RETARGET_OPTIMIZE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_OPTIMIZE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/* jansson's, for the status' prototype: not every includer needs it */
struct json_t;


char *ngx_http_retarget_optimize_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_optimize_merge(ngx_conf_t *cf,
    ngx_http_retarget_campaign_t *prev, ngx_http_retarget_campaign_t *conf,
    ngx_uint_t strict);
ngx_int_t ngx_http_retarget_optimize_check(ngx_conf_t *cf,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_optimize_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_uint_t *ngx_http_retarget_optimize_weights(
    ngx_http_retarget_optimize_t *opt, ngx_uint_t *total);
int ngx_http_retarget_optimize_status(struct json_t *root,
    ngx_http_retarget_main_conf_t *rmcf);


#endif /* _NGX_HTTP_RETARGET_OPTIMIZE_H_INCLUDED_ */
