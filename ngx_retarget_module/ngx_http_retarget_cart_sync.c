
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * cart_sync: the visitor's cart as the shop answers it whole (the
 * WooCommerce Store API's "items", Shopify's cart.js "items", Medusa's
 * "cart.items", ...): a JSON array of items, each value taken by a path
 * inside the item and checked as cart_add checks its values.  An item
 * without a usable sku or quantity is left out, a value that fails its
 * check leaves the line without it; at most CART_MAX lines are kept,
 * the first ones, each sku once (quantities of repeated skus added).
 * The writes are ngx_http_retarget_event.c's, the script the store's.
 */


#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_event.h"
#include "ngx_http_retarget_json.h"
#include "ngx_http_retarget_store.h"


typedef struct {
    ngx_str_t                      path[ngx_http_retarget_p_if];
    ngx_int_t                      minor;     /* -1: none, -2: by path */
} ngx_http_retarget_sync_paths_t;


static void ngx_http_retarget_sync_paths(ngx_http_retarget_event_t *ev,
    ngx_http_retarget_sync_paths_t *sp);
static ngx_int_t ngx_http_retarget_sync_item(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev, ngx_http_retarget_sync_paths_t *sp,
    json_t *item, ngx_http_retarget_item_t *it);
static ngx_int_t ngx_http_retarget_sync_value(ngx_http_request_t *r,
    json_t *item, ngx_str_t *path, ngx_str_t *out);
static ngx_int_t ngx_http_retarget_sync_price(ngx_http_request_t *r,
    ngx_http_retarget_sync_paths_t *sp, json_t *item,
    ngx_http_retarget_item_t *it);
static void ngx_http_retarget_sync_merge(ngx_array_t *items,
    ngx_http_retarget_item_t *it, ngx_uint_t *merged);
static void ngx_http_retarget_json_cleanup(void *data);


/*
 * Items of the shop's cart left out of the module's: without a sku or a
 * quantity, or beyond CART_MAX lines
 */
static ngx_str_t  ngx_http_retarget_c_sync_item =
    ngx_string("rejected:sync_item");


/*
 * The paths inside each item when the configuration names none, by
 * parameter (the parameters that are no item's value have none)
 */
static struct {
    ngx_uint_t                     param;
    ngx_str_t                      path;
} ngx_http_retarget_sync_defaults[] = {
    { ngx_http_retarget_p_sku, ngx_string("sku") },
    { ngx_http_retarget_p_qty, ngx_string("quantity") },
    { ngx_http_retarget_p_price, ngx_string("price") },
    { ngx_http_retarget_p_name, ngx_string("name") },
    { ngx_http_retarget_p_image, ngx_string("image") },
    { ngx_http_retarget_p_url, ngx_string("url") },
    { ngx_http_retarget_p_line, ngx_string("key") }
};


/*
 * The new cart in ev->items: NGX_ERROR (the event is rejected) when
 * items= is not a JSON array; an empty array is an empty cart.
 */

