
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The product catalogue as reminders show it.  <prefix>p:SKU (name,
 * price, currency, image, url, in_stock; ngx_http_retarget_store.h) is
 * written by product pages' catalog events, by the shop, or by the feed
 * loader (util/); a reminder shows its current values, not the copy a
 * cart line or a viewed product took when the visitor met the product.
 *
 * A page's critical path stays one read (the HGETALL of the visitor's
 * meta, ngx_http_retarget_fetch.c): each worker keeps the products its
 * pages met (at most MAX of them and BYTES of values, the least recently
 * used forgotten first, and any unused for IDLE), and a page that names a
 * product the worker does not know asks for it in one more pipelined
 * round, "HMGET <prefix>p:SKU name price ..." per new sku, sent together
 * with the out-of-stock question of ngx_http_retarget_stock.c.
 *
 * What the worker knows is kept current in one of two ways:
 *
 *   - tracked (ngx_http_retarget_track.c): Redis tells the worker of
 *     every change to a p: key (CLIENT TRACKING ... BCAST, redirected to
 *     a second connection), and the product is forgotten, to be read
 *     again by the next page that shows it.  Nothing is polled.  The
 *     whole cache is forgotten whenever either connection drops or comes
 *     up, since what changed meanwhile was never told;
 *   - polled, when Redis cannot track (older than 6, CLIENT renamed or
 *     refused, the second connection away): once a second every known
 *     product is read again, so a change shows within about a second.
 *
 * An answer that crossed a change on its way (an invalidation came while
 * it was asked) serves the page that asked, and is read again at once:
 * the order of the two connections' messages is not the order in which
 * Redis made them.
 *
 * A product without a hash (never written) counts as known with nothing
 * to say: the page's own copy is shown.
 */


#include "ngx_http_retarget_catalog.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_event.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_stock.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_wait.h"


#define NGX_HTTP_RETARGET_CATALOG_INTERVAL  1000
#define NGX_HTTP_RETARGET_CATALOG_MAX       4096     /* products, tracked */
#define NGX_HTTP_RETARGET_CATALOG_POLL_MAX  1024     /* products, polled */
#define NGX_HTTP_RETARGET_CATALOG_BYTES     (4 * 1024 * 1024)
#define NGX_HTTP_RETARGET_CATALOG_IDLE      600000   /* ms unused */
#define NGX_HTTP_RETARGET_CATALOG_CURRENCY  3


typedef struct {
    ngx_str_node_t                  sn;        /* sn.str: the sku */
    ngx_queue_t                     lru;       /* most recent first */
    ngx_msec_t                      used;
    size_t                          size;      /* the whole allocation */
    ngx_str_t                       name;
    ngx_str_t                       price;
    ngx_str_t                       image;
    ngx_str_t                       url;
    ngx_str_t                       currency;
    ngx_str_t                       in_stock;  /* as written, for same() */
    int64_t                         cents;
    unsigned                        exists:1;  /* the hash has a field */
    unsigned                        out:1;     /* in_stock "0" */
    unsigned                        recheck:1; /* to be read again */
} ngx_http_retarget_product_t;


typedef struct {
    ngx_http_retarget_main_conf_t  *rmcf;
    ngx_rbtree_t                    tree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     lru;
    ngx_uint_t                      n;
    size_t                          bytes;
    ngx_str_t                       key;       /* "<prefix>p:" */
    ngx_event_t                     refresh;
    ngx_uint_t                      gen;       /* changes told, flushes */
    ngx_uint_t                      asked;     /* refresh reads in flight */
    ngx_uint_t                      recheck;   /* products to read again */
    ngx_uint_t                      tracked;
    ngx_uint_t                      invalidations;
    ngx_uint_t                      warned;
} ngx_http_retarget_catalog_t;


/* one product asked about, by a page or by the refresh */
typedef struct {
    ngx_str_t                       sku;       /* copied after this */
    ngx_uint_t                      gen;
    ngx_uint_t                      refresh;
} ngx_http_retarget_catalog_read_t;


