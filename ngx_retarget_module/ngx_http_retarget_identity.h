
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The signed visitor id and its cookie.
 */


#ifndef _NGX_HTTP_RETARGET_IDENTITY_H_INCLUDED_
#define _NGX_HTTP_RETARGET_IDENTITY_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_cookie_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, u_char *vid, ngx_uint_t *resign);
ngx_int_t ngx_http_retarget_identify(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);
ngx_int_t ngx_http_retarget_set_cookie(ngx_http_request_t *r,
    ngx_http_retarget_cookie_conf_t *cc, ngx_str_t *name, ngx_str_t *value,
    time_t max_age);
char *ngx_http_retarget_cookie_conf(ngx_conf_t *cf,
    ngx_http_retarget_cookie_conf_t *cc);
char *ngx_http_retarget_cookie(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_retarget_issue_cookie(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);


#endif /* _NGX_HTTP_RETARGET_IDENTITY_H_INCLUDED_ */
