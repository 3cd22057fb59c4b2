
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Out-of-stock products are left out of reminders.  The shop keeps their
 * skus in a set (ngx_http_retarget_store.h; SADD when an item sells out, SREM
 * when it is back), and each worker reads the set once a second: a page's
 * one read of the visitor's hash cannot also look at every product in the
 * cart, and a second command per page would double what Redis spends on
 * page views.  A product is shown at most a second after it sold out.
 */


#include "ngx_http_retarget_stock.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_store.h"


#define NGX_HTTP_RETARGET_STOCK_INTERVAL  1000


typedef struct {
    ngx_str_t                       key;       /* the set */
    ngx_event_t                     refresh;
    ngx_uint_t                      asked;     /* a read is in flight */
    ngx_str_t                      *skus;      /* sorted, one allocation */
    ngx_uint_t                      nskus;
} ngx_http_retarget_stock_t;


static void ngx_http_retarget_stock_refresh(ngx_event_t *ev);
static void ngx_http_retarget_stock_reply(void *data, redisReply *reply);
static int ngx_libc_cdecl ngx_http_retarget_stock_cmp(const void *one,
    const void *two);


static ngx_http_retarget_stock_t  *ngx_http_retarget_stock;


ngx_int_t
ngx_http_retarget_stock_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_http_retarget_stock_t  *st;

    /*
     * Debug logging of timers reads an event's data as a connection:
     * the allocation is at least that large.
     */

    st = ngx_pcalloc(cycle->pool, ngx_max(sizeof(ngx_http_retarget_stock_t),
                                          sizeof(ngx_connection_t)));
    if (st == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_stock = st;

    st->key.len = ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                    ngx_http_retarget_key_out_of_stock, NULL);
    st->key.data = ngx_pnalloc(cycle->pool, st->key.len);
    if (st->key.data == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_retarget_key_put(st->key.data, &rmcf->redis.prefix,
                                     ngx_http_retarget_key_out_of_stock,
                                     NULL);

    st->refresh.handler = ngx_http_retarget_stock_refresh;
    st->refresh.data = st;
    st->refresh.log = cycle->log;
    st->refresh.cancelable = 1;

    ngx_add_timer(&st->refresh, 1);

    return NGX_OK;
}


static void
ngx_http_retarget_stock_refresh(ngx_event_t *ev)
{
    ngx_http_retarget_cmd_t     cmd;
    ngx_http_retarget_redis_t  *rds;
    ngx_http_retarget_stock_t  *st;

    st = ev->data;

    if (ngx_exiting) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_RETARGET_STOCK_INTERVAL);

    rds = ngx_http_retarget_redis_get();

    if (st->asked
        || ngx_http_retarget_redis_state(rds, NULL)
           != ngx_http_retarget_link_up)
    {
        /* what was read last stays in force while Redis is away */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "retarget stock: not read, %s",
                       st->asked ? "a read is in flight" : "link not up");
        return;
    }

    ngx_http_retarget_cmd_init(&cmd, "SMEMBERS");
    ngx_http_retarget_arg_str(&cmd, &st->key);

    if (ngx_http_retarget_redis_read(rds, cmd.argc, cmd.argv, cmd.len,
                                     ngx_http_retarget_stock_reply, st)
        == NGX_OK)
    {
        st->asked = 1;
    }
}


static void
ngx_http_retarget_stock_reply(void *data, redisReply *reply)
{
    ngx_http_retarget_stock_t *st = data;

    u_char      *p;
    size_t       i, size;
    ngx_str_t   *skus;
    redisReply  *e;

    st->asked = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget stock: no set in the answer (%d), the "
                       "last one stays", reply ? reply->type : -1);
        return;
    }

    size = reply->elements * sizeof(ngx_str_t);

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            return;
        }

        size += e->len;
    }

    skus = ngx_alloc(size + 1, ngx_cycle->log);
    if (skus == NULL) {
        return;
    }

    p = (u_char *) (skus + reply->elements);

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        skus[i].data = p;
        skus[i].len = e->len;
        p = ngx_cpymem(p, e->str, e->len);
    }

    ngx_qsort(skus, reply->elements, sizeof(ngx_str_t),
              ngx_http_retarget_stock_cmp);

    if (st->skus != NULL) {
        ngx_free(st->skus);
    }

    st->skus = skus;
    st->nskus = reply->elements;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget stock: %ui skus out of stock", st->nskus);
}


ngx_int_t
ngx_http_retarget_out_of_stock(ngx_str_t *sku)
{
    ngx_int_t                   c;
    ngx_uint_t                  lo, hi, mid;
    ngx_http_retarget_stock_t  *st;

    st = ngx_http_retarget_stock;

    if (st == NULL) {
        return 0;
    }

    lo = 0;
    hi = st->nskus;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        c = ngx_http_retarget_stock_cmp(sku, &st->skus[mid]);

        if (c == 0) {
            return 1;
        }

        if (c < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return 0;
}


static int ngx_libc_cdecl
ngx_http_retarget_stock_cmp(const void *one, const void *two)
{
    const ngx_str_t  *a = one;
    const ngx_str_t  *b = two;

    ngx_int_t  c;

    c = ngx_memn2cmp(a->data, b->data, a->len, b->len);

    return (c > 0) - (c < 0);
}
