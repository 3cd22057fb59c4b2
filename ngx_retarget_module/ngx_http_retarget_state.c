
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor's state as the page's read finds it: the field/value pairs
 * of "<prefix>{vid}:meta".  Nothing there is trusted: the hash can hold
 * whatever anyone wrote into Redis, so a field that does not parse is
 * ignored, and a cart line or viewed product that does not parse is
 * listed for deletion.  This file needs no request, so it is fuzzed as
 * it is (fuzz/state_fuzz.c).
 */


#include "ngx_http_retarget_module.h"


/* viewed products a reminder may show; older ones are deleted */
#define NGX_HTTP_RETARGET_VIEWED_KEEP  8

/* cart lines a page shows at most: beyond, the oldest are left alone */
#define NGX_HTTP_RETARGET_CART_MAX     50


static ngx_int_t ngx_http_retarget_state_field(ngx_pool_t *pool,
    ngx_http_retarget_state_t *st, ngx_str_t *field, ngx_str_t *value);
static ngx_int_t ngx_http_retarget_parse_item(ngx_str_t *sku,
    ngx_str_t *value, ngx_uint_t cart, ngx_http_retarget_item_t *it);
static ngx_uint_t ngx_http_retarget_split(ngx_str_t *value, ngx_str_t *parts,
    ngx_uint_t n);
static int64_t ngx_http_retarget_number(ngx_str_t *s);
static void ngx_http_retarget_stamp(ngx_str_t *value, time_t *t,
    ngx_str_t *variant);
