
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Out-of-stock products are left out of reminders.  The shop keeps their
 * skus in a set (ngx_http_retarget_store.h; SADD when an item sells out,
 * SREM when it is back).
 *
 * The set may be large (a catalogue's worth of retired products), so no
 * worker ever reads it whole: what a worker does costs the same with 10
 * members or 10 million.  Each worker remembers, for the skus its own
 * pages have shown (at most NGX_HTTP_RETARGET_STOCK_MAX, the least
 * recently used one forgotten first, and any unused for
 * NGX_HTTP_RETARGET_STOCK_IDLE), whether each is in the set:
 *
 *   - a page's read (HGETALL of the visitor's hash) is followed, only
 *     when the hash names a sku the worker does not know yet, by one
 *     pipelined round of "SMISMEMBER <set> sku..." for those skus, before
 *     the decision (the page then waits up to retarget_redis_timeout more
 *     at its injection point; the skus of a page are at most the 50 cart
 *     lines and 8 viewed products ngx_http_retarget_state.c keeps);
 *   - once a second the worker asks again about every sku it knows,
 *     SMISMEMBER in chunks of NGX_HTTP_RETARGET_STOCK_CHUNK, so a product
 *     is shown at most about a second after it sold out, and is shown
 *     again about a second after it is back.
 *
 * When Redis tells the worker of changes to the set (tracked, see
 * ngx_http_retarget_catalog.c) the second is done only after a change,
 * and once more for an answer that crossed a change on its way.
 *
 * Redis spends O(skus asked) on either, never O(size of the set).  A sku
 * whose answer has not come (Redis away, slow, or older than 6.2, which
 * has no SMISMEMBER) counts as in stock, as every sku did before the
 * first read of the set.
 */


#include "ngx_http_retarget_stock.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_wait.h"


#define NGX_HTTP_RETARGET_STOCK_INTERVAL  1000
#define NGX_HTTP_RETARGET_STOCK_MAX       4096      /* skus known */
#define NGX_HTTP_RETARGET_STOCK_IDLE      600000    /* ms unused: forgotten */
#define NGX_HTTP_RETARGET_STOCK_CHUNK     256       /* skus a refresh asks */
#define NGX_HTTP_RETARGET_STOCK_PAGE_CHUNK  (NGX_HTTP_RETARGET_MAX_ARGS - 2)


typedef struct {
    ngx_str_t                       sku;       /* its own allocation */
    ngx_msec_t                      used;
    ngx_uint_t                      out;       /* in the set */
} ngx_http_retarget_stock_sku_t;


typedef struct {
    ngx_str_t                       key;       /* the set */
    ngx_event_t                     refresh;
    ngx_uint_t                      asked;     /* refresh chunks in flight */
    ngx_uint_t                      warned;    /* SMISMEMBER failed */
    ngx_uint_t                      tracked;   /* told of changes */
    ngx_uint_t                      stale;     /* to be asked again */
    ngx_uint_t                      gen;       /* changes told */
    ngx_http_retarget_stock_sku_t  *skus;      /* sorted by sku */
    ngx_uint_t                      nskus;
} ngx_http_retarget_stock_t;


/* the skus of one refresh chunk, the reply's order */
typedef struct {
    ngx_http_retarget_stock_t      *st;
    ngx_uint_t                      gen;
    ngx_uint_t                      n;
    ngx_str_t                      *skus;
} ngx_http_retarget_stock_chunk_t;


/* the new skus of one page being asked about */
typedef struct {
    ngx_http_retarget_stock_done_pt done;
    void                           *data;
    ngx_str_t                      *skus;
    ngx_uint_t                      n;
    ngx_uint_t                      replies;   /* seen so far */
    ngx_uint_t                      gen;
} ngx_http_retarget_stock_ask_t;


static void ngx_http_retarget_stock_refresh(ngx_event_t *ev);
static void ngx_http_retarget_stock_soon(ngx_http_retarget_stock_t *st);
static ngx_int_t ngx_http_retarget_stock_send_chunk(
    ngx_http_retarget_stock_t *st, ngx_http_retarget_redis_t *rds,
    ngx_uint_t from, ngx_uint_t n);
