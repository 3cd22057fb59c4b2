
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The worker's Redis link on nginx's event loop.
 */


#ifndef _NGX_HTTP_RETARGET_REDIS_H_INCLUDED_
#define _NGX_HTTP_RETARGET_REDIS_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_int_t ngx_http_retarget_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
void ngx_http_retarget_redis_exit_process(ngx_cycle_t *cycle);
ngx_http_retarget_redis_t *ngx_http_retarget_redis_get(void);
ngx_int_t ngx_http_retarget_redis_write(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen);
ngx_int_t ngx_http_retarget_redis_read(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_reply_pt handler, void *data);
ngx_int_t ngx_http_retarget_redis_read_ordered(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_reply_pt handler, void *data, ngx_uint_t hold);
void ngx_http_retarget_redis_on_link(ngx_http_retarget_redis_t *rds,
    ngx_http_retarget_redis_link_pt handler, void *data);
ngx_int_t ngx_http_retarget_redis_on_exit(ngx_http_retarget_redis_t *rds,
    ngx_http_retarget_redis_exit_pt handler, void *data);
ngx_http_retarget_link_e ngx_http_retarget_redis_state(
    ngx_http_retarget_redis_t *rds, ngx_http_retarget_redis_stats_t *stats);
char *ngx_http_retarget_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_RETARGET_REDIS_H_INCLUDED_ */
