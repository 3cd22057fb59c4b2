
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Same-site paths: where the module will send a visitor.
 */


#ifndef _NGX_HTTP_RETARGET_URL_H_INCLUDED_
#define _NGX_HTTP_RETARGET_URL_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_same_site_path(ngx_str_t *path);


#endif /* _NGX_HTTP_RETARGET_URL_H_INCLUDED_ */
