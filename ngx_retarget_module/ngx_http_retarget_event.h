
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * What the files of behaviour logging share: the events a location
 * configures (ngx_http_retarget_event_conf.c), their checked values, and
 * the batch of commands an event becomes (ngx_http_retarget_event.c),
 * some of which wait for an answer (ngx_http_retarget_event_reply.c).
 */


#ifndef _NGX_HTTP_RETARGET_EVENT_H_INCLUDED_
#define _NGX_HTTP_RETARGET_EVENT_H_INCLUDED_


#include "ngx_http_retarget_module.h"
#include "ngx_http_retarget_store.h"


typedef enum {
    ngx_http_retarget_ev_product = 0,
    ngx_http_retarget_ev_cart_add,
    ngx_http_retarget_ev_cart_remove,
    ngx_http_retarget_ev_cart_clear,
    ngx_http_retarget_ev_checkout,
    ngx_http_retarget_ev_purchase,
    ngx_http_retarget_ev_identify,
    ngx_http_retarget_ev_cart_update,
    ngx_http_retarget_ev_cart_sync,
    ngx_http_retarget_ev_custom
} ngx_http_retarget_ev_type_e;


/* the parameters of retarget_event, in this order */
typedef enum {
    ngx_http_retarget_p_sku = 0,
    ngx_http_retarget_p_qty,
    ngx_http_retarget_p_price,
    ngx_http_retarget_p_name,
    ngx_http_retarget_p_image,
    ngx_http_retarget_p_url,
    ngx_http_retarget_p_currency, /* product: <prefix>p:SKU only */
    ngx_http_retarget_p_in_stock, /* product: <prefix>p:SKU only */
    ngx_http_retarget_p_order,
    ngx_http_retarget_p_value,
    ngx_http_retarget_p_user,
    ngx_http_retarget_p_line,
    ngx_http_retarget_p_delta,
    ngx_http_retarget_p_items,    /* cart_sync */
    ngx_http_retarget_p_minor,    /* how to read amounts, not a value */
    ngx_http_retarget_p_if,
    ngx_http_retarget_p_count
} ngx_http_retarget_param_e;


typedef struct {
    ngx_str_t                      name;
    ngx_http_retarget_ev_type_e    type;
    ngx_str_t                      counter;
    ngx_http_complex_value_t      *params[ngx_http_retarget_p_count];
    ngx_uint_t                     catalog;  /* may write <prefix>p:SKU */
    ngx_uint_t                     decode;   /* bit per param: a $arg_ */
    ngx_uint_t                     raw;      /* identify: user as it is */
    ngx_uint_t                     page;     /* product: all from the page */
} ngx_http_retarget_event_conf_t;


/* ev->minor: no minor= (decimal amounts), or one that was unusable */
#define NGX_HTTP_RETARGET_MINOR_NONE  -1
#define NGX_HTTP_RETARGET_MINOR_BAD   -2


/* a value of a "catalog" event, for the check at the end */
typedef struct {
    ngx_uint_t                     param;
    ngx_str_t                      value;
    u_char                        *file;
    ngx_uint_t                     line;
} ngx_http_retarget_catalog_value_t;


/* an event's values, checked */
typedef struct {
    ngx_http_retarget_event_conf_t  *conf;
    ngx_str_t                        v[ngx_http_retarget_p_count];
    int64_t                          qty;
    int64_t                          delta;     /* cart_update delta= */
    int64_t                          cents;     /* price or value */
    ngx_int_t                        minor;     /* decimals of minor units
                                                   in amounts, or MINOR_ */
    ngx_array_t                     *items;     /* cart_sync: the cart,
                                                   of item_t */
} ngx_http_retarget_event_t;


/* the commands of one event, being built in the request pool */
typedef struct {
    ngx_http_request_t            *r;
    ngx_http_retarget_main_conf_t *rmcf;
    ngx_array_t                   *asks;      /* their answers decide */
    ngx_array_t                   *cmds;
    ngx_str_t                     *vid;
    ngx_str_t                      now;
    ngx_str_t                      ms;        /* of items, cart_cleared */
    ngx_uint_t                     line;      /* the item's line, in cmds;
                                                 NGX_CONF_UNSET_UINT: none */
    size_t                         gap;       /* where its QTY goes */
} ngx_http_retarget_batch_t;


/* ngx_http_retarget_event_conf.c */
extern const char  *ngx_http_retarget_json_keys[];
ngx_int_t ngx_http_retarget_event_values(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev);
ngx_int_t ngx_http_retarget_event_check(ngx_uint_t param, ngx_str_t *v,
    ngx_http_retarget_event_t *ev);
ngx_int_t ngx_http_retarget_printable(ngx_str_t *v, size_t max,
    ngx_uint_t spaces);
ngx_int_t ngx_http_retarget_event_amount(ngx_str_t *v, ngx_int_t minor,
    int64_t *cents);
ngx_int_t ngx_http_retarget_catalog_value(ngx_str_t *v, ngx_str_t *var);
ngx_int_t ngx_http_retarget_catalog_check(ngx_conf_t *cf);
ngx_int_t ngx_http_retarget_protocol_relative(ngx_pool_t *pool,
    ngx_str_t *v);
void ngx_http_retarget_reason_log(ngx_log_t *log, ngx_str_t *event,
    ngx_str_t *uri, ngx_str_t *reason, ngx_str_t *kept, ngx_str_t *param,
    ngx_str_t *value);

/* ngx_http_retarget_cart_sync.c */
ngx_int_t ngx_http_retarget_cart_sync_values(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev);

/* ngx_http_retarget_event_reply.c */
extern ngx_str_t  ngx_http_retarget_c_revenue;

ngx_int_t ngx_http_retarget_cart_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
ngx_int_t ngx_http_retarget_line_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
ngx_int_t ngx_http_retarget_purchase_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
ngx_int_t ngx_http_retarget_viewed_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);

ngx_int_t ngx_http_retarget_event_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf);
ngx_int_t ngx_http_retarget_event_pageview(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);
ngx_int_t ngx_http_retarget_event_log(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);

char *ngx_http_retarget_event_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_RETARGET_EVENT_H_INCLUDED_ */
