
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The built-in banner and the data every reminder template gets.
 */


#ifndef _NGX_HTTP_RETARGET_BANNER_H_INCLUDED_
#define _NGX_HTTP_RETARGET_BANNER_H_INCLUDED_


#include "ngx_http_retarget_module.h"


typedef struct {
    ngx_array_t                   *cart;      /* items in stock */
    ngx_array_t                   *viewed;    /* in stock, not in the cart */
    ngx_uint_t                     browse;    /* of viewed products */
    ngx_str_t                      link;      /* the campaign's link= */
    ngx_http_retarget_incentive_t *incentive;
    ngx_str_t                      code;
    ngx_http_retarget_variant_t   *variant;
} ngx_http_retarget_banner_t;

ngx_int_t ngx_http_retarget_banner_init_conf(ngx_conf_t *cf);
char *ngx_http_retarget_banner_position(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_retarget_banner_merge_conf(
    ngx_http_retarget_overlay_conf_t *prev,
    ngx_http_retarget_overlay_conf_t *conf);
ngx_int_t ngx_http_retarget_banner_render(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_banner_t *bn,
    ngx_str_t *out);


#endif /* _NGX_HTTP_RETARGET_BANNER_H_INCLUDED_ */
