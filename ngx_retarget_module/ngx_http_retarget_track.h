
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Redis' server-assisted invalidation of the catalogue: a second
 * connection per worker that hears of changes to products.
 */


#ifndef _NGX_HTTP_RETARGET_TRACK_H_INCLUDED_
#define _NGX_HTTP_RETARGET_TRACK_H_INCLUDED_


#include "ngx_http_retarget_module.h"


typedef struct {
    ngx_uint_t                     on;            /* Redis tells of changes */
    ngx_uint_t                     connects;      /* of the second link */
    ngx_uint_t                     messages;      /* invalidations heard */
    ngx_uint_t                     refused;       /* Redis cannot track */
} ngx_http_retarget_track_stats_t;


ngx_int_t ngx_http_retarget_track_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
void ngx_http_retarget_track_exit_process(ngx_cycle_t *cycle);
void ngx_http_retarget_track_stats(ngx_http_retarget_track_stats_t *stats);


#endif /* _NGX_HTTP_RETARGET_TRACK_H_INCLUDED_ */