/* the new products of one page */
typedef struct {
    ngx_http_retarget_catalog_done_pt  done;
    void                              *data;
    ngx_str_t                         *skus;
    ngx_uint_t                         n;
    ngx_uint_t                         replies;
    ngx_uint_t                         gen;
} ngx_http_retarget_catalog_page_t;


static void ngx_http_retarget_catalog_refresh(ngx_event_t *ev);
static void ngx_http_retarget_catalog_soon(ngx_http_retarget_catalog_t *cat);
static ngx_int_t ngx_http_retarget_catalog_hmget(
    ngx_http_retarget_catalog_t *cat, ngx_str_t *sku,
    ngx_http_retarget_cmd_t *cmd, u_char *key);
static void ngx_http_retarget_catalog_refresh_reply(void *data,
    redisReply *reply);
static ngx_int_t ngx_http_retarget_catalog_add_new(
    ngx_http_retarget_catalog_t *cat, ngx_array_t *items, ngx_array_t *skus);
static void ngx_http_retarget_catalog_page_reply(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_retarget_catalog_page_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_retarget_catalog_learn(ngx_http_retarget_catalog_t *cat,
    ngx_str_t *sku, redisReply *reply, ngx_uint_t crossed,
    ngx_uint_t refresh);
static ngx_http_retarget_product_t *ngx_http_retarget_catalog_find(
    ngx_http_retarget_catalog_t *cat, ngx_str_t *sku);
static void ngx_http_retarget_catalog_forget(ngx_http_retarget_catalog_t *cat,
    ngx_http_retarget_product_t *p);
static void ngx_http_retarget_catalog_trim(ngx_http_retarget_catalog_t *cat,
    ngx_uint_t max, size_t bytes);
static ngx_int_t ngx_http_retarget_catalog_copy(ngx_pool_t *pool,
    ngx_str_t *to, ngx_str_t *from);


static ngx_http_retarget_catalog_t  *ngx_http_retarget_catalog;


ngx_int_t
ngx_http_retarget_catalog_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_str_t                     empty;
    ngx_http_retarget_catalog_t  *cat;

    /* debug logging of timers reads an event's data as a connection */

    cat = ngx_pcalloc(cycle->pool,
                      ngx_max(sizeof(ngx_http_retarget_catalog_t),
                              sizeof(ngx_connection_t)));
    if (cat == NULL) {
        return NGX_ERROR;
    }

    cat->rmcf = rmcf;

    ngx_rbtree_init(&cat->tree, &cat->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&cat->lru);

    empty.len = 0;
    empty.data = NULL;

    cat->key.len = ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                             ngx_http_retarget_key_product,
                                             &empty);
    cat->key.data = ngx_pnalloc(cycle->pool, cat->key.len);
    if (cat->key.data == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_retarget_key_put(cat->key.data, &rmcf->redis.prefix,
                                     ngx_http_retarget_key_product, &empty);

    cat->refresh.handler = ngx_http_retarget_catalog_refresh;
    cat->refresh.data = cat;
    cat->refresh.log = cycle->log;
    cat->refresh.cancelable = 1;

    ngx_add_timer(&cat->refresh, NGX_HTTP_RETARGET_CATALOG_INTERVAL);

    ngx_http_retarget_catalog = cat;

    return NGX_OK;
}


/*
 * Once a second: the idle products are forgotten; polled, every known
 * product is read again; tracked, only those whose answer crossed a
 * change.
 */

