
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor's data rights: "me" and "forget".
 */


#ifndef _NGX_HTTP_RETARGET_RIGHTS_H_INCLUDED_
#define _NGX_HTTP_RETARGET_RIGHTS_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/* NGX_OK: erased (confirmed by Redis), else NGX_ERROR */
typedef void (*ngx_http_retarget_erased_pt)(ngx_http_request_t *r,
    void *data, ngx_int_t rc);


ngx_int_t ngx_http_retarget_me(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
ngx_int_t ngx_http_retarget_forget_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_erased_pt done,
    void *data);


#endif /* _NGX_HTTP_RETARGET_RIGHTS_H_INCLUDED_ */
