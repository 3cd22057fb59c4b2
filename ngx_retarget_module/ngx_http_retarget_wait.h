
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Requests that wait for Redis answers (bounded, detached on client
 * abort).
 */


#ifndef _NGX_HTTP_RETARGET_WAIT_H_INCLUDED_
#define _NGX_HTTP_RETARGET_WAIT_H_INCLUDED_


#include "ngx_http_retarget_module.h"


typedef struct ngx_http_retarget_wait_s  ngx_http_retarget_wait_t;
typedef void (*ngx_http_retarget_wait_reply_pt)(ngx_http_request_t *r,
    void *data, redisReply *reply);
typedef void (*ngx_http_retarget_wait_done_pt)(ngx_http_request_t *r,
    void *data, ngx_int_t rc);

/* a read with more arguments than ngx_http_retarget_cmd_t holds */
typedef struct {
    int                                argc;
    const char                       **argv;
    size_t                            *len;
} ngx_http_retarget_wait_read_t;

ngx_int_t ngx_http_retarget_wait(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_retarget_cmd_t *cmds, ngx_http_retarget_wait_reply_pt reply,
    ngx_http_retarget_wait_done_pt done, void *data);
ngx_int_t ngx_http_retarget_wait_reads(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_retarget_wait_read_t *reads,
    ngx_http_retarget_wait_reply_pt reply, ngx_http_retarget_wait_done_pt done,
    void *data);


#endif /* _NGX_HTTP_RETARGET_WAIT_H_INCLUDED_ */