static void
ngx_http_retarget_catalog_refresh(ngx_event_t *ev)
{
    u_char                        *key;
    ngx_queue_t                   *q;
    ngx_uint_t                     n, all;
    ngx_http_retarget_cmd_t        cmd;
    ngx_http_retarget_redis_t     *rds;
    ngx_http_retarget_product_t   *p;
    ngx_http_retarget_catalog_t   *cat;

    cat = ev->data;

    if (ngx_exiting) {
        return;
    }

    if (!ev->timer_set) {
        ngx_add_timer(ev, NGX_HTTP_RETARGET_CATALOG_INTERVAL);
    }

    while (!ngx_queue_empty(&cat->lru)) {
        q = ngx_queue_last(&cat->lru);
        p = ngx_queue_data(q, ngx_http_retarget_product_t, lru);

        if (ngx_current_msec - p->used <= NGX_HTTP_RETARGET_CATALOG_IDLE) {
            break;
        }

        ngx_http_retarget_catalog_forget(cat, p);
    }

    rds = ngx_http_retarget_redis_get();
    all = !cat->tracked;

    if (cat->n == 0 || cat->asked || (!all && cat->recheck == 0)
        || ngx_http_retarget_redis_state(rds, NULL)
           != ngx_http_retarget_link_up)
    {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "retarget catalog: %ui products, %ui to read again, "
                       "not read%s", cat->n, all ? cat->n : cat->recheck,
                       cat->asked ? ": a refresh is in flight" : "");
        return;
    }

    key = ngx_alloc(cat->key.len + NGX_HTTP_RETARGET_SKU_MAX, ev->log);
    if (key == NULL) {
        return;
    }

    n = 0;

    for (q = ngx_queue_head(&cat->lru);
         q != ngx_queue_sentinel(&cat->lru);
         q = ngx_queue_next(q))
    {
        p = ngx_queue_data(q, ngx_http_retarget_product_t, lru);

        if (!all && !p->recheck) {
            continue;
        }

        if (ngx_http_retarget_catalog_hmget(cat, &p->sn.str, &cmd, key)
            != NGX_OK)
        {
            break;
        }

        n++;
    }

    ngx_free(key);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "retarget catalog: %ui of %ui products read again (%s)",
                   n, cat->n, all ? "polled" : "crossed a change");
}


/* the refresh runs as soon as the event loop comes back to the timers */

static void
ngx_http_retarget_catalog_soon(ngx_http_retarget_catalog_t *cat)
{
    if (cat->asked || ngx_exiting) {
        /* the last reply of the refresh in flight calls this again */
        return;
    }

    if (cat->refresh.timer_set) {
        ngx_del_timer(&cat->refresh);
    }

    ngx_add_timer(&cat->refresh, 1);
}


/* the refresh's read of one product: "HMGET <prefix>p:SKU fields..." */

static ngx_int_t
ngx_http_retarget_catalog_hmget(ngx_http_retarget_catalog_t *cat,
    ngx_str_t *sku, ngx_http_retarget_cmd_t *cmd, u_char *key)
{
    ngx_int_t                         rc;
    ngx_uint_t                        k;
    ngx_http_retarget_catalog_read_t  *ask;

    ask = ngx_alloc(sizeof(ngx_http_retarget_catalog_read_t) + sku->len,
                    ngx_cycle->log);
    if (ask == NULL) {
        return NGX_ERROR;
    }

    ask->sku.data = (u_char *) (ask + 1);
    ask->sku.len = sku->len;
    ngx_memcpy(ask->sku.data, sku->data, sku->len);
    ask->gen = cat->gen;
    ask->refresh = 1;

    ngx_http_retarget_cmd_init(cmd, "HMGET");
    ngx_http_retarget_arg(cmd, key,
                          ngx_cpymem(ngx_cpymem(key, cat->key.data,
                                                cat->key.len),
                                     sku->data, sku->len)
                          - key);

    for (k = 0; k < NGX_HTTP_RETARGET_PRODUCT_FIELDS; k++) {
        ngx_http_retarget_arg_str(cmd, &ngx_http_retarget_product_fields[k]);
    }

    rc = ngx_http_retarget_redis_read(ngx_http_retarget_redis_get(),
                                      cmd->argc, cmd->argv, cmd->len,
                                      ngx_http_retarget_catalog_refresh_reply,
                                      ask);
    if (rc != NGX_OK) {
        ngx_free(ask);
        return rc;
    }

    cat->asked++;

    return NGX_OK;
}