static void ngx_http_retarget_stock_chunk_reply(void *data,
    redisReply *reply);
static ngx_uint_t ngx_http_retarget_stock_answers(
    ngx_http_retarget_stock_t *st, redisReply *reply, ngx_uint_t n);
static void ngx_http_retarget_stock_ask_reply(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_retarget_stock_ask_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_retarget_stock_add_new(ngx_array_t *items,
    ngx_array_t *skus);
static ngx_http_retarget_stock_sku_t *ngx_http_retarget_stock_find(
    ngx_str_t *sku, ngx_uint_t *at);
static void ngx_http_retarget_stock_learn(ngx_str_t *sku, ngx_uint_t out);
static void ngx_http_retarget_stock_forget(ngx_http_retarget_stock_t *st,
    ngx_uint_t i);
static ngx_int_t ngx_http_retarget_stock_cmp(ngx_str_t *a, ngx_str_t *b);


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

    st->skus = ngx_palloc(cycle->pool, NGX_HTTP_RETARGET_STOCK_MAX
                                       * sizeof(ngx_http_retarget_stock_sku_t));
    if (st->skus == NULL) {
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

    ngx_add_timer(&st->refresh, NGX_HTTP_RETARGET_STOCK_INTERVAL);

    return NGX_OK;
}


static void
ngx_http_retarget_stock_refresh(ngx_event_t *ev)
{
    ngx_uint_t                  i, n;
    ngx_http_retarget_redis_t  *rds;
    ngx_http_retarget_stock_t  *st;

    st = ev->data;

    if (ngx_exiting) {
        return;
    }

    if (!ev->timer_set) {
        ngx_add_timer(ev, NGX_HTTP_RETARGET_STOCK_INTERVAL);
    }

    /* the skus no page has shown for a while are forgotten */

    for (i = st->nskus; i > 0; i--) {
        if (ngx_current_msec - st->skus[i - 1].used
            > NGX_HTTP_RETARGET_STOCK_IDLE)
        {
            ngx_http_retarget_stock_forget(st, i - 1);
        }
    }

    if (st->tracked && !st->stale) {
        /* Redis tells of changes: nothing changed */
        return;
    }

    if (st->nskus == 0) {
        /* nothing to ask again */
        st->stale = 0;
        return;
    }

    rds = ngx_http_retarget_redis_get();

    if (st->nskus == 0 || st->asked
        || ngx_http_retarget_redis_state(rds, NULL)
           != ngx_http_retarget_link_up)
    {
        /* what was read last stays in force while Redis is away */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "retarget stock: %ui skus not asked about, %s",
                       st->nskus,
                       st->nskus == 0 ? "none known"
                       : st->asked ? "a refresh is in flight"
                                   : "link not up");
        return;
    }

    st->stale = 0;

    for (i = 0; i < st->nskus; i += n) {
        n = ngx_min(st->nskus - i, NGX_HTTP_RETARGET_STOCK_CHUNK);

        if (ngx_http_retarget_stock_send_chunk(st, rds, i, n) != NGX_OK) {
            break;
        }

        st->asked++;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "retarget stock: asked about %ui skus in %ui commands",
                   st->nskus, st->asked);
}


/* "SMISMEMBER <set> sku..." for skus [from, from + n) */

