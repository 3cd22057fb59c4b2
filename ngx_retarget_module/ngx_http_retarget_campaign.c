
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The reminder: whether this page shows one (each rule answers one of
 * the classic retargeting mistakes: too soon, too late, too often, after
 * the purchase, not tested), which variant, with which incentive, and
 * the writes that remember it, sent after the response.
 */


#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_banner.h"
#include "ngx_http_retarget_catalog.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_optimize.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_store.h"


/* what one page decided, for the banner and the writes after it */
typedef struct {
    ngx_http_retarget_campaign_t   *cp;
    ngx_http_retarget_state_t      *st;
    ngx_array_t                     cart;     /* in stock */
    ngx_array_t                     viewed;   /* in stock, not in the cart */
    ngx_uint_t                      browse;
    ngx_uint_t                      expired;  /* past cart_lifetime */
    time_t                          changed;  /* the cart's last change */
    time_t                          idle;
    ngx_http_retarget_incentive_t  *incentive;
    ngx_str_t                       code;
    ngx_http_retarget_variant_t    *variant;
} ngx_http_retarget_pick_t;


/* a pool code being taken for a visitor: outlives the request */
typedef struct {
    time_t                          retention;
    ngx_str_t                       list;     /* the pool's codes */
    ngx_str_t                       meta;     /* the visitor's meta */
    ngx_str_t                       field;    /* the pinned code's */
    ngx_str_t                       code;
} ngx_http_retarget_pop_t;


static ngx_http_retarget_decision_e ngx_http_retarget_rules(
    ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_http_retarget_pick_t *pk);
static ngx_int_t ngx_http_retarget_items(ngx_http_retarget_pick_t *pk);
static void ngx_http_retarget_cart_sums(ngx_http_retarget_ctx_t *ctx,
    ngx_array_t *cart);
static ngx_int_t ngx_http_retarget_cart_as_viewed(
    ngx_http_retarget_pick_t *pk);
static int ngx_libc_cdecl ngx_http_retarget_newer(const void *one,
    const void *two);
static ngx_uint_t ngx_http_retarget_in_cart(ngx_http_retarget_state_t *st,
    ngx_str_t *sku);
static ngx_uint_t ngx_http_retarget_bucket(ngx_str_t *vid, u_char salt,
    ngx_uint_t n);
static ngx_http_retarget_variant_t *ngx_http_retarget_variant_pick(
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_pick_t *pk);
static void ngx_http_retarget_incentive_pick(ngx_http_retarget_ctx_t *ctx,
    ngx_http_retarget_pick_t *pk);

static ngx_int_t ngx_http_retarget_impression(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds);
static ngx_int_t ngx_http_retarget_eligible(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds);
static ngx_int_t ngx_http_retarget_visit_goes_on(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds);
static ngx_int_t ngx_http_retarget_forget_stale(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds);
static void ngx_http_retarget_pop_code(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx);
static void ngx_http_retarget_pop_reply(void *data, redisReply *reply);
static void ngx_http_retarget_pin_reply(void *data, redisReply *reply);


static ngx_str_t  ngx_http_retarget_c_eligible = ngx_string("eligible:holdout");
static ngx_str_t  ngx_http_retarget_c_frequency =
    ngx_string("suppressed:frequency");
static ngx_str_t  ngx_http_retarget_c_timing = ngx_string("suppressed:timing");


/*
 * Called once the page's read has ended (or was never sent), when the
 * page can still get a snippet: sets ctx->decision, and the banner to
 * inject when a reminder is shown.
 */