ngx_int_t
ngx_http_retarget_cart_sync_values(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev)
{
    json_t                          *root, *item;
    size_t                           i, n;
    ngx_uint_t                       merged, skipped;
    ngx_pool_cleanup_t              *cln;
    ngx_http_retarget_item_t         it, *kept;
    ngx_http_retarget_sync_paths_t   sp;

    ev->items = ngx_array_create(r->pool, 4,
                                 sizeof(ngx_http_retarget_item_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ev->items == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    root = ngx_http_retarget_json_parse(ev->v[ngx_http_retarget_p_items].data,
                                        ev->v[ngx_http_retarget_p_items].len);

    if (!json_is_array(root)) {
        if (root != NULL) {
            json_decref(root);
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: event \"%V\" rejected: \"items=\" is not "
                      "a JSON array", &ev->conf->name);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_retarget_json_cleanup;
    cln->data = root;

    ngx_http_retarget_sync_paths(ev, &sp);

    n = json_array_size(root);
    merged = 0;
    skipped = 0;

    for (i = 0; i < n; i++) {
        item = json_array_get(root, i);

        if (ngx_http_retarget_sync_item(r, ev, &sp, item, &it) != NGX_OK) {
            skipped++;
            continue;
        }

        ngx_http_retarget_sync_merge(ev->items, &it, &merged);

        if (merged) {
            merged = 0;
            continue;
        }

        if (ev->items->nelts == NGX_HTTP_RETARGET_CART_MAX) {
            /* the shop's cart is longer than a visitor's may be */
            skipped++;
            continue;
        }

        kept = ngx_array_push(ev->items);
        if (kept == NULL) {
            return NGX_ERROR;
        }

        *kept = it;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget cart_sync: %uz items, %ui lines, %ui left out",
                   n, ev->items->nelts, skipped);

    if (skipped) {
        /* the module's cart is then shorter than the shop's: visible */
        ngx_http_retarget_count(&ngx_http_retarget_c_sync_item, skipped);
    }

    return NGX_OK;
}


/* the paths of the configuration, literal text, or the defaults */

static void
ngx_http_retarget_sync_paths(ngx_http_retarget_event_t *ev,
    ngx_http_retarget_sync_paths_t *sp)
{
    u_char      *p;
    ngx_str_t   *m;
    ngx_uint_t   k;

    ngx_memzero(sp->path, sizeof(sp->path));

    for (k = 0; k < sizeof(ngx_http_retarget_sync_defaults)
                    / sizeof(ngx_http_retarget_sync_defaults[0]); k++)
    {
        sp->path[ngx_http_retarget_sync_defaults[k].param] =
            ngx_http_retarget_sync_defaults[k].path;
    }

    for (k = 0; k < ngx_http_retarget_p_if; k++) {
        if (ev->conf->params[k] != NULL) {
            sp->path[k] = ev->v[k];
        }
    }

    /* minor=N: digits; minor=PATH: N from each item */

    m = &ev->v[ngx_http_retarget_p_minor];
    sp->minor = -1;

    if (m->len == 0) {
        return;
    }

    sp->minor = -2;

    for (p = m->data; p < m->data + m->len; p++) {
        if (*p < '0' || *p > '9') {
            return;
        }
    }

    sp->minor = (m->len == 1) ? m->data[0] - '0' : -2;
}


/* one item of the shop's cart: NGX_DECLINED when it makes no line */

static ngx_int_t
ngx_http_retarget_sync_item(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev, ngx_http_retarget_sync_paths_t *sp,
    json_t *item, ngx_http_retarget_item_t *it)
{
    int64_t                     n;
    ngx_str_t                   qty, *v;
    ngx_uint_t                  k;
    ngx_http_retarget_event_t   check;

    static ngx_uint_t  kept[] = {
        ngx_http_retarget_p_name,
        ngx_http_retarget_p_image,
        ngx_http_retarget_p_url,
        ngx_http_retarget_p_line
    };

    ngx_memzero(it, sizeof(ngx_http_retarget_item_t));
    ngx_memzero(&check, sizeof(ngx_http_retarget_event_t));
    check.conf = ev->conf;

    if (!json_is_object(item)
        || ngx_http_retarget_sync_value(r, item,
                                        &sp->path[ngx_http_retarget_p_sku],
                                        &it->sku)
           != NGX_OK
        || ngx_http_retarget_event_check(ngx_http_retarget_p_sku, &it->sku,
                                         &check)
           != NGX_OK)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget cart_sync: an item without a usable sku");
        return NGX_DECLINED;
    }

    /* no quantity: one; 0 or not a number: not in the cart */

    it->qty = 1;

    if (ngx_http_retarget_sync_value(r, item,
                                     &sp->path[ngx_http_retarget_p_qty],
                                     &qty)
        == NGX_OK)
    {
        n = ngx_http_retarget_parse_number(&qty);

        if (n <= 0) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget cart_sync: \"%V\" quantity \"%V\", "
                           "left out", &it->sku, &qty);
            return NGX_DECLINED;
        }

        it->qty = ngx_min(n, NGX_HTTP_RETARGET_QTY_MAX);
    }

    for (k = 0; k < sizeof(kept) / sizeof(kept[0]); k++) {

        v = (kept[k] == ngx_http_retarget_p_name) ? &it->name
            : (kept[k] == ngx_http_retarget_p_image) ? &it->image
            : (kept[k] == ngx_http_retarget_p_url) ? &it->url : &it->line;

        if (ngx_http_retarget_sync_value(r, item, &sp->path[kept[k]], v)
            != NGX_OK)
        {
            continue;
        }

        if (kept[k] != ngx_http_retarget_p_name
            && kept[k] != ngx_http_retarget_p_line
            && ngx_http_retarget_protocol_relative(r->pool, v) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_retarget_event_check(kept[k], v, &check) != NGX_OK) {
            /* the line without it, rather than no line */
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget cart_sync: \"%V\": invalid %s left out",
                           &it->sku, ngx_http_retarget_json_keys[kept[k]]);
            ngx_str_null(v);
        }
    }

    return ngx_http_retarget_sync_price(r, sp, item, it);
}


