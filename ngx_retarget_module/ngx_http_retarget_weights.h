
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The optimizer's weights as Redis keeps them, "A=0.7012,B=0.2988":
 * made from the probabilities to be best, written, and read back
 * strictly (anyone who can write to Redis can write there).
 */


#ifndef _NGX_HTTP_RETARGET_WEIGHTS_H_INCLUDED_
#define _NGX_HTTP_RETARGET_WEIGHTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* weights are counted in ten-thousandths: "0.7012" is 7012 */
#define NGX_HTTP_RETARGET_WEIGHT_ONE    10000

/* variants one optimizer re-weights */
#define NGX_HTTP_RETARGET_OPTIMIZE_ARMS 16

/*
 * The value of a period decided under "min": the configured weights,
 * which are the location's own integers, not ten-thousandths (they may
 * be under the floor, and 1:3 is not exactly 0.2500:0.7500 of a draw
 * mod 4), so they are named, not written out.
 */
#define NGX_HTTP_RETARGET_WEIGHTS_CONFIGURED  "configured"


/* "NAME=0.dddd" for each arm, joined by ",": the size to allocate */
size_t ngx_http_retarget_weights_len(ngx_str_t *names, ngx_uint_t n);
u_char *ngx_http_retarget_weights_format(u_char *p, ngx_str_t *names,
    ngx_uint_t n, ngx_uint_t *w);
ngx_int_t ngx_http_retarget_weights_parse(u_char *p, size_t len,
    ngx_str_t *names, ngx_uint_t n, ngx_uint_t floor, ngx_uint_t *w);
void ngx_http_retarget_weights_from_best(double *p_best, ngx_uint_t n,
    ngx_uint_t floor, ngx_uint_t *w);


#endif /* _NGX_HTTP_RETARGET_WEIGHTS_H_INCLUDED_ */