ngx_int_t
ngx_http_retarget_campaign_decide(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_str_t *banner)
{
    ngx_http_retarget_pick_t       pk;
    ngx_http_retarget_banner_t     bn;
    ngx_http_retarget_variant_t   *v;
    ngx_http_retarget_loc_conf_t  *rlcf;

    banner->len = 0;

    if (ctx->decided || ctx->fetch == ngx_http_retarget_fetch_pending) {
        return NGX_OK;
    }

    ctx->decided = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget campaign: deciding, read %s",
                   ctx->fetch == ngx_http_retarget_fetch_done ? "answered"
                   : ctx->fetch == ngx_http_retarget_fetch_none ? "not sent"
                   : "failed or timed out");

    switch (ctx->fetch) {

    case ngx_http_retarget_fetch_none:
        return NGX_OK;

    case ngx_http_retarget_fetch_timeout:
        ctx->decision = ngx_http_retarget_decision_timeout;
        return NGX_OK;

    case ngx_http_retarget_fetch_failed:
        ctx->decision = ngx_http_retarget_decision_redis_down;
        return NGX_OK;

    default: /* ngx_http_retarget_fetch_done */
        break;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (!rlcf->campaign.enable) {
        /* the read was sent before an internal redirect to such a page */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget campaign: no campaign here after all");

        if (ctx->decision == ngx_http_retarget_decision_none) {
            ctx->decision = ngx_http_retarget_decision_empty;
        }

        return NGX_OK;
    }

    ngx_memzero(&pk, sizeof(ngx_http_retarget_pick_t));
    pk.cp = &rlcf->campaign;
    pk.st = ctx->state;

    if (ngx_http_retarget_items(&pk) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the module's copy of the cart, whether a reminder may show it */
    ngx_http_retarget_cart_sums(ctx, &pk.cart);

    if (pk.expired && ngx_http_retarget_cart_as_viewed(&pk) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->decision = ngx_http_retarget_rules(r, ctx, &pk);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget campaign: rule decided \"%V\": %ui in cart, "
                   "%ui viewed, idle %T, %ui reminding visits in the "
                   "period, %ui pages of the visit",
                   &ngx_http_retarget_decisions[ctx->decision],
                   pk.cart.nelts, pk.viewed.nelts, pk.idle,
                   pk.st->reminders, pk.st->visit_pages);

    if (ctx->decision == ngx_http_retarget_decision_holdout) {
        ctx->impression = 1;
        ctx->variant = ngx_http_retarget_variant_find(
                           ngx_http_get_module_main_conf(r,
                                                    ngx_http_retarget_module),
                           ngx_http_retarget_holdout_name.data,
                           ngx_http_retarget_holdout_name.len);
        ngx_http_retarget_count(&ngx_http_retarget_c_eligible, 1);
        return NGX_OK;
    }

    if (ctx->decision != ngx_http_retarget_decision_shown) {
        return NGX_OK;
    }

    v = ngx_http_retarget_variant_pick(ctx, &pk);

    pk.variant = v;
    ctx->impression = 1;
    ctx->variant = v->name;

    ngx_http_retarget_incentive_pick(ctx, &pk);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget campaign: variant \"%V\", %s, incentive %s%s",
                   &v->name->name, pk.browse ? "browse" : "cart",
                   pk.incentive ? "shown" : "none",
                   ctx->pop_code ? ", a pool code to take" : "");

    bn.cart = &pk.cart;
    bn.viewed = &pk.viewed;
    bn.browse = pk.browse;
    bn.link = pk.cp->link;
    bn.incentive = pk.incentive;
    bn.code = pk.code;
    bn.variant = v;

    if (ngx_http_retarget_banner_render(r, ctx, &bn, banner) != NGX_OK) {
        return NGX_ERROR;
    }

    /* counted in the log phase, when the page did reach the client */

    return NGX_OK;
}


/*
 * The frequency cap counts visits: a visit ends after visit_gap without
 * a page (campaign pages are the ones this module sees), and the visit
 * of the latest reminder is remembered by the time of its last page
 * (visit_last) and the reminders it showed (visit_pages).  A new visit
 * may remind while fewer than "frequency" visits did in the period; a
 * page of the reminding visit while it has shown fewer than "pages".
 * Every page of that visit keeps it going, whatever it decides: a page
 * that only waits for the delay is a page of the visit too.
 */

