
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor's state as the page's read finds it: the field/value pairs
 * of the visitor's meta hash.  Nothing there is trusted: the hash can hold
 * whatever anyone wrote into Redis, so a field that does not parse is
 * ignored, and a cart line or viewed product that does not parse is
 * listed for deletion.  The fields and the encoding of the lines are
 * ngx_http_retarget_store.c's.  This file needs no request, so it is
 * fuzzed as it is (fuzz/state_fuzz.c).
 */


#include "ngx_http_retarget_state.h"
#include "ngx_http_retarget_store.h"


/*
 * NGX_HTTP_RETARGET_VIEWED_KEEP viewed products a reminder may show
 * (older ones are deleted), NGX_HTTP_RETARGET_CART_MAX cart lines a page
 * shows at most (beyond, the oldest are left alone): see
 * ngx_http_retarget_store.h
 */


static ngx_int_t ngx_http_retarget_state_field(ngx_pool_t *pool,
    ngx_http_retarget_state_t *st, ngx_str_t *field, ngx_str_t *value);
static ngx_int_t ngx_http_retarget_parse_item(ngx_str_t *sku,
    ngx_str_t *value, ngx_uint_t cart, ngx_http_retarget_item_t *it);
static void ngx_http_retarget_stamp(ngx_str_t *value, time_t *t,
    ngx_str_t *variant);
static ngx_int_t ngx_http_retarget_stale(ngx_http_retarget_state_t *st,
    ngx_str_t *sku);
static ngx_int_t ngx_http_retarget_forget_bought(
    ngx_http_retarget_state_t *st, ngx_str_t *sku);
static ngx_int_t ngx_http_retarget_keep_newest(ngx_http_retarget_state_t *st,
    ngx_array_t *items, ngx_uint_t keep, ngx_uint_t forget);
static int ngx_libc_cdecl ngx_http_retarget_newest_first(const void *one,
    const void *two);


/*
 * Reads the field/value pairs of the meta hash into st.  Nothing in them
 * is trusted: a field that does not parse is ignored, a cart line or a
 * viewed product that does not parse is deleted by the page's writes,
 * like lines of a cart that was cleared since and viewed products beyond
 * the few a reminder shows.
 */

ngx_int_t
ngx_http_retarget_state_parse(ngx_pool_t *pool, ngx_str_t *kv, ngx_uint_t n,
    ngx_http_retarget_state_t *st)
{
    ngx_uint_t                 i;
    ngx_http_retarget_item_t  *it;

    ngx_memzero(st, sizeof(ngx_http_retarget_state_t));

    if (ngx_array_init(&st->cart, pool, 4, sizeof(ngx_http_retarget_item_t))
        != NGX_OK
        || ngx_array_init(&st->viewed, pool, 8,
                          sizeof(ngx_http_retarget_item_t))
           != NGX_OK
        || ngx_array_init(&st->codes, pool, 2, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&st->stale, pool, 2, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (n > 2 * NGX_HTTP_RETARGET_READ_MAX) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                       "retarget state: %ui fields, the rest ignored",
                       (ngx_uint_t) NGX_HTTP_RETARGET_READ_MAX);

        n = 2 * NGX_HTTP_RETARGET_READ_MAX;
    }

    for (i = 0; i + 1 < n; i += 2) {
        if (ngx_http_retarget_state_field(pool, st, &kv[i], &kv[i + 1])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* lines of a cart that was cleared (a purchase) after they were added */

    it = st->cart.elts;

    for (i = 0; i < st->cart.nelts; /* void */ ) {

        if (it[i].ms > st->cart_cleared) {
            i++;
            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                       "retarget state: cart line \"%V\" older than the "
                       "clear, deleted", &it[i].sku);

        if (ngx_http_retarget_stale(st, &it[i].sku) != NGX_OK) {
            return NGX_ERROR;
        }

        /*
         * A line added before the purchase and cleared since was bought
         * (the purchase's script deletes its viewed product too: this is
         * for what it left, a hash written before it existed)
         */

        if (st->purchased
            && it[i].ms / 1000 <= (int64_t) st->purchased
            && ngx_http_retarget_forget_bought(st, &it[i].sku) != NGX_OK)
        {
            return NGX_ERROR;
        }

        it[i] = it[--st->cart.nelts];
    }

    /* a long cart is the visitor's, kept; old views are forgotten */

    if (ngx_http_retarget_keep_newest(st, &st->cart,
                                      NGX_HTTP_RETARGET_CART_MAX, 0)
        != NGX_OK
        || ngx_http_retarget_keep_newest(st, &st->viewed,
                                         NGX_HTTP_RETARGET_VIEWED_KEEP, 1)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget state: %ui fields, %ui cart lines, %ui viewed, "
                   "%ui to delete", n / 2, st->cart.nelts, st->viewed.nelts,
                   st->stale.nelts);

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_state_field(ngx_pool_t *pool, ngx_http_retarget_state_t *st,
    ngx_str_t *field, ngx_str_t *value)
{
    int64_t                    n;
    ngx_str_t                 *code, sku, name;
    ngx_uint_t                 cart;
    ngx_array_t               *items;
    ngx_http_retarget_item_t  *it;

    if (ngx_http_retarget_item_field(field, &cart, &sku) == NGX_OK) {
        items = cart ? &st->cart : &st->viewed;

        it = ngx_array_push(items);
        if (it == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_retarget_parse_item(&sku, value, cart, it) == NGX_OK) {
            return NGX_OK;
        }

        items->nelts--;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                       "retarget state: \"%V\" does not parse, deleted",
                       field);

        return ngx_http_retarget_stale(st, &sku);
    }

    if (ngx_http_retarget_code_field(field, &name) == NGX_OK) {
        code = ngx_array_push_n(&st->codes, 2);
        if (code == NULL) {
            return NGX_ERROR;
        }

        code[0] = name;
        code[1] = *value;

        return NGX_OK;
    }

    /* a number field that holds anything else counts as 0 */

    n = ngx_http_retarget_parse_number(value);

    if (n == NGX_ERROR) {
        n = 0;
    }

#define ngx_http_retarget_is(name)                                          \
    (field->len == name.len                                                  \
     && ngx_strncmp(field->data, name.data, name.len) == 0)

    if (ngx_http_retarget_is(ngx_http_retarget_f_cart_updated)) {
        st->cart_updated = (time_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_purchased)) {
        st->purchased = (time_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_last_reminder)) {
        st->last_reminder = (time_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_period_start)) {
        st->period_start = (time_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_dismissed)) {
        st->dismissed = (time_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_reminders)) {
        st->reminders = (ngx_uint_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_visit_last)) {
        st->visit_last = (time_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_visit_pages)) {
        st->visit_pages = (ngx_uint_t) n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_cart_cleared)) {
        st->cart_cleared = n;

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_seen)) {
        ngx_http_retarget_stamp(value, &st->seen, &st->seen_variant);

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_clicked)) {
        ngx_http_retarget_stamp(value, &st->clicked, &st->clicked_variant);

    } else if (ngx_http_retarget_is(ngx_http_retarget_f_variant)) {
        st->variant = *value;
    }

