
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Link-time stand-ins for what ngx_http_retarget_control.c refers to
 * beyond fuzz/stubs.c: the nginx HTTP API and the rest of the module.
 * return_path_fuzz only calls the path checks, which use none of them,
 * so each of these aborts: reaching one means the target has grown and
 * needs a real replacement here.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_module.h"


#define FUZZ_UNEXPECTED()                                                    \
    fuzz_fail("%s() is a link-time stub (fuzz/stubs_http.c)", __func__)


ngx_module_t  ngx_http_core_module;
ngx_module_t  ngx_http_retarget_module;


ngx_int_t
ngx_http_arg(ngx_http_request_t *r, u_char *name, size_t len, ngx_str_t *value)
{
    FUZZ_UNEXPECTED();
}


void
ngx_unescape_uri(u_char **dst, u_char **src, size_t size, ngx_uint_t type)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_discard_request_body(ngx_http_request_t *r)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_send_header(ngx_http_request_t *r)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_output_filter(ngx_http_request_t *r, ngx_chain_t *chain)
{
    FUZZ_UNEXPECTED();
}


void *
ngx_list_push(ngx_list_t *list)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_bypass(ngx_http_request_t *r)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len, ngx_uint_t copy)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_me(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_forget_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_set_cookie(ngx_http_request_t *r,
    ngx_http_retarget_cookie_conf_t *cc, ngx_str_t *name, ngx_str_t *value,
    time_t max_age)
{
    FUZZ_UNEXPECTED();
}