static ngx_http_retarget_decision_e
ngx_http_retarget_rules(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_http_retarget_pick_t *pk)
{
    time_t                         now, last;
    ngx_uint_t                     shown, visit;
    ngx_http_retarget_item_t      *it;
    ngx_http_retarget_state_t     *st;
    ngx_http_retarget_campaign_t  *cp;

    cp = pk->cp;
    st = pk->st;
    now = ngx_time();

    visit = (st->visit_pages && st->visit_last
             && now - st->visit_last < cp->visit_gap);

    if (visit && st->visit_last != now) {
        /* written after the response, at most once a second */
        ctx->visit = 1;
    }

    if (st->dismissed && now - st->dismissed < cp->period) {
        return ngx_http_retarget_decision_dismissed;
    }

    /* the very next pages after a purchase remind of nothing */

    if (st->purchased
        && (now - st->purchased < cp->delay
            || (pk->cart.nelts && st->purchased >= st->cart_updated)))
    {
        return ngx_http_retarget_decision_purchased;
    }

    if (pk->cart.nelts) {
        last = st->cart_updated;

        if (last == 0) {
            it = pk->cart.elts;
            last = (time_t) (it[0].ms / 1000);
        }

    } else if (pk->viewed.nelts) {
        pk->browse = 1;
        it = pk->viewed.elts;
        last = (time_t) (it[0].ms / 1000);

    } else {
        return ngx_http_retarget_decision_no_cart;
    }

    pk->idle = now - last;

    if (pk->idle < cp->delay || pk->idle > cp->window) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget campaign: idle %T, outside %T-%T",
                       pk->idle, cp->delay, cp->window);

        ngx_http_retarget_count(&ngx_http_retarget_c_timing, 1);

        return (pk->idle < cp->delay) ? ngx_http_retarget_decision_too_soon
                                      : ngx_http_retarget_decision_too_late;
    }

    if (visit) {

        if (st->visit_pages >= cp->pages) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget campaign: %ui pages of this visit "
                           "reminded, cap %ui", st->visit_pages, cp->pages);

            ngx_http_retarget_count(&ngx_http_retarget_c_frequency, 1);
            return ngx_http_retarget_decision_capped;
        }

        st->visit_pages++;

    } else {

        /* reminding visits so far in the current period */

        shown = (st->period_start && now - st->period_start < cp->period)
                ? st->reminders : 0;

        if (shown >= cp->frequency) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget campaign: %ui visits reminded, "
                           "cap %ui", shown, cp->frequency);

            ngx_http_retarget_count(&ngx_http_retarget_c_frequency, 1);
            return ngx_http_retarget_decision_capped;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget campaign: a new reminding visit, %ui "
                       "before it in the period", shown);

        if (shown == 0) {
            st->period_start = now;
        }

        st->reminders = shown + 1;
        st->visit_pages = 1;
    }

    st->visit_last = now;

    if (ngx_http_retarget_bucket(&ctx->visitor, 'h', 100) < cp->holdout) {
        return ngx_http_retarget_decision_holdout;
    }

    return ngx_http_retarget_decision_shown;
}


/*
 * The cart lines and viewed products a reminder may show.  A cart the
 * shop no longer keeps (unchanged for longer than retarget_cart_lifetime)
 * is no cart for a reminder (ngx_http_retarget_cart_as_viewed()), so its
 * products are not left out of the viewed ones.
 */