static ngx_int_t
ngx_http_retarget_stock_send_chunk(ngx_http_retarget_stock_t *st,
    ngx_http_retarget_redis_t *rds, ngx_uint_t from, ngx_uint_t n)
{
    u_char                           *p;
    size_t                            size, *lens;
    ngx_int_t                         rc;
    ngx_uint_t                        i;
    const char                      **argv;
    ngx_http_retarget_stock_sku_t    *sk;
    ngx_http_retarget_stock_chunk_t  *ch;

    size = sizeof(ngx_http_retarget_stock_chunk_t) + n * sizeof(ngx_str_t);

    for (i = 0; i < n; i++) {
        size += st->skus[from + i].sku.len;
    }

    ch = ngx_alloc(size, ngx_cycle->log);
    argv = ngx_alloc((n + 2) * sizeof(char *), ngx_cycle->log);
    lens = ngx_alloc((n + 2) * sizeof(size_t), ngx_cycle->log);

    if (ch == NULL || argv == NULL || lens == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    ch->st = st;
    ch->gen = st->gen;
    ch->n = n;
    ch->skus = (ngx_str_t *) (ch + 1);
    p = (u_char *) (ch->skus + n);

    argv[0] = "SMISMEMBER";
    lens[0] = sizeof("SMISMEMBER") - 1;
    argv[1] = (const char *) st->key.data;
    lens[1] = st->key.len;

    for (i = 0; i < n; i++) {
        sk = &st->skus[from + i];

        ch->skus[i].data = p;
        ch->skus[i].len = sk->sku.len;
        p = ngx_cpymem(p, sk->sku.data, sk->sku.len);

        argv[i + 2] = (const char *) ch->skus[i].data;
        lens[i + 2] = ch->skus[i].len;
    }

    /* hiredis formats the command here: argv need not outlive the call */

    rc = ngx_http_retarget_redis_read(rds, (int) (n + 2), argv, lens,
                                      ngx_http_retarget_stock_chunk_reply,
                                      ch);

    if (rc == NGX_OK) {
        ch = NULL;
    }

done:

    ngx_free(argv);
    ngx_free(lens);
    ngx_free(ch);

    return rc;
}


static void
ngx_http_retarget_stock_chunk_reply(void *data, redisReply *reply)
{
    ngx_http_retarget_stock_chunk_t *ch = data;

    ngx_uint_t                      i, out;
    ngx_http_retarget_stock_t      *st;
    ngx_http_retarget_stock_sku_t  *sk;

    st = ch->st;
    st->asked--;

    if (ngx_http_retarget_stock_answers(st, reply, ch->n)) {
        out = 0;

        for (i = 0; i < ch->n; i++) {
            /* a sku forgotten since the question stays forgotten */
            sk = ngx_http_retarget_stock_find(&ch->skus[i], NULL);

            if (sk != NULL) {
                sk->out = reply->element[i]->integer != 0;
                out += sk->out;
            }
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget stock: %ui of %ui skus out of stock",
                       out, ch->n);
    }

    if (ch->gen != st->gen) {
        /* the set changed while this was asked: it may be older */
        st->stale = 1;
    }

    ngx_free(ch);

    if (st->asked == 0 && st->stale && st->tracked) {
        ngx_http_retarget_stock_soon(st);
    }
}


/* the refresh runs as soon as the event loop comes back to the timers */

static void
ngx_http_retarget_stock_soon(ngx_http_retarget_stock_t *st)
{
    if (st->asked || ngx_exiting) {
        /* the last answer of the refresh in flight calls this again */
        return;
    }

    if (st->refresh.timer_set) {
        ngx_del_timer(&st->refresh);
    }

    ngx_add_timer(&st->refresh, 1);
}


/* Redis tells the worker of changes to the set (1), or no longer (0) */

void
ngx_http_retarget_stock_tracked(ngx_uint_t on)
{
    ngx_http_retarget_stock_t  *st;

    st = ngx_http_retarget_stock;

    if (st == NULL) {
        return;
    }

    /* what was answered before the change of mode is asked again */

    st->tracked = on;
    st->gen++;
    st->stale = 1;

    ngx_http_retarget_stock_soon(st);
}


/* the set changed: every sku known is asked about again */

void
ngx_http_retarget_stock_changed(void)
{
    ngx_http_retarget_stock_t  *st;

    st = ngx_http_retarget_stock;

    if (st == NULL) {
        return;
    }

    st->gen++;
    st->stale = 1;

    ngx_http_retarget_stock_soon(st);
}


/* whether reply is n integers, the answer of SMISMEMBER */

static ngx_uint_t
ngx_http_retarget_stock_answers(ngx_http_retarget_stock_t *st,
    redisReply *reply, ngx_uint_t n)
{
    u_char      safe[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];
    ngx_uint_t  i;

    if (reply == NULL) {
        return 0;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        if (!st->warned) {
            st->warned = 1;
            (void) ngx_http_retarget_log_value_buf(safe,
                                                   (u_char *) reply->str,
                                                   reply->len);
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "retarget: SMISMEMBER of the out-of-stock set "
                          "failed (\"%s\"): Redis 6.2 or later is needed, "
                          "every product counts as in stock", safe);
        }

        return 0;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget stock: unusable answer, type %d, "
                       "%uz elements", reply->type, reply->elements);
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
            return 0;
        }
    }

    return 1;
}


