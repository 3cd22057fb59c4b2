
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Parsing the visitor's stored state.
 */


#ifndef _NGX_HTTP_RETARGET_STATE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_STATE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_state_parse(ngx_pool_t *pool, ngx_str_t *kv,
    ngx_uint_t n, ngx_http_retarget_state_t *st);


#endif /* _NGX_HTTP_RETARGET_STATE_H_INCLUDED_ */