static void
ngx_http_retarget_catalog_refresh_reply(void *data, redisReply *reply)
{
    ngx_http_retarget_catalog_read_t *ask = data;

    ngx_http_retarget_catalog_t  *cat;
    ngx_http_retarget_product_t  *p;

    cat = ngx_http_retarget_catalog;
    cat->asked--;

    p = ngx_http_retarget_catalog_find(cat, &ask->sku);

    /* a product forgotten since the question stays forgotten */

    if (p != NULL && reply != NULL) {
        ngx_http_retarget_catalog_learn(cat, &ask->sku, reply,
                                        ask->gen != cat->gen, 1);
    }

    ngx_free(ask);

    if (cat->asked == 0 && cat->recheck) {
        ngx_http_retarget_catalog_soon(cat);
    }
}


/*
 * Before a page's decision: asks for the products of the visitor's state
 * the worker does not know yet.  NGX_OK: asked, "done" will be called
 * (unless the request goes away first); NGX_DECLINED: nothing to ask, or
 * nothing could be asked (the page shows its own copies).
 */

ngx_int_t
ngx_http_retarget_catalog_ask(ngx_http_request_t *r,
    ngx_http_retarget_state_t *state, ngx_http_retarget_catalog_done_pt done,
    void *data)
{
    ngx_int_t                          rc;
    ngx_uint_t                         i, k;
    ngx_str_t                         *sku;
    ngx_array_t                        skus;
    ngx_http_retarget_cmd_t           *cmds;
    ngx_http_retarget_catalog_t       *cat;
    ngx_http_retarget_catalog_page_t  *pg;

    cat = ngx_http_retarget_catalog;

    if (cat == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_array_init(&skus, r->pool, 8, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_catalog_add_new(cat, &state->cart, &skus) != NGX_OK
        || ngx_http_retarget_catalog_add_new(cat, &state->viewed, &skus)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (skus.nelts == 0) {
        return NGX_DECLINED;
    }

    pg = ngx_palloc(r->pool, sizeof(ngx_http_retarget_catalog_page_t));
    cmds = ngx_palloc(r->pool, skus.nelts * sizeof(ngx_http_retarget_cmd_t));

    if (pg == NULL || cmds == NULL) {
        return NGX_ERROR;
    }

    pg->done = done;
    pg->data = data;
    pg->skus = skus.elts;
    pg->n = skus.nelts;
    pg->replies = 0;
    pg->gen = cat->gen;

    sku = skus.elts;

    for (i = 0; i < skus.nelts; i++) {
        ngx_http_retarget_cmd_init(&cmds[i], "HMGET");

        if (ngx_http_retarget_arg_key(r->pool, cat->rmcf, &cmds[i],
                                      ngx_http_retarget_key_product, &sku[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (k = 0; k < NGX_HTTP_RETARGET_PRODUCT_FIELDS; k++) {
            ngx_http_retarget_arg_str(&cmds[i],
                                      &ngx_http_retarget_product_fields[k]);
        }
    }

    rc = ngx_http_retarget_wait(r, skus.nelts, cmds,
                                ngx_http_retarget_catalog_page_reply,
                                ngx_http_retarget_catalog_page_done, pg);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget catalog: %ui new products of the page %s",
                   skus.nelts, rc == NGX_OK ? "asked for"
                                            : "not asked for, own copies");

    return rc;
}


/* appends the skus the worker does not know (once); the rest are used */

static ngx_int_t
ngx_http_retarget_catalog_add_new(ngx_http_retarget_catalog_t *cat,
    ngx_array_t *items, ngx_array_t *skus)
{
    ngx_uint_t                    i, j;
    ngx_str_t                    *sku;
    ngx_http_retarget_item_t     *it;
    ngx_http_retarget_product_t  *p;

    it = items->elts;

    for (i = 0; i < items->nelts; i++) {
        p = ngx_http_retarget_catalog_find(cat, &it[i].sku);

        if (p != NULL) {
            p->used = ngx_current_msec;
            ngx_queue_remove(&p->lru);
            ngx_queue_insert_head(&cat->lru, &p->lru);
            continue;
        }

        sku = skus->elts;

        for (j = 0; j < skus->nelts; j++) {
            if (sku[j].len == it[i].sku.len
                && ngx_memcmp(sku[j].data, it[i].sku.data, sku[j].len) == 0)
            {
                break;
            }
        }

        if (j < skus->nelts) {
            /* in the cart and viewed: asked once */
            continue;
        }

        sku = ngx_array_push(skus);
        if (sku == NULL) {
            return NGX_ERROR;
        }

        *sku = it[i].sku;
    }

    return NGX_OK;
}


static void
ngx_http_retarget_catalog_page_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_catalog_page_t *pg = data;

    ngx_http_retarget_catalog_t  *cat;

    cat = ngx_http_retarget_catalog;

    if (pg->replies >= pg->n) {
        return;
    }

    ngx_http_retarget_catalog_learn(cat, &pg->skus[pg->replies++], reply,
                                    pg->gen != cat->gen, 0);

    if (pg->gen != cat->gen && cat->recheck) {
        ngx_http_retarget_catalog_soon(cat);
    }
}


static void
ngx_http_retarget_catalog_page_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_catalog_page_t *pg = data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget catalog: the page's products %s",
                   rc == NGX_OK ? "answered"
                   : rc == NGX_AGAIN ? "timed out, own copies"
                                     : "failed, own copies");

    pg->done(r, pg->data);
}


/*
 * The answer of "HMGET <prefix>p:SKU name price image url currency
 * in_stock": what of it is within the bounds of a stored value is kept.
 * Anyone may write Redis: a value beyond them, or not printable, is left
 * out, and a reply of another shape (an error, the key of another type)
 * makes a product with nothing to say, asked again by the next refresh
 * when polled.  "crossed": a change was told while it was asked.  What
 * the refresh reads again keeps its place and its last use by a page.
 */

static void
ngx_http_retarget_catalog_learn(ngx_http_retarget_catalog_t *cat,
    ngx_str_t *sku, redisReply *reply, ngx_uint_t crossed,
    ngx_uint_t refresh)
{
    u_char                       *d;
    size_t                        size, max[NGX_HTTP_RETARGET_PRODUCT_FIELDS];
    ngx_str_t                     v[NGX_HTTP_RETARGET_PRODUCT_FIELDS];
    ngx_str_t                    *to[NGX_HTTP_RETARGET_PRODUCT_FIELDS];
    ngx_uint_t                    k, exists, spaces;
    redisReply                   *e;
    ngx_http_retarget_product_t  *p, *old, tmp;
    u_char                        safe[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];

    if (sku->len == 0 || sku->len > NGX_HTTP_RETARGET_SKU_MAX) {
        return;
    }

    ngx_memzero(v, sizeof(v));
    exists = 0;

    max[0] = NGX_HTTP_RETARGET_NAME_MAX;                    /* name */
    max[1] = 13;                                            /* price */
    max[2] = NGX_HTTP_RETARGET_URL_MAX;                     /* image */
    max[3] = NGX_HTTP_RETARGET_URL_MAX;                     /* url */
    max[4] = NGX_HTTP_RETARGET_CATALOG_CURRENCY;            /* currency */
    max[5] = 8;                                             /* in_stock */

    if (reply->type == REDIS_REPLY_ARRAY
        && reply->elements == NGX_HTTP_RETARGET_PRODUCT_FIELDS)
    {
        for (k = 0; k < NGX_HTTP_RETARGET_PRODUCT_FIELDS; k++) {
            e = reply->element[k];

            if (e->type != REDIS_REPLY_STRING) {
                continue;
            }

            exists = 1;

            v[k].data = (u_char *) e->str;
            v[k].len = e->len;
            spaces = (k == 0);

            if (ngx_http_retarget_printable(&v[k], max[k], spaces)
                != NGX_OK)
            {
                v[k].len = 0;
            }
        }

    } else if (reply->type == REDIS_REPLY_ERROR && !cat->warned) {
        cat->warned = 1;
        (void) ngx_http_retarget_log_value_buf(safe, (u_char *) reply->str,
                                               reply->len);
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "retarget: reading the catalogue (HMGET of a p: key) "
                      "failed (\"%s\"): reminders show the products as the "
                      "visitor met them", safe);
    }

    ngx_memzero(&tmp, sizeof(ngx_http_retarget_product_t));
    tmp.cents = -1;

    if (v[1].len && ngx_http_retarget_parse_amount(&v[1], &tmp.cents)
                    != NGX_OK)
    {
        v[1].len = 0;
        tmp.cents = -1;
    }

    for (k = 0; k < v[4].len; k++) {
        if (!((v[4].data[k] | 0x20) >= 'a' && (v[4].data[k] | 0x20) <= 'z')) {
            v[4].len = 0;
            break;
        }
    }

    if (v[4].len != 0 && v[4].len != NGX_HTTP_RETARGET_CATALOG_CURRENCY) {
        v[4].len = 0;
    }

    size = sizeof(ngx_http_retarget_product_t) + sku->len;

    for (k = 0; k < NGX_HTTP_RETARGET_PRODUCT_FIELDS; k++) {
        size += v[k].len;
    }

    old = ngx_http_retarget_catalog_find(cat, sku);

    if (old == NULL) {
        ngx_http_retarget_catalog_trim(cat,
                                   (cat->tracked
                                    ? NGX_HTTP_RETARGET_CATALOG_MAX
                                    : NGX_HTTP_RETARGET_CATALOG_POLL_MAX) - 1,
                                   NGX_HTTP_RETARGET_CATALOG_BYTES - size);
    }

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        if (old != NULL) {
            ngx_http_retarget_catalog_forget(cat, old);
        }

        return;
    }

    *p = tmp;
    p->size = size;
    p->exists = exists;
    p->out = (v[5].len == 1 && v[5].data[0] == '0');

    to[0] = &p->name;
    to[1] = &p->price;
    to[2] = &p->image;
    to[3] = &p->url;
    to[4] = &p->currency;
    to[5] = &p->in_stock;

    d = (u_char *) (p + 1);

    p->sn.str.data = d;
    p->sn.str.len = sku->len;
    d = ngx_cpymem(d, sku->data, sku->len);

    for (k = 0; k < NGX_HTTP_RETARGET_PRODUCT_FIELDS; k++) {
        to[k]->data = d;
        to[k]->len = v[k].len;
        d = ngx_cpymem(d, v[k].data, v[k].len);
    }

    for (k = 0; k < p->currency.len; k++) {
        p->currency.data[k] = ngx_toupper(p->currency.data[k]);
    }

    if (old != NULL && refresh) {
        p->used = old->used;
        ngx_queue_insert_after(&old->lru, &p->lru);

    } else {
        p->used = ngx_current_msec;
        ngx_queue_insert_head(&cat->lru, &p->lru);
    }

    if (old != NULL) {
        ngx_http_retarget_catalog_forget(cat, old);
    }

    p->sn.node.key = ngx_crc32_short(p->sn.str.data, p->sn.str.len);
    ngx_rbtree_insert(&cat->tree, &p->sn.node);
    cat->n++;
    cat->bytes += size;

    if (crossed) {
        p->recheck = 1;
        cat->recheck++;
    }

    ngx_log_debug7(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget catalog: \"%V\" %s: name \"%V\", price \"%V\", "
                   "currency \"%V\", %s%s", &p->sn.str,
                   exists ? "read" : "has no hash", &p->name, &p->price,
                   &p->currency, p->out ? "out of stock" : "in stock",
                   crossed ? ", crossed a change: read again" : "");
}


