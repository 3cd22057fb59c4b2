
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The Mustache-subset templates: compiled at configuration time, rendered
 * per request.
 */


#ifndef _NGX_HTTP_RETARGET_TEMPLATE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_TEMPLATE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_http_retarget_tpl_t *ngx_http_retarget_tpl_compile(ngx_conf_t *cf,
    ngx_str_t *text, ngx_str_t *source);
ngx_http_retarget_tpl_t *ngx_http_retarget_tpl_load(ngx_conf_t *cf,
    ngx_str_t *path);
ngx_int_t ngx_http_retarget_tpl_render(ngx_pool_t *pool,
    ngx_http_retarget_tpl_t *tpl, ngx_array_t *data, ngx_str_t *out);
size_t ngx_http_retarget_escape_html(u_char *dst, u_char *src, size_t size);
ngx_uint_t ngx_http_retarget_tpl_uses(ngx_http_retarget_tpl_t *tpl,
    char *name);
ngx_http_retarget_tfield_t *ngx_http_retarget_tpl_field_add(ngx_array_t *obj,
    char *name, ngx_http_retarget_tv_type_e type, ngx_str_t *str,
    ngx_flag_t flag);


#endif /* _NGX_HTTP_RETARGET_TEMPLATE_H_INCLUDED_ */
