
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Money as the shop writes it: an amount in cents with the symbol and the
 * minor digits of its ISO 4217 currency.
 */


#ifndef _NGX_HTTP_RETARGET_MONEY_H_INCLUDED_
#define _NGX_HTTP_RETARGET_MONEY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* where the symbol goes: "$12.00", "CHF 12.00", "12.00 kr" */
#define NGX_HTTP_RETARGET_CUR_BEFORE        0
#define NGX_HTTP_RETARGET_CUR_BEFORE_SPACE  1
#define NGX_HTTP_RETARGET_CUR_AFTER_SPACE   2

/*
 * The longest formatted amount: 19 digits of units, the point, 4 minor
 * digits, a symbol of at most 8 bytes and a no-break space (2 bytes)
 */
#define NGX_HTTP_RETARGET_MONEY_LEN         (NGX_INT64_LEN + 16)


typedef struct {
    u_char                         code[3];   /* upper case */
    u_char                         digits;    /* minor digits, 0..4 */
    u_char                         style;     /* NGX_HTTP_RETARGET_CUR_* */
    ngx_str_t                      symbol;    /* UTF-8; empty: the code */
} ngx_http_retarget_currency_t;


ngx_int_t ngx_http_retarget_currency_set(ngx_str_t *code,
    ngx_http_retarget_currency_t *cur);
ngx_int_t ngx_http_retarget_currency_code(ngx_str_t *code);
u_char *ngx_http_retarget_money_value(u_char *p, int64_t cents,
    ngx_http_retarget_currency_t *cur);
u_char *ngx_http_retarget_money_format(u_char *p, int64_t cents,
    ngx_http_retarget_currency_t *cur);
ngx_int_t ngx_http_retarget_money(ngx_pool_t *pool, int64_t cents,
    ngx_http_retarget_currency_t *cur, ngx_str_t *formatted,
    ngx_str_t *value);


#endif /* _NGX_HTTP_RETARGET_MONEY_H_INCLUDED_ */