#undef ngx_http_retarget_is

    return NGX_OK;
}


/*
 * A cart line or a viewed product that a reminder may show: a sku and a
 * value within the bounds, a time, a quantity of at least 1 (clamped to
 * QTY_MAX), and a price that is an amount (or none).
 */

static ngx_int_t
ngx_http_retarget_parse_item(ngx_str_t *sku, ngx_str_t *value,
    ngx_uint_t cart, ngx_http_retarget_item_t *it)
{
    ngx_memzero(it, sizeof(ngx_http_retarget_item_t));

    if (sku->len > NGX_HTTP_RETARGET_SKU_MAX
        || value->len > NGX_HTTP_RETARGET_VALUE_MAX
        || ngx_http_retarget_line_decode(value, cart, it) != NGX_OK
        || it->ms <= 0 || it->qty <= 0)
    {
        return NGX_ERROR;
    }

    it->sku = *sku;

    /*
     * Whatever wrote the line: a quantity of at most QTY_MAX and a price
     * of at most AMOUNT_MAX (parse_amount()), so that no product or sum
     * of CART_MAX lines can overflow
     */

    if (it->qty > NGX_HTTP_RETARGET_QTY_MAX) {
        it->qty = NGX_HTTP_RETARGET_QTY_MAX;
    }

    if (it->cents < 0) {
        it->price.len = 0;
        it->cents = 0;
    }

    return NGX_OK;
}


/* "TS VARIANT" */

static void
ngx_http_retarget_stamp(ngx_str_t *value, time_t *t, ngx_str_t *variant)
{
    int64_t    n;
    ngx_str_t  ts;

    if (ngx_http_retarget_stamp_decode(value, &ts, variant) != NGX_OK) {
        return;
    }

    n = ngx_http_retarget_parse_number(&ts);

    *t = (n == NGX_ERROR) ? 0 : (time_t) n;
}


/*
 * The field of an item is to be deleted.  The sku points into the copy
 * of the field's name, right after its two-byte "c:" or "v:".
 */

static ngx_int_t
ngx_http_retarget_stale(ngx_http_retarget_state_t *st, ngx_str_t *sku)
{
    ngx_str_t  *f;

    f = ngx_array_push(&st->stale);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->data = sku->data - NGX_HTTP_RETARGET_ITEM_TAG_LEN;
    f->len = sku->len + NGX_HTTP_RETARGET_ITEM_TAG_LEN;

    return NGX_OK;
}


/*
 * The viewed product of a sku that was bought, if it was viewed before
 * the purchase: left out, and deleted.  Viewed again since, it stays.
 */

static ngx_int_t
ngx_http_retarget_forget_bought(ngx_http_retarget_state_t *st,
    ngx_str_t *sku)
{
    ngx_uint_t                 i;
    ngx_http_retarget_item_t  *it;

    it = st->viewed.elts;

    for (i = 0; i < st->viewed.nelts; i++) {

        if (it[i].sku.len != sku->len
            || ngx_strncmp(it[i].sku.data, sku->data, sku->len) != 0
            || it[i].ms / 1000 > (int64_t) st->purchased)
        {
            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, st->viewed.pool->log, 0,
                       "retarget state: viewed \"%V\" was bought, deleted",
                       sku);

        if (ngx_http_retarget_stale(st, &it[i].sku) != NGX_OK) {
            return NGX_ERROR;
        }

        it[i] = it[--st->viewed.nelts];

        /* a field is in the hash once */
        return NGX_OK;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_keep_newest(ngx_http_retarget_state_t *st,
    ngx_array_t *items, ngx_uint_t keep, ngx_uint_t forget)
{
    ngx_uint_t                 i;
    ngx_http_retarget_item_t  *it;

    it = items->elts;

    ngx_qsort(it, items->nelts, sizeof(ngx_http_retarget_item_t),
              ngx_http_retarget_newest_first);

    for (i = keep; forget && i < items->nelts; i++) {
        if (ngx_http_retarget_stale(st, &it[i].sku) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (items->nelts > keep) {
        items->nelts = keep;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_retarget_newest_first(const void *one, const void *two)
{
    const ngx_http_retarget_item_t  *a = one;
    const ngx_http_retarget_item_t  *b = two;

    if (a->ms == b->ms) {
        return 0;
    }

    return (a->ms > b->ms) ? -1 : 1;
}
