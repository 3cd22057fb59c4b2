
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * retarget_extract: variables whose values come from the request body,
 * the upstream's response body or a JSON object the page embeds.
 */


#ifndef _NGX_HTTP_RETARGET_EXTRACT_H_INCLUDED_
#define _NGX_HTTP_RETARGET_EXTRACT_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/* retarget_extract_max_size: at most what the JSON parser takes */
extern ngx_conf_post_t  ngx_http_retarget_extract_size_bounds;

char *ngx_http_retarget_extract_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_uint_t ngx_http_retarget_extract_is_request(ngx_conf_t *cf,
    ngx_str_t *name);


#endif /* _NGX_HTTP_RETARGET_EXTRACT_H_INCLUDED_ */