/*
 * Before a page's decision: asks about the skus of the visitor's state
 * the worker does not know yet.  NGX_OK: asked, "done" will be called
 * (unless the request goes away first); NGX_DECLINED: nothing to ask, or
 * nothing could be asked (those skus count as in stock).
 */

ngx_int_t
ngx_http_retarget_stock_check(ngx_http_request_t *r,
    ngx_http_retarget_state_t *state, ngx_http_retarget_stock_done_pt done,
    void *data)
{
    ngx_int_t                       rc;
    ngx_uint_t                      i, j, n, ncmds;
    ngx_str_t                      *sku;
    ngx_array_t                     skus;
    ngx_http_retarget_cmd_t        *cmds;
    ngx_http_retarget_stock_t      *st;
    ngx_http_retarget_stock_ask_t  *ask;

    st = ngx_http_retarget_stock;

    if (st == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_array_init(&skus, r->pool, 8, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_stock_add_new(&state->cart, &skus) != NGX_OK
        || ngx_http_retarget_stock_add_new(&state->viewed, &skus) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (skus.nelts == 0) {
        return NGX_DECLINED;
    }

    ask = ngx_palloc(r->pool, sizeof(ngx_http_retarget_stock_ask_t));
    ncmds = (skus.nelts + NGX_HTTP_RETARGET_STOCK_PAGE_CHUNK - 1)
            / NGX_HTTP_RETARGET_STOCK_PAGE_CHUNK;
    cmds = ngx_palloc(r->pool, ncmds * sizeof(ngx_http_retarget_cmd_t));

    if (ask == NULL || cmds == NULL) {
        return NGX_ERROR;
    }

    ask->done = done;
    ask->data = data;
    ask->skus = skus.elts;
    ask->n = skus.nelts;
    ask->replies = 0;
    ask->gen = st->gen;

    sku = skus.elts;

    for (i = 0, j = 0; i < ncmds; i++) {
        ngx_http_retarget_cmd_init(&cmds[i], "SMISMEMBER");
        ngx_http_retarget_arg_str(&cmds[i], &st->key);

        for (n = 0; n < NGX_HTTP_RETARGET_STOCK_PAGE_CHUNK && j < skus.nelts;
             n++, j++)
        {
            ngx_http_retarget_arg_str(&cmds[i], &sku[j]);
        }
    }

    rc = ngx_http_retarget_wait(r, ncmds, cmds,
                                ngx_http_retarget_stock_ask_reply,
                                ngx_http_retarget_stock_ask_done, ask);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget stock: %ui new skus of the page %s",
                   skus.nelts, rc == NGX_OK ? "asked about"
                                            : "not asked about, in stock");

    return rc;
}


/* appends the skus of items the worker does not know; the rest are used */

static ngx_int_t
ngx_http_retarget_stock_add_new(ngx_array_t *items, ngx_array_t *skus)
{
    ngx_uint_t                      i;
    ngx_str_t                      *sku;
    ngx_http_retarget_item_t       *it;
    ngx_http_retarget_stock_sku_t  *sk;

    it = items->elts;

    for (i = 0; i < items->nelts; i++) {
        sk = ngx_http_retarget_stock_find(&it[i].sku, NULL);

        if (sk != NULL) {
            sk->used = ngx_current_msec;
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
ngx_http_retarget_stock_ask_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_stock_ask_t *ask = data;

    ngx_uint_t  i, from, n;

    from = ask->replies * NGX_HTTP_RETARGET_STOCK_PAGE_CHUNK;
    ask->replies++;

    if (from >= ask->n) {
        return;
    }

    n = ngx_min(ask->n - from, NGX_HTTP_RETARGET_STOCK_PAGE_CHUNK);

    if (!ngx_http_retarget_stock_answers(ngx_http_retarget_stock, reply, n)) {
        return;
    }

    for (i = 0; i < n; i++) {
        ngx_http_retarget_stock_learn(&ask->skus[from + i],
                                      reply->element[i]->integer != 0);
    }

    if (ask->gen != ngx_http_retarget_stock->gen) {
        /* the set changed while this was asked: asked again, now */
        ngx_http_retarget_stock->stale = 1;
        ngx_http_retarget_stock_soon(ngx_http_retarget_stock);
    }
}


static void
ngx_http_retarget_stock_ask_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_stock_ask_t *ask = data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget stock: the page's skus %s",
                   rc == NGX_OK ? "answered"
                   : rc == NGX_AGAIN ? "timed out, in stock"
                                     : "failed, in stock");

    ask->done(r, ask->data);
}


/* whether the sku is in the out-of-stock set, as the worker knows */

ngx_uint_t
ngx_http_retarget_stock_listed(ngx_str_t *sku)
{
    ngx_http_retarget_stock_sku_t  *sk;

    sk = ngx_http_retarget_stock_find(sku, NULL);

    if (sk == NULL) {
        /* not asked about, or no answer: in stock */
        return 0;
    }

    sk->used = ngx_current_msec;

    return sk->out;
}


/* binary search; *at is where the sku is or would go */

static ngx_http_retarget_stock_sku_t *
ngx_http_retarget_stock_find(ngx_str_t *sku, ngx_uint_t *at)
{
    ngx_int_t                   c;
    ngx_uint_t                  lo, hi, mid;
    ngx_http_retarget_stock_t  *st;

    st = ngx_http_retarget_stock;

    if (st == NULL) {
        return NULL;
    }

    lo = 0;
    hi = st->nskus;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        c = ngx_http_retarget_stock_cmp(sku, &st->skus[mid].sku);

        if (c == 0) {
            if (at) {
                *at = mid;
            }

            return &st->skus[mid];
        }

        if (c < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    if (at) {
        *at = lo;
    }

    return NULL;
}


/* a page's answer: the sku is known from now on */

static void
ngx_http_retarget_stock_learn(ngx_str_t *sku, ngx_uint_t out)
{
    u_char                         *data;
    ngx_uint_t                      i, lru, at;
    ngx_http_retarget_stock_t      *st;
    ngx_http_retarget_stock_sku_t  *sk;

    st = ngx_http_retarget_stock;

    sk = ngx_http_retarget_stock_find(sku, &at);

    if (sk == NULL) {
        data = ngx_alloc(sku->len ? sku->len : 1, ngx_cycle->log);
        if (data == NULL) {
            return;
        }

        if (st->nskus == NGX_HTTP_RETARGET_STOCK_MAX) {
            lru = 0;

            for (i = 1; i < st->nskus; i++) {
                if ((ngx_msec_int_t) (st->skus[i].used - st->skus[lru].used)
                    < 0)
                {
                    lru = i;
                }
            }

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "retarget stock: %ui skus known, the least "
                           "recently used one is forgotten", st->nskus);

            ngx_http_retarget_stock_forget(st, lru);

            if (lru < at) {
                at--;
            }
        }

        ngx_memmove(&st->skus[at + 1], &st->skus[at],
                    (st->nskus - at) * sizeof(ngx_http_retarget_stock_sku_t));
        st->nskus++;

        sk = &st->skus[at];
        sk->sku.data = data;
        sk->sku.len = sku->len;
        ngx_memcpy(data, sku->data, sku->len);
    }

    sk->out = out;
    sk->used = ngx_current_msec;
}


static void
ngx_http_retarget_stock_forget(ngx_http_retarget_stock_t *st, ngx_uint_t i)
{
    ngx_free(st->skus[i].sku.data);

    ngx_memmove(&st->skus[i], &st->skus[i + 1],
                (st->nskus - i - 1) * sizeof(ngx_http_retarget_stock_sku_t));
    st->nskus--;
}


static ngx_int_t
ngx_http_retarget_stock_cmp(ngx_str_t *a, ngx_str_t *b)
{
    ngx_int_t  c;

    c = ngx_memn2cmp(a->data, b->data, a->len, b->len);

    return (c > 0) - (c < 0);
}