static ngx_int_t
ngx_http_retarget_items(ngx_http_retarget_pick_t *pk)
{
    time_t                      last;
    ngx_uint_t                  i;
    ngx_array_t                *from;
    ngx_http_retarget_item_t   *it, *to;
    ngx_http_retarget_state_t  *st;

    st = pk->st;
    from = &st->cart;

    if (pk->cp->cart_lifetime && st->cart.nelts) {
        last = st->cart_updated;

        if (last == 0) {
            it = st->cart.elts;
            last = (time_t) (it[0].ms / 1000);
        }

        pk->changed = last;
        pk->expired = (ngx_time() - last > pk->cp->cart_lifetime);
    }

    if (ngx_array_init(&pk->cart, from->pool, from->nelts + 1,
                       sizeof(ngx_http_retarget_item_t))
        != NGX_OK
        || ngx_array_init(&pk->viewed, from->pool,
                          st->viewed.nelts + from->nelts + 1,
                          sizeof(ngx_http_retarget_item_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    it = st->cart.elts;

    for (i = 0; i < st->cart.nelts; i++) {
        if (ngx_http_retarget_out_of_stock(&it[i].sku)) {
            continue;
        }

        to = ngx_array_push(&pk->cart);
        if (to == NULL) {
            return NGX_ERROR;
        }

        *to = it[i];
    }

    it = st->viewed.elts;

    for (i = 0; i < st->viewed.nelts; i++) {
        if ((!pk->expired && ngx_http_retarget_in_cart(st, &it[i].sku))
            || ngx_http_retarget_out_of_stock(&it[i].sku))
        {
            continue;
        }

        to = ngx_array_push(&pk->viewed);
        if (to == NULL) {
            return NGX_ERROR;
        }

        *to = it[i];
    }

    return NGX_OK;
}


/*
 * The lines of a cart past its lifetime among the viewed products, each
 * sku once at its newest time, the newest VIEWED_KEEP; the cart is left
 * empty for the rules.  A cart that has not changed since a purchase was
 * bought: nothing of it is shown.
 */

static ngx_int_t
ngx_http_retarget_cart_as_viewed(ngx_http_retarget_pick_t *pk)
{
    ngx_uint_t                  i, k, n;
    ngx_http_retarget_item_t   *it, *to, *v;
    ngx_http_retarget_state_t  *st;

    st = pk->st;
    n = pk->cart.nelts;
    pk->cart.nelts = 0;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, st->cart.pool->log, 0,
                   "retarget campaign: cart of %ui lines unchanged since "
                   "%T, past its lifetime %T: viewed products",
                   n, pk->changed, pk->cp->cart_lifetime);

    if (st->purchased && st->purchased >= pk->changed) {

        /* bought: neither its lines nor the views of its products */

        v = pk->viewed.elts;

        for (i = 0, k = 0; i < pk->viewed.nelts; i++) {
            if (!ngx_http_retarget_in_cart(st, &v[i].sku)) {
                v[k++] = v[i];
            }
        }

        pk->viewed.nelts = k;

        return NGX_OK;
    }

    it = pk->cart.elts;

    for (i = 0; i < n; i++) {

        v = pk->viewed.elts;

        for (k = 0; k < pk->viewed.nelts; k++) {
            if (v[k].sku.len == it[i].sku.len
                && ngx_strncmp(v[k].sku.data, it[i].sku.data,
                               it[i].sku.len)
                   == 0)
            {
                break;
            }
        }

        if (k < pk->viewed.nelts) {
            if (v[k].ms < it[i].ms) {
                v[k].ms = it[i].ms;
            }

            continue;
        }

        to = ngx_array_push(&pk->viewed);
        if (to == NULL) {
            return NGX_ERROR;
        }

        *to = it[i];
        to->qty = 1;
        ngx_str_null(&to->line);
    }

    ngx_qsort(pk->viewed.elts, pk->viewed.nelts,
              sizeof(ngx_http_retarget_item_t), ngx_http_retarget_newer);

    if (pk->viewed.nelts > NGX_HTTP_RETARGET_VIEWED_KEEP) {
        pk->viewed.nelts = NGX_HTTP_RETARGET_VIEWED_KEEP;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_retarget_newer(const void *one, const void *two)
{
    const ngx_http_retarget_item_t  *a = one;
    const ngx_http_retarget_item_t  *b = two;

    if (a->ms == b->ms) {
        return 0;
    }

    return (a->ms > b->ms) ? -1 : 1;
}


/* $retarget_cart_count and $retarget_cart_total */

static void
ngx_http_retarget_cart_sums(ngx_http_retarget_ctx_t *ctx, ngx_array_t *cart)
{
    ngx_uint_t                 i;
    ngx_http_retarget_item_t  *it;

    ctx->cart_count = 0;
    ctx->cart_cents = 0;

    it = cart->elts;

    /*
     * The lines are the state parser's: at most CART_MAX, each with a qty
     * of 1..QTY_MAX and a price of 0..AMOUNT_MAX (ngx_http_retarget_store.h),
     * so no product or sum here can overflow; a line outside them would
     * be a bug, and is left out rather than summed.
     */

    for (i = 0; i < cart->nelts; i++) {

        if (it[i].qty < 1 || it[i].qty > NGX_HTTP_RETARGET_QTY_MAX
            || it[i].cents < 0 || it[i].cents > NGX_HTTP_RETARGET_AMOUNT_MAX
            || i >= NGX_HTTP_RETARGET_CART_MAX)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "retarget campaign: line \"%V\" out of bounds, "
                           "not summed", &it[i].sku);
            continue;
        }

        ctx->cart_count += it[i].qty;
        ctx->cart_cents += it[i].cents * it[i].qty;
    }
}


static ngx_uint_t
ngx_http_retarget_in_cart(ngx_http_retarget_state_t *st, ngx_str_t *sku)
{
    ngx_uint_t                 i;
    ngx_http_retarget_item_t  *it;

    it = st->cart.elts;

    for (i = 0; i < st->cart.nelts; i++) {
        if (it[i].sku.len == sku->len
            && ngx_strncmp(it[i].sku.data, sku->data, sku->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * A stable number in [0, n) for the visitor: the id is random, so its
 * hash spreads visitors evenly; the salt keeps the holdout draw
 * independent of the variant draw.
 */

static ngx_uint_t
ngx_http_retarget_bucket(ngx_str_t *vid, u_char salt, ngx_uint_t n)
{
    u_char  buf[NGX_HTTP_RETARGET_VID_LEN + 1];

    buf[0] = salt;
    ngx_memcpy(buf + 1, vid->data, ngx_min(vid->len,
                                            NGX_HTTP_RETARGET_VID_LEN));

    return ngx_murmur_hash2(buf, ngx_min(vid->len,
                                         NGX_HTTP_RETARGET_VID_LEN) + 1)
           % n;
}


/*
 * The variant the visitor saw before, while the location still has it,
 * so that a change of weights does not move visitors between variants;
 * otherwise a stable weighted draw, with the weights retarget_optimize
 * gives for the period when it is on.  The holdout was drawn before
 * (ngx_http_retarget_rules()): the optimizer never changes its share.
 */

static ngx_http_retarget_variant_t *
ngx_http_retarget_variant_pick(ngx_http_retarget_ctx_t *ctx,
    ngx_http_retarget_pick_t *pk)
{
    ngx_uint_t                    i, n, total, *weights;
    ngx_http_retarget_variant_t  *v;

    v = pk->cp->variants->elts;

    for (i = 0; i < pk->cp->variants->nelts; i++) {
        if (v[i].name->name.len == pk->st->variant.len
            && ngx_strncmp(v[i].name->name.data, pk->st->variant.data,
                           pk->st->variant.len) == 0)
        {
            return &v[i];
        }
    }

    /* a new visitor: the optimizer's weights of the period, if any */

    total = pk->cp->total_weight;
    weights = ngx_http_retarget_optimize_weights(pk->cp->optimize, &total);

    n = ngx_http_retarget_bucket(&ctx->visitor, 'v', total);

    for (i = 0; i + 1 < pk->cp->variants->nelts; i++) {
        if (n < (weights ? weights[i] : v[i].weight)) {
            break;
        }

        n -= weights ? weights[i] : v[i].weight;
    }

    return &v[i];
}


/*
 * The incentive with the longest "after" the cart has been idle for,
 * and only once a reminder of this cart was shown before: the first
 * reminder never gives a discount away.  A pool code is taken for the
 * visitor as soon as an incentive applies, so that it is there for the
 * next reminder; an empty pool offers nothing.
 */

static void
ngx_http_retarget_incentive_pick(ngx_http_retarget_ctx_t *ctx,
    ngx_http_retarget_pick_t *pk)
{
    ngx_str_t                      *code;
    ngx_uint_t                      i;
    ngx_http_retarget_incentive_t  *inc, *best;

    if (pk->browse || pk->cp->incentives == NULL) {
        return;
    }

    best = NULL;
    inc = pk->cp->incentives->elts;

    for (i = 0; i < pk->cp->incentives->nelts; i++) {
        if (pk->idle >= inc[i].after && ctx->cart_cents >= inc[i].min_cents
            && (best == NULL || inc[i].after > best->after))
        {
            best = &inc[i];
        }
    }

    if (best == NULL) {
        return;
    }

    pk->code = best->code;

    if (best->pool.len) {
        code = pk->st->codes.elts;

        for (i = 0; i < pk->st->codes.nelts; i += 2) {
            if (code[i].len == best->pool.len
                && ngx_strncmp(code[i].data, best->pool.data, code[i].len)
                   == 0)
            {
                pk->code = code[i + 1];
                break;
            }
        }

        if (pk->code.len == 0) {
            ctx->incentive = best;
            ctx->pop_code = 1;
            return;
        }
    }

    if (pk->st->last_reminder == 0
        || pk->st->last_reminder < pk->st->cart_updated)
    {
        /* the first reminder of this cart */
        return;
    }

    pk->incentive = best;
}


/*
 * The log phase: what the page's reminder changed in the visitor's
 * hash, the fields the read found stale, and a pool code to take.
 */

ngx_int_t
ngx_http_retarget_campaign_log(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx)
{
    ngx_array_t  *cmds;

    if (ctx->state == NULL) {
        return NGX_OK;
    }

    cmds = ngx_array_create(r->pool, 4, sizeof(ngx_http_retarget_cmd_t));
    if (cmds == NULL) {
        return NGX_ERROR;
    }

    /*
     * A reminder the client did not get (the connection failed while or
     * after the snippet was written: the client left, a send timed out)
     * is not an impression: neither counted nor held against the
     * frequency cap.  What was handed to the kernel counts as shown.
     */

    if (ctx->impression && r->connection->error) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget campaign: the page did not reach the "
                       "client, no impression");
        ctx->impression = 0;
    }

    if (ctx->impression
        && ctx->decision == ngx_http_retarget_decision_shown)
    {
        ngx_http_retarget_count(&ctx->variant->counters[
                                    ngx_http_retarget_vc_impressions], 1);
    }

    if ((ctx->impression
         && (ngx_http_retarget_impression(r, ctx, cmds) != NGX_OK
             || ngx_http_retarget_eligible(r, ctx, cmds) != NGX_OK))
        || (!ctx->impression && ctx->visit
            && ngx_http_retarget_visit_goes_on(r, ctx, cmds) != NGX_OK)
        || ngx_http_retarget_forget_stale(r, ctx, cmds) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_send_cmds(cmds->elts, cmds->nelts);

    if (ctx->pop_code) {
        ngx_http_retarget_pop_code(r, ctx);
    }

    ctx->impression = 0;
    ctx->pop_code = 0;
    ctx->visit = 0;
    ctx->state = NULL;

    return NGX_OK;
}


/*
 * One HSET: the reminder's time, the reminding visits in the period and
 * the pages of this one, and what attribution needs ("seen": when, and
 * which variant).  The counts are written as the page computed them, so
 * the read and this write are all a reminder costs Redis.
 */

static ngx_int_t
ngx_http_retarget_impression(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds)
{
    u_char                         *p;
    ngx_str_t                       fv[14];
    ngx_uint_t                      n;
    ngx_http_retarget_state_t      *st;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);
    st = ctx->state;

    p = ngx_pnalloc(r->pool, 5 * NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    fv[0] = ngx_http_retarget_f_seen;

    if (ngx_http_retarget_stamp_encode(r->pool, ngx_time(),
                                       &ctx->variant->name, &fv[1])
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    fv[2] = ngx_http_retarget_f_last_reminder;
    fv[3].data = p;
    p = ngx_sprintf(p, "%T", ngx_time());
    fv[3].len = p - fv[3].data;

    fv[4] = ngx_http_retarget_f_reminders;
    fv[5].data = p;
    p = ngx_sprintf(p, "%L", (int64_t) st->reminders);
    fv[5].len = p - fv[5].data;

    fv[6] = ngx_http_retarget_f_period_start;
    fv[7].data = p;
    p = ngx_sprintf(p, "%L", (int64_t) st->period_start);
    fv[7].len = p - fv[7].data;

    fv[8] = ngx_http_retarget_f_visit_last;
    fv[9].data = p;
    p = ngx_sprintf(p, "%T", st->visit_last);
    fv[9].len = p - fv[9].data;

    fv[10] = ngx_http_retarget_f_visit_pages;
    fv[11].data = p;
    p = ngx_sprintf(p, "%L", (int64_t) st->visit_pages);
    fv[11].len = p - fv[11].data;

    n = 6;

    if (ctx->decision == ngx_http_retarget_decision_shown) {
        fv[12] = ngx_http_retarget_f_variant;
        fv[13] = ctx->variant->name;
        n = 7;
    }

    /* the hash may have expired since the read: never keep it forever */

    return ngx_http_retarget_meta_set(r->pool, rmcf, cmds, &ctx->visitor, fv,
                                      n);
}


/*
 * The visitor is one of the arm's eligible people today: a PFADD (and the
 * key's EXPIRE) in the same batch as the meta's HSET, so no round trip is
 * added and no answer waited for.  Only the first reminding page of a
 * visit adds, or the first of a new UTC day in a visit that goes on over
 * midnight ("seen", the last impression, was on another day): the other
 * pages of the visit would add the same visitor again, for nothing.
 */

static ngx_int_t
ngx_http_retarget_eligible(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds)
{
    time_t                          now;
    ngx_http_retarget_state_t      *st;
    ngx_http_retarget_main_conf_t  *rmcf;

    st = ctx->state;
    now = ngx_time();

    if (st->visit_pages > 1 && st->seen / 86400 == now / 86400) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget campaign: page %ui of the visit, \"%V\" "
                       "eligible today already", st->visit_pages,
                       &ctx->variant->name);
        return NGX_OK;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget campaign: \"%V\" eligible, %s",
                   &ctx->variant->name,
                   st->visit_pages > 1 ? "first page of the day"
                                       : "first page of the visit");

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    return ngx_http_retarget_people_add(r->pool, rmcf, cmds,
                                        ngx_http_retarget_people_eligible,
                                        &ctx->variant->name, &ctx->visitor);
}


/*
 * A page of the reminding visit that showed nothing: the visit goes on
 * from it (one HSET, and the TTL).
 */

static ngx_int_t
ngx_http_retarget_visit_goes_on(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds)
{
    u_char                         *p;
    ngx_str_t                       fv[2];
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    fv[0] = ngx_http_retarget_f_visit_last;
    fv[1].data = p;
    fv[1].len = ngx_sprintf(p, "%T", ngx_time()) - p;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget campaign: the reminding visit goes on, "
                   "decision \"%V\"",
                   &ngx_http_retarget_decisions[ctx->decision]);

    return ngx_http_retarget_meta_set(r->pool, rmcf, cmds, &ctx->visitor, fv,
                                      1);
}


static ngx_int_t
ngx_http_retarget_forget_stale(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *cmds)
{
    ngx_str_t                      *f;
    ngx_uint_t                      i;
    ngx_http_retarget_cmd_t        *cmd;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    f = ctx->state->stale.elts;
    cmd = NULL;

    for (i = 0; i < ctx->state->stale.nelts; i++) {

        if (cmd == NULL || cmd->argc == NGX_HTTP_RETARGET_MAX_ARGS) {
            cmd = ngx_http_retarget_key_cmd(r->pool, rmcf, cmds, "HDEL",
                                            ngx_http_retarget_key_meta,
                                            &ctx->visitor);
            if (cmd == NULL) {
                return NGX_ERROR;
            }
        }

        ngx_http_retarget_arg(cmd, f[i].data, f[i].len);
    }

    return NGX_OK;
}


/*
 * LPOP a code from the pool, then HSETNX it into the visitor's hash: if
 * another page of the same visitor pinned one meanwhile, the code goes
 * back to the pool.  Nothing waits for this; the next reminder shows
 * the code.
 */

static void
ngx_http_retarget_pop_code(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx)
{
    u_char                         *p;
    size_t                          size;
    ngx_str_t                      *pool;
    ngx_http_retarget_cmd_t         cmd;
    ngx_http_retarget_pop_t        *pop;
    ngx_http_retarget_main_conf_t  *rmcf;
    ngx_http_retarget_incentive_t  *inc;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);
    inc = ctx->incentive;
    pool = &inc->pool;

    size = sizeof(ngx_http_retarget_pop_t)
           + ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                       ngx_http_retarget_key_codes, pool)
           + ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                       ngx_http_retarget_key_meta,
                                       &ctx->visitor)
           + ngx_http_retarget_code_field_len(pool);

    pop = ngx_alloc(size, r->connection->log);
    if (pop == NULL) {
        return;
    }

    ngx_memzero(pop, sizeof(ngx_http_retarget_pop_t));

    pop->retention = rmcf->retention;

    p = (u_char *) (pop + 1);

    pop->list.data = p;
    p = ngx_http_retarget_key_put(p, &rmcf->redis.prefix,
                                  ngx_http_retarget_key_codes, pool);
    pop->list.len = p - pop->list.data;

    pop->meta.data = p;
    p = ngx_http_retarget_key_put(p, &rmcf->redis.prefix,
                                  ngx_http_retarget_key_meta, &ctx->visitor);
    pop->meta.len = p - pop->meta.data;

    pop->field.data = p;
    p = ngx_http_retarget_code_field_put(p, pool);
    pop->field.len = p - pop->field.data;

    ngx_http_retarget_cmd_init(&cmd, "LPOP");
    ngx_http_retarget_arg_str(&cmd, &pop->list);

    if (ngx_http_retarget_redis_read(ngx_http_retarget_redis_get(), cmd.argc,
                                     cmd.argv, cmd.len,
                                     ngx_http_retarget_pop_reply, pop)
        != NGX_OK)
    {
        ngx_free(pop);
    }
}


