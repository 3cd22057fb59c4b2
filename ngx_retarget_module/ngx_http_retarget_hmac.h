
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * HMAC-SHA256 with the keys of retarget_secret: the first signs, every
 * key verifies.
 */


#ifndef _NGX_HTTP_RETARGET_HMAC_H_INCLUDED_
#define _NGX_HTTP_RETARGET_HMAC_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_hmac_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_hmac_sign(void *hmac, ngx_uint_t n,
    u_char *data, size_t len, u_char *sig);
ngx_int_t ngx_http_retarget_hmac_verify(ngx_log_t *log, void *hmac,
    u_char *data, size_t len, u_char *sig, ngx_uint_t *key);


#endif /* _NGX_HTTP_RETARGET_HMAC_H_INCLUDED_ */
