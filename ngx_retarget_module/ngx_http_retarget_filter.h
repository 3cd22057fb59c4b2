
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The header and body filters that inject before </body>.
 */


#ifndef _NGX_HTTP_RETARGET_FILTER_H_INCLUDED_
#define _NGX_HTTP_RETARGET_FILTER_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_filter_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_RETARGET_FILTER_H_INCLUDED_ */
