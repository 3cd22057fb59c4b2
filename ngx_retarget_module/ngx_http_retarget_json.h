
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * JSON documents from outside (bodies, headers, maps): parsed bounded,
 * walked by a dot path, and values given back as text.
 */


#ifndef _NGX_HTTP_RETARGET_JSON_H_INCLUDED_
#define _NGX_HTTP_RETARGET_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <jansson.h>


/* the deepest nesting of arrays and objects a document may have */
#define NGX_HTTP_RETARGET_JSON_DEPTH  32


json_t *ngx_http_retarget_json_parse(u_char *p, size_t len);
json_t *ngx_http_retarget_json_path(json_t *root, u_char *path, size_t len);
ngx_int_t ngx_http_retarget_json_text(ngx_pool_t *pool, json_t *v,
    ngx_str_t *out);


#endif /* _NGX_HTTP_RETARGET_JSON_H_INCLUDED_ */
