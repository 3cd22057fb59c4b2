
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The reminder: its directives (campaign_conf.c), rules and writes
 * (campaign.c).
 */


#ifndef _NGX_HTTP_RETARGET_CAMPAIGN_H_INCLUDED_
#define _NGX_HTTP_RETARGET_CAMPAIGN_H_INCLUDED_


#include "ngx_http_retarget_module.h"


extern ngx_str_t  ngx_http_retarget_holdout_name;
void ngx_http_retarget_campaign_create(ngx_http_retarget_campaign_t *cp);
char *ngx_http_retarget_campaign_merge(ngx_conf_t *cf,
    ngx_http_retarget_campaign_t *prev, ngx_http_retarget_campaign_t *conf);
char *ngx_http_retarget_campaign_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_frequency_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_cart_lifetime_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_incentive_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_variant_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_holdout_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_attribution_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_retarget_currency_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_http_retarget_variant_name_t *ngx_http_retarget_variant_find(
    ngx_http_retarget_main_conf_t *rmcf, u_char *name, size_t len);

ngx_int_t ngx_http_retarget_campaign_decide(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_str_t *banner);
ngx_int_t ngx_http_retarget_campaign_log(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);


#endif /* _NGX_HTTP_RETARGET_CAMPAIGN_H_INCLUDED_ */
