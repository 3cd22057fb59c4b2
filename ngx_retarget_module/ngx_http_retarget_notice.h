
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The transparency notice.
 */


#ifndef _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_notice_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_loc_conf_t *rlcf);
ngx_int_t ngx_http_retarget_notice_render(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx,
    ngx_str_t *out);
ngx_int_t ngx_http_retarget_return_to(ngx_http_request_t *r, ngx_str_t *out);


#endif /* _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_ */