static ngx_http_retarget_product_t *
ngx_http_retarget_catalog_find(ngx_http_retarget_catalog_t *cat,
    ngx_str_t *sku)
{
    ngx_str_node_t  *sn;

    if (cat == NULL || cat->n == 0) {
        return NULL;
    }

    sn = ngx_str_rbtree_lookup(&cat->tree, sku,
                               ngx_crc32_short(sku->data, sku->len));

    return (ngx_http_retarget_product_t *) sn;
}


static void
ngx_http_retarget_catalog_forget(ngx_http_retarget_catalog_t *cat,
    ngx_http_retarget_product_t *p)
{
    ngx_rbtree_delete(&cat->tree, &p->sn.node);
    ngx_queue_remove(&p->lru);

    cat->n--;
    cat->bytes -= p->size;

    if (p->recheck) {
        cat->recheck--;
    }

    ngx_free(p);
}


/* the least recently used are forgotten down to max products and bytes */

static void
ngx_http_retarget_catalog_trim(ngx_http_retarget_catalog_t *cat,
    ngx_uint_t max, size_t bytes)
{
    ngx_queue_t                  *q;
    ngx_http_retarget_product_t  *p;

    while ((cat->n > max || cat->bytes > bytes)
           && !ngx_queue_empty(&cat->lru))
    {
        q = ngx_queue_last(&cat->lru);
        p = ngx_queue_data(q, ngx_http_retarget_product_t, lru);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget catalog: %ui products, %uz bytes: the "
                       "least recently used is forgotten", cat->n,
                       cat->bytes);

        ngx_http_retarget_catalog_forget(cat, p);
    }
}


