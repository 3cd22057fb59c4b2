
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor endpoints (retarget_control).
 */


#ifndef _NGX_HTTP_RETARGET_CONTROL_H_INCLUDED_
#define _NGX_HTTP_RETARGET_CONTROL_H_INCLUDED_


#include "ngx_http_retarget_module.h"


char *ngx_http_retarget_control(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_RETARGET_CONTROL_H_INCLUDED_ */
