
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Redis commands being built
 */


#ifndef _NGX_HTTP_RETARGET_CMD_H_INCLUDED_
#define _NGX_HTTP_RETARGET_CMD_H_INCLUDED_


#include "ngx_http_retarget_module.h"


void ngx_http_retarget_cmd_init(ngx_http_retarget_cmd_t *cmd,
    const char *name);
ngx_http_retarget_cmd_t *ngx_http_retarget_cmd(ngx_array_t *cmds,
    const char *name);
void ngx_http_retarget_arg(ngx_http_retarget_cmd_t *cmd, u_char *data,
    size_t len);
void ngx_http_retarget_arg_str(ngx_http_retarget_cmd_t *cmd, ngx_str_t *s);
ngx_int_t ngx_http_retarget_arg_num(ngx_pool_t *pool,
    ngx_http_retarget_cmd_t *cmd, int64_t n);


#endif /* _NGX_HTTP_RETARGET_CMD_H_INCLUDED_ */