/* the text of the value at path inside item; NGX_DECLINED: none */

static ngx_int_t
ngx_http_retarget_sync_value(ngx_http_request_t *r, json_t *item,
    ngx_str_t *path, ngx_str_t *out)
{
    json_t  *v;

    ngx_str_null(out);

    if (path->len == 0) {
        return NGX_DECLINED;
    }

    v = ngx_http_retarget_json_path(item, path->data, path->len);

    if (v == NULL || ngx_http_retarget_json_text(r->pool, v, out) != NGX_OK
        || out->len == 0)
    {
        ngx_str_null(out);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The price as cart_add keeps it ("12.50"), from minor units when
 * minor= says so: a price that cannot be read leaves the line without
 */

static ngx_int_t
ngx_http_retarget_sync_price(ngx_http_request_t *r,
    ngx_http_retarget_sync_paths_t *sp, json_t *item,
    ngx_http_retarget_item_t *it)
{
    u_char     *p;
    int64_t     minor;
    ngx_str_t   text, m;

    if (ngx_http_retarget_sync_value(r, item,
                                     &sp->path[ngx_http_retarget_p_price],
                                     &text)
        != NGX_OK)
    {
        return NGX_OK;
    }

    minor = sp->minor;

    if (minor == -2) {
        minor = -1;

        if (ngx_http_retarget_sync_value(r, item,
                                         &sp->path[ngx_http_retarget_p_minor],
                                         &m)
            == NGX_OK)
        {
            minor = ngx_http_retarget_parse_number(&m);
        }

        if (minor < 0 || minor > 4) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget cart_sync: \"%V\": no minor unit, no "
                           "price", &it->sku);
            return NGX_OK;
        }
    }

    /* the rules of price= (ngx_http_retarget_event_amount()) */

    if (ngx_http_retarget_event_amount(&text,
                                       minor < 0 ? NGX_HTTP_RETARGET_MINOR_NONE
                                                 : (ngx_int_t) minor,
                                       &it->cents)
        != NGX_OK)
    {
        return NGX_OK;
    }

    if (minor < 0 && ngx_http_retarget_parse_amount(&text, &it->cents)
                     == NGX_OK)
    {
        /* kept as sent when the store reads it back as it is */
        it->price = text;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    it->price.data = p;
    it->price.len = ngx_sprintf(p, "%L.%02L", it->cents / 100,
                                it->cents % 100)
                    - p;

    return NGX_OK;
}


/* a sku already in the new cart: its quantity grows, *merged = 1 */

static void
ngx_http_retarget_sync_merge(ngx_array_t *items, ngx_http_retarget_item_t *it,
    ngx_uint_t *merged)
{
    ngx_uint_t                 i;
    ngx_http_retarget_item_t  *line;

    line = items->elts;

    for (i = 0; i < items->nelts; i++) {
        if (line[i].sku.len == it->sku.len
            && ngx_strncmp(line[i].sku.data, it->sku.data, it->sku.len) == 0)
        {
            line[i].qty = ngx_min(line[i].qty + it->qty,
                                  NGX_HTTP_RETARGET_QTY_MAX);
            *merged = 1;
            return;
        }
    }
}


static void
ngx_http_retarget_json_cleanup(void *data)
{
    json_decref((json_t *) data);
}