static void
ngx_http_retarget_pop_reply(void *data, redisReply *reply)
{
    ngx_http_retarget_pop_t *pop = data;

    u_char                   *code;
    ngx_http_retarget_cmd_t   cmd;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING
        || reply->len == 0 || reply->len > 256)
    {
        /* an empty pool: no incentive */
        ngx_free(pop);
        return;
    }

    code = ngx_alloc(reply->len, ngx_cycle->log);
    if (code == NULL) {
        ngx_free(pop);
        return;
    }

    ngx_memcpy(code, reply->str, reply->len);
    pop->code.data = code;
    pop->code.len = reply->len;

    ngx_http_retarget_cmd_init(&cmd, "HSETNX");
    ngx_http_retarget_arg_str(&cmd, &pop->meta);
    ngx_http_retarget_arg_str(&cmd, &pop->field);
    ngx_http_retarget_arg_str(&cmd, &pop->code);

    if (ngx_http_retarget_redis_read(ngx_http_retarget_redis_get(), cmd.argc,
                                     cmd.argv, cmd.len,
                                     ngx_http_retarget_pin_reply, pop)
        != NGX_OK)
    {
        ngx_http_retarget_pin_reply(pop, NULL);
    }
}


static void
ngx_http_retarget_pin_reply(void *data, redisReply *reply)
{
    ngx_http_retarget_pop_t *pop = data;

    u_char                   num[NGX_TIME_T_LEN];
    ngx_str_t                ttl;
    ngx_http_retarget_cmd_t  cmd;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER
        && reply->integer == 1)
    {
        /* pinned: the hash may have expired since the page's read */
        ttl.data = num;
        ttl.len = ngx_sprintf(num, "%T", pop->retention) - num;

        ngx_http_retarget_cmd_init(&cmd, "EXPIRE");
        ngx_http_retarget_arg_str(&cmd, &pop->meta);
        ngx_http_retarget_arg_str(&cmd, &ttl);

        (void) ngx_http_retarget_send_cmd(&cmd);

    } else if (reply == NULL || reply->type != REDIS_REPLY_INTEGER
        || reply->integer == 0)
    {
        /* not pinned: the code goes back for someone else */
        ngx_http_retarget_cmd_init(&cmd, "RPUSH");
        ngx_http_retarget_arg_str(&cmd, &pop->list);
        ngx_http_retarget_arg_str(&cmd, &pop->code);

        (void) ngx_http_retarget_send_cmd(&cmd);
    }

    ngx_free(pop->code.data);
    ngx_free(pop);
}