static ngx_int_t ngx_http_retarget_stale(ngx_http_retarget_state_t *st,
    ngx_str_t *sku);
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

        if (ngx_http_retarget_stale(st, &it[i].sku) != NGX_OK) {
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

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_state_field(ngx_pool_t *pool, ngx_http_retarget_state_t *st,
    ngx_str_t *field, ngx_str_t *value)
{
    ngx_str_t                 *code, sku;
    ngx_uint_t                 cart;
    ngx_array_t               *items;
    ngx_http_retarget_item_t  *it;

    if (field->len > 2 && field->data[1] == ':'
        && (field->data[0] == 'c' || field->data[0] == 'v'))
    {
        cart = (field->data[0] == 'c');
        items = cart ? &st->cart : &st->viewed;

        sku.data = field->data + 2;
        sku.len = field->len - 2;

        it = ngx_array_push(items);
        if (it == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_retarget_parse_item(&sku, value, cart, it) == NGX_OK) {
            return NGX_OK;
        }

        items->nelts--;

        return ngx_http_retarget_stale(st, &sku);
    }

    if (field->len > 5 && ngx_strncmp(field->data, "code:", 5) == 0) {
        code = ngx_array_push_n(&st->codes, 2);
        if (code == NULL) {
            return NGX_ERROR;
        }

        code[0].data = field->data + 5;
        code[0].len = field->len - 5;
        code[1] = *value;

        return NGX_OK;
    }

#define ngx_http_retarget_is(name)                                          \
    (field->len == sizeof(name) - 1                                          \
     && ngx_strncmp(field->data, name, sizeof(name) - 1) == 0)

    if (ngx_http_retarget_is("cart_updated")) {
        st->cart_updated = (time_t) ngx_http_retarget_number(value);

    } else if (ngx_http_retarget_is("purchased")) {
        st->purchased = (time_t) ngx_http_retarget_number(value);

    } else if (ngx_http_retarget_is("last_reminder")) {
        st->last_reminder = (time_t) ngx_http_retarget_number(value);

    } else if (ngx_http_retarget_is("period_start")) {
        st->period_start = (time_t) ngx_http_retarget_number(value);

    } else if (ngx_http_retarget_is("dismissed")) {
        st->dismissed = (time_t) ngx_http_retarget_number(value);

    } else if (ngx_http_retarget_is("reminders")) {
        st->reminders = (ngx_uint_t) ngx_http_retarget_number(value);

    } else if (ngx_http_retarget_is("cart_cleared")) {
        st->cart_cleared = ngx_http_retarget_number(value);

    } else if (ngx_http_retarget_is("seen")) {
        ngx_http_retarget_stamp(value, &st->seen, &st->seen_variant);

    } else if (ngx_http_retarget_is("clicked")) {
        ngx_http_retarget_stamp(value, &st->clicked, &st->clicked_variant);

    } else if (ngx_http_retarget_is("variant")) {
        st->variant = *value;
    }

#undef ngx_http_retarget_is

    return NGX_OK;
}


/*
 * A cart line "MS\tQTY\tPRICE\tNAME\tIMAGE\tURL", or a viewed product
 * "MS\tPRICE\tNAME\tIMAGE\tURL".
 */

static ngx_int_t
ngx_http_retarget_parse_item(ngx_str_t *sku, ngx_str_t *value,
    ngx_uint_t cart, ngx_http_retarget_item_t *it)
{
    ngx_str_t   parts[6], *p;
    ngx_uint_t  n;

    n = cart ? 6 : 5;

    if (ngx_http_retarget_split(value, parts, n) != n) {
        return NGX_ERROR;
    }

    ngx_memzero(it, sizeof(ngx_http_retarget_item_t));

    it->sku = *sku;
    it->ms = ngx_http_retarget_number(&parts[0]);
    it->qty = 1;

    p = &parts[1];

    if (cart) {
        it->qty = ngx_http_retarget_number(p++);

        if (it->qty <= 0) {
            return NGX_ERROR;
        }
    }

    if (it->ms <= 0) {
        return NGX_ERROR;
    }

    it->price = p[0];
    it->name = p[1];
    it->image = p[2];
    it->url = p[3];

    if (it->price.len
        && ngx_http_retarget_parse_amount(&it->price, &it->cents) != NGX_OK)
    {
        it->price.len = 0;
    }

    return NGX_OK;
}


/* splits at tabs into exactly n parts; returns how many were found */

static ngx_uint_t
ngx_http_retarget_split(ngx_str_t *value, ngx_str_t *parts, ngx_uint_t n)
{
    u_char      *p, *last, *tab;
    ngx_uint_t   i;

    p = value->data;
    last = p + value->len;

    for (i = 0; i < n; i++) {
        tab = (i == n - 1) ? NULL : ngx_strlchr(p, last, '\t');

        parts[i].data = p;
        parts[i].len = (tab ? tab : last) - p;

        if (tab == NULL) {
            return (ngx_strlchr(p, last, '\t') == NULL) ? i + 1 : 0;
        }

        p = tab + 1;
    }

    return 0;
}


/* a non-negative number, or 0 when the field holds anything else */

static int64_t
ngx_http_retarget_number(ngx_str_t *s)
{
    int64_t   n;
    u_char   *p, *last;

    if (s->len == 0 || s->len > 18) {
        return 0;
    }

    n = 0;
    last = s->data + s->len;

    for (p = s->data; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }

        n = n * 10 + (*p - '0');
    }

    return n;
}


/* "TS VARIANT" */

static void
ngx_http_retarget_stamp(ngx_str_t *value, time_t *t, ngx_str_t *variant)
{
    u_char     *sp;
    ngx_str_t   ts;

    sp = ngx_strlchr(value->data, value->data + value->len, ' ');

    if (sp == NULL) {
        return;
    }

    ts.data = value->data;
    ts.len = sp - value->data;

    *t = (time_t) ngx_http_retarget_number(&ts);

    variant->data = sp + 1;
    variant->len = value->data + value->len - (sp + 1);
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

    f->data = sku->data - 2;
    f->len = sku->len + 2;

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


/* "12", "12.5", "12.50": at most two decimals, kept in cents */

ngx_int_t
ngx_http_retarget_parse_amount(ngx_str_t *v, int64_t *cents)
{
    u_char      *p, *last;
    int64_t      n;
    ngx_uint_t   digits, decimals, dot;

    n = 0;
    digits = 0;
    decimals = 0;
    dot = 0;

    last = v->data + v->len;

    for (p = v->data; p < last; p++) {

        if (*p == '.' && !dot && digits) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || digits == 12 || decimals == 2) {
            return NGX_ERROR;
        }

        n = n * 10 + (*p - '0');
        digits++;
        decimals += dot;
    }

    if (digits == 0 || (dot && decimals == 0)) {
        return NGX_ERROR;
    }

    while (decimals++ < 2) {
        n *= 10;
    }

    *cents = n;

    return NGX_OK;
}
