
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Link-time stand-ins for what ngx_http_retarget_control.c,
 * ngx_http_retarget_store.c and ngx_http_retarget_event_conf.c refer to
 * beyond fuzz/stubs.c: the nginx HTTP API, the Redis link and the rest of
 * the module.  The targets only call pure checks and parsers, which use
 * none of them, so each of these aborts: reaching one means a target has
 * grown and needs a real replacement here.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_extract.h"
#include "ngx_http_retarget_identity.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_rights.h"
#include "ngx_http_retarget_wait.h"


#define FUZZ_UNEXPECTED()                                                    \
    fuzz_fail("%s() is a link-time stub (fuzz/stubs_http.c)", __func__)


ngx_module_t  ngx_http_core_module;
ngx_module_t  ngx_http_retarget_module;

volatile ngx_time_t  *ngx_cached_time;
volatile ngx_cycle_t  *ngx_cycle;

ngx_str_t  ngx_http_retarget_holdout_name = ngx_string("holdout");


ngx_int_t
ngx_http_arg(ngx_http_request_t *r, u_char *name, size_t len, ngx_str_t *value)
{
    FUZZ_UNEXPECTED();
}


uintptr_t
ngx_escape_uri(u_char *dst, u_char *src, size_t size, ngx_uint_t type)
{
    FUZZ_UNEXPECTED();
}


uintptr_t
ngx_escape_html(u_char *dst, u_char *src, size_t size)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_consent_value(ngx_http_request_t *r, ngx_str_t *choice,
    ngx_str_t *value)
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
ngx_http_retarget_no_store(ngx_http_request_t *r)
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
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_erased_pt done,
    void *data)
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


void
ngx_http_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    FUZZ_UNEXPECTED();
}


ngx_http_retarget_consent_e
ngx_http_retarget_consent_state(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_consent_tracks(ngx_http_retarget_consent_e c)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_cookie_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, u_char *vid, ngx_uint_t *resign)
{
    FUZZ_UNEXPECTED();
}


ngx_http_retarget_variant_name_t *
ngx_http_retarget_variant_find(ngx_http_retarget_main_conf_t *rmcf,
    u_char *name, size_t len)
{
    FUZZ_UNEXPECTED();
}


void
ngx_http_retarget_count(ngx_str_t *field, int64_t n)
{
    FUZZ_UNEXPECTED();
}


ngx_uint_t
ngx_http_retarget_extract_is_request(ngx_conf_t *cf, ngx_str_t *name)
{
    FUZZ_UNEXPECTED();
}


ngx_http_retarget_redis_t *
ngx_http_retarget_redis_get(void)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_redis_write(ngx_http_retarget_redis_t *rds, int argc,
    const char **argv, const size_t *argvlen)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_compile_complex_value(ngx_http_compile_complex_value_t *ccv)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_complex_value(ngx_http_request_t *r, ngx_http_complex_value_t *val,
    ngx_str_t *value)
{
    FUZZ_UNEXPECTED();
}


void
ngx_unescape_uri(u_char **dst, u_char **src, size_t size, ngx_uint_t type)
{
    FUZZ_UNEXPECTED();
}


ngx_int_t
ngx_http_retarget_wait(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_retarget_cmd_t *cmds, ngx_http_retarget_wait_reply_pt reply,
    ngx_http_retarget_wait_done_pt done, void *data)
{
    FUZZ_UNEXPECTED();
}