/*
 * Just after the page's read: the cart lines and viewed products take
 * the catalogue's name, price, image, url and currency where it has them
 * (copied into the request's pool: the cache may change before the page
 * is done).  The quantities, times and line ids stay the visitor's; a
 * product the catalogue says is out of stock is left out of the reminder
 * by ngx_http_retarget_out_of_stock().
 */

ngx_int_t
ngx_http_retarget_catalog_merge(ngx_pool_t *pool,
    ngx_http_retarget_state_t *state)
{
    ngx_uint_t                    i, j;
    ngx_array_t                  *items[2];
    ngx_http_retarget_item_t     *it;
    ngx_http_retarget_product_t  *p;

    items[0] = &state->cart;
    items[1] = &state->viewed;

    for (j = 0; j < 2; j++) {
        it = items[j]->elts;

        for (i = 0; i < items[j]->nelts; i++) {
            p = ngx_http_retarget_catalog_find(ngx_http_retarget_catalog,
                                               &it[i].sku);

            if (p == NULL || !p->exists) {
                continue;
            }

            if (ngx_http_retarget_catalog_copy(pool, &it[i].name, &p->name)
                != NGX_OK
                || ngx_http_retarget_catalog_copy(pool, &it[i].image,
                                                  &p->image)
                   != NGX_OK
                || ngx_http_retarget_catalog_copy(pool, &it[i].url, &p->url)
                   != NGX_OK
                || ngx_http_retarget_catalog_copy(pool, &it[i].currency,
                                                  &p->currency)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (p->price.len) {
                if (ngx_http_retarget_catalog_copy(pool, &it[i].price,
                                                   &p->price)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                it[i].cents = p->cents;
            }

            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                           "retarget catalog: %s \"%V\" as the catalogue "
                           "has it, price \"%V\"", j ? "viewed" : "cart line",
                           &it[i].sku, &it[i].price);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_catalog_copy(ngx_pool_t *pool, ngx_str_t *to,
    ngx_str_t *from)
{
    if (from->len == 0) {
        return NGX_OK;
    }

    to->data = ngx_pnalloc(pool, from->len);
    if (to->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(to->data, from->data, from->len);
    to->len = from->len;

    return NGX_OK;
}


/*
 * Whether a product is left out of reminders: in_stock "0" in its hash,
 * or its sku in the out-of-stock set (ngx_http_retarget_stock.c).
 */

ngx_uint_t
ngx_http_retarget_out_of_stock(ngx_str_t *sku)
{
    ngx_http_retarget_product_t  *p;

    p = ngx_http_retarget_catalog_find(ngx_http_retarget_catalog, sku);

    if (p != NULL && p->out) {
        return 1;
    }

    return ngx_http_retarget_stock_listed(sku);
}


/*
 * Whether the worker knows the product with these values already: a
 * product page's catalog event then writes nothing (each write would
 * tell every worker to forget the product, and costs Redis a write).
 * Only a product read since the last change counts.
 */

ngx_uint_t
ngx_http_retarget_catalog_same(ngx_http_retarget_item_t *it,
    ngx_str_t *currency, ngx_str_t *in_stock)
{
    ngx_http_retarget_product_t  *p;

    p = ngx_http_retarget_catalog_find(ngx_http_retarget_catalog, &it->sku);

    if (p == NULL || !p->exists || p->recheck
        || !ngx_http_retarget_catalog->tracked)
    {
        return 0;
    }

#define ngx_http_retarget_same(a, b)                                          \
    ((a)->len == 0                                                            \
     || ((a)->len == (b)->len && ngx_memcmp((a)->data, (b)->data, (a)->len)   \
                                 == 0))

    return ngx_http_retarget_same(&it->name, &p->name)
           && ngx_http_retarget_same(&it->price, &p->price)
           && ngx_http_retarget_same(&it->image, &p->image)
           && ngx_http_retarget_same(&it->url, &p->url)
           && ngx_http_retarget_same(currency, &p->currency)
           && ngx_http_retarget_same(in_stock, &p->in_stock);

#undef ngx_http_retarget_same
}


/* Redis tells the worker of changes (1), or no longer does (0) */

void
ngx_http_retarget_catalog_tracked(ngx_uint_t on)
{
    ngx_http_retarget_catalog_t  *cat;

    cat = ngx_http_retarget_catalog;

    if (cat == NULL || cat->tracked == on) {
        return;
    }

    cat->tracked = on;

    /* what was read before was never tracked, or is no longer */

    ngx_http_retarget_catalog_flush(on ? "tracking on" : "tracking off");

    ngx_http_retarget_stock_tracked(on);
}


/* a key changed: "<prefix>p:SKU", "<prefix>out_of_stock"; NULL: all */

void
ngx_http_retarget_catalog_invalidate(ngx_str_t *key)
{
    ngx_str_t                     sku;
    ngx_http_retarget_catalog_t  *cat;
    ngx_http_retarget_product_t  *p;

    cat = ngx_http_retarget_catalog;

    if (cat == NULL) {
        return;
    }

    cat->invalidations++;

    if (key == NULL) {
        ngx_http_retarget_catalog_flush("every key changed");
        ngx_http_retarget_stock_changed();
        return;
    }

    cat->gen++;

    if (key->len > cat->key.len
        && ngx_memcmp(key->data, cat->key.data, cat->key.len) == 0)
    {
        sku.data = key->data + cat->key.len;
        sku.len = key->len - cat->key.len;

        p = ngx_http_retarget_catalog_find(cat, &sku);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget catalog: \"%V\" changed%s", &sku,
                       p ? ", forgotten" : ", not known");

        if (p != NULL) {
            ngx_http_retarget_catalog_forget(cat, p);
        }

        return;
    }

    /* the out-of-stock set, or another key under the prefixes */

    ngx_http_retarget_stock_changed();
}


void
ngx_http_retarget_catalog_flush(const char *why)
{
    ngx_queue_t                  *q;
    ngx_http_retarget_catalog_t  *cat;
    ngx_http_retarget_product_t  *p;

    cat = ngx_http_retarget_catalog;

    if (cat == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget catalog: %ui products forgotten: %s",
                   cat->n, why);

    cat->gen++;

    while (!ngx_queue_empty(&cat->lru)) {
        q = ngx_queue_head(&cat->lru);
        p = ngx_queue_data(q, ngx_http_retarget_product_t, lru);
        ngx_http_retarget_catalog_forget(cat, p);
    }
}


void
ngx_http_retarget_catalog_stats(ngx_uint_t *products, size_t *bytes,
    ngx_uint_t *tracked, ngx_uint_t *invalidations)
{
    ngx_http_retarget_catalog_t  *cat;

    cat = ngx_http_retarget_catalog;

    *products = cat ? cat->n : 0;
    *bytes = cat ? cat->bytes : 0;
    *tracked = cat ? cat->tracked : 0;
    *invalidations = cat ? cat->invalidations : 0;
}
