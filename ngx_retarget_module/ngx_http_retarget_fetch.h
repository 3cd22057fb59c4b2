
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The page's one read of the visitor's state.
 */


#ifndef _NGX_HTTP_RETARGET_FETCH_H_INCLUDED_
#define _NGX_HTTP_RETARGET_FETCH_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_fetch_start(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx);


#endif /* _NGX_HTTP_RETARGET_FETCH_H_INCLUDED_ */
