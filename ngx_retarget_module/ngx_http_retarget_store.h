
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The Redis data model: every key, every field of the visitor's meta
 * hash, the encoding of its cart lines and viewed products, and the one
 * way commands are built.  No other file spells a key or a meta field.
 *
 * Keys (prefix "rt:" by default, retarget_redis prefix=):
 *
 *   key                 type    content
 *   <prefix>{vid}:meta  hash    everything a page's one read needs:
 *                               first_seen, last_seen, cart_updated,
 *                               checkout, purchased, user (unix seconds);
 *                               last_reminder, reminders (visits with a
 *                               reminder in the period), period_start,
 *                               visit_last (the last page of the visit
 *                               with the latest reminder), visit_pages
 *                               (reminders in that visit), dismissed,
 *                               seen and clicked ("TS VARIANT"), variant,
 *                               cart_cleared (ms);
 *                               c:SKU = "MS\tQTY\tPRICE\tNAME\tIMAGE\tURL"
 *                               or "...\tURL\tLINE" (LINE: the shop's
 *                               own id or key of the line, cart_add
 *                               line=; an add without line= keeps
 *                               it) per cart line; v:SKU =
 *                               "MS\tPRICE\tNAME\tIMAGE\tURL" per viewed
 *                               product (the 8 newest are kept); code:NAME
 *                               a pinned pool code
 *   <prefix>{vid}:cart  hash    sku -> qty, for email workers
 *   <prefix>{vid}:viewed list   recently viewed skus, newest first, 20 at
 *                               most
 *   <prefix>{vid}:events list   the ids of the visitor's entries on the
 *                               event stream, oldest first, 1000 at most:
 *                               what "forget" deletes and "me" shows
 *   <prefix>p:SKU       hash    the catalogue: name, price, currency,
 *                               image, url, in_stock ("0": out of stock,
 *                               anything else or absent: in stock), what
 *                               reminders show (ngx_http_retarget_catalog.c);
 *                               written by "retarget_event ... catalog"
 *                               (with the retention TTL, refreshed by each
 *                               write that changes it), by the shop, and
 *                               by the feed loader (util/)
 *   <prefix>carts       zset    vid -> time of the last cart change: the
 *                               abandoned-cart queue; members older than
 *                               the retention are removed each second
 *   <prefix>stats:YYYYMMDD
 *                       hash    the daily counters (UTC), kept 400 days
 *   <prefix>events      stream  field "e": JSON with a unique "id", "type",
 *                               "ts", "vid" (returning visitors only),
 *                               "new", "uri" and the event's values but
 *                               "user"; trimmed by count (maxlen) and by
 *                               age (the retention), each second
 *   <prefix>order:ID    string  set once per order id, TTL = retention
 *   <prefix>out_of_stock set    skus left out of reminders (the shop's)
 *   <prefix>codes:NAME  list    unique incentive codes of pool:NAME (the
 *                               shop's)
 *   <prefix>people:YYYYMMDD:KIND:ARM
 *                       HLL     the distinct visitors of an arm (a variant,
 *                               or "holdout") on a UTC day: KIND eligible
 *                               (shown, or withheld for the holdout),
 *                               clickers, converters (a purchase within
 *                               max(click, view window) of the reminder
 *                               seen), click_converters, view_converters
 *                               (the attribution's two halves); PFADD vid,
 *                               kept 100 days.  Registers only: no visitor
 *                               id can be read back, so "forget" leaves
 *                               them alone
 *   <prefix>optimize:ARMS
 *                       hash    retarget_optimize's weights (ARMS: the
 *                               variants joined by ","): field the
 *                               period's start, value "A=0.7012,B=0.2988";
 *                               written once per period (HSETNX), the
 *                               field of 1000 periods back deleted, kept
 *                               100 days
 *
 * Per-visitor keys share the hash tag {vid} (one Redis Cluster slot) and
 * carry the retarget_retention TTL.
 */


#ifndef _NGX_HTTP_RETARGET_STORE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_STORE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/*
 * The most entries of one visitor on the event stream: beyond, the
 * visitor's oldest entry is deleted (its id leaves the index).
 */
#define NGX_HTTP_RETARGET_STREAM_PER_VISITOR  1000


/* the length of "c:", "v:" before the sku of an item's field */
#define NGX_HTTP_RETARGET_ITEM_TAG_LEN  2


/*
 * The bounds of a visitor's data.  The write path keeps them (a cart_add
 * beyond them is refused and counted "cart_full", a viewed product
 * "meta_full", a quantity beyond QTY_MAX clamped and counted
 * "qty_clamped"); the read path ignores what lies beyond them, for
 * whatever wrote the hash.
 *
 *   CART_MAX      lines of a cart (c:SKU, and the fields of {vid}:cart)
 *   VIEWED_KEEP   viewed products (v:SKU) a page's read keeps
 *   META_MAX      fields of {vid}:meta: 16 fixed ones, the pinned codes,
 *                 the cart's lines and the viewed products
 *   QTY_MAX       the quantity of a cart line
 *   AMOUNT_MAX    a price or order value, in cents (99,999,999.99)
 *   SKU_MAX ...   the longest value of each parameter, in bytes
 *   LINE_MAX      the longest line id of the shop (cart_add line=)
 *   VALUE_MAX     the longest meta value a read accepts: a cart line of
 *                 the longest values,
 *                 "MS\tQTY\tPRICE\tNAME\tIMAGE\tURL\tLINE"
 *   READ_MAX      fields a page's read looks at: META_MAX with room for
 *                 simultaneous writes of one visitor (see META_MAX)
 *
 * So the hash a page reads holds at most META_MAX fields of at most
 * 2 + SKU_MAX and VALUE_MAX bytes: 100 x (66 + 2371) = 243,700 bytes
 * (with the RESP framing, under 250 KB), and its sums cannot overflow:
 * CART_MAX x QTY_MAX x AMOUNT_MAX < 2^63.
 */
#define NGX_HTTP_RETARGET_CART_MAX      50
#define NGX_HTTP_RETARGET_VIEWED_KEEP   8
#define NGX_HTTP_RETARGET_META_MAX      100
#define NGX_HTTP_RETARGET_QTY_MAX       999
#define NGX_HTTP_RETARGET_AMOUNT_MAX    9999999999LL
#define NGX_HTTP_RETARGET_SKU_MAX       64
#define NGX_HTTP_RETARGET_NAME_MAX      200
#define NGX_HTTP_RETARGET_URL_MAX       1024
#define NGX_HTTP_RETARGET_LINE_MAX      64
#define NGX_HTTP_RETARGET_VALUE_MAX                                          \
    (NGX_INT64_LEN + 1 + NGX_INT64_LEN + 1 + 13 + 1                           \
     + NGX_HTTP_RETARGET_NAME_MAX + 1 + 2 * NGX_HTTP_RETARGET_URL_MAX + 1     \
     + 1 + NGX_HTTP_RETARGET_LINE_MAX)
#define NGX_HTTP_RETARGET_READ_MAX      (2 * NGX_HTTP_RETARGET_META_MAX)


/*
 * A change of one cart line that only Redis can make, because only the
 * line knows its sku or its quantity: cart_remove line=, cart_update.
 */
typedef struct {
    ngx_str_t                      sku;       /* or empty: by line */
    ngx_str_t                      line;
    int64_t                        qty;       /* the new one, or ... */
    ngx_uint_t                     delta;     /* ... added to the old */
    ngx_str_t                     *now;
} ngx_http_retarget_cart_change_t;


typedef enum {
    ngx_http_retarget_key_meta = 0,        /* <prefix>{vid}:meta */
    ngx_http_retarget_key_cart,            /* <prefix>{vid}:cart */
    ngx_http_retarget_key_viewed,          /* <prefix>{vid}:viewed */
    ngx_http_retarget_key_carts,           /* <prefix>carts */
    ngx_http_retarget_key_events,          /* <prefix>events */
    ngx_http_retarget_key_stats,           /* <prefix>stats:DAY */
    ngx_http_retarget_key_order,           /* <prefix>order:ID */
    ngx_http_retarget_key_codes,           /* <prefix>codes:NAME */
    ngx_http_retarget_key_product,         /* <prefix>p:SKU */
    ngx_http_retarget_key_out_of_stock,    /* <prefix>out_of_stock */
    ngx_http_retarget_key_stream_ids,      /* <prefix>{vid}:events */
    ngx_http_retarget_key_people,          /* <prefix>people:DAY:KIND:ARM */
    ngx_http_retarget_key_optimize         /* <prefix>optimize:ARMS */
} ngx_http_retarget_key_e;


/* the kinds of <prefix>people:DAY:KIND:ARM */
typedef enum {
    ngx_http_retarget_people_eligible = 0,
    ngx_http_retarget_people_clickers,
    ngx_http_retarget_people_converters,
    ngx_http_retarget_people_click_converters,
    ngx_http_retarget_people_view_converters,
    ngx_http_retarget_people_kinds
} ngx_http_retarget_people_e;

/* how long a day's distinct visitors are kept */
#define NGX_HTTP_RETARGET_PEOPLE_TTL    (100 * 86400)

/* "YYYYMMDD", UTC */
#define NGX_HTTP_RETARGET_DAY_LEN       8


/* the fields of <prefix>{vid}:meta */
extern ngx_str_t  ngx_http_retarget_f_first_seen;
extern ngx_str_t  ngx_http_retarget_f_last_seen;
extern ngx_str_t  ngx_http_retarget_f_cart_updated;
extern ngx_str_t  ngx_http_retarget_f_checkout;
extern ngx_str_t  ngx_http_retarget_f_purchased;
extern ngx_str_t  ngx_http_retarget_f_user;
extern ngx_str_t  ngx_http_retarget_f_last_reminder;
extern ngx_str_t  ngx_http_retarget_f_reminders;
extern ngx_str_t  ngx_http_retarget_f_period_start;
extern ngx_str_t  ngx_http_retarget_f_dismissed;
extern ngx_str_t  ngx_http_retarget_f_seen;
extern ngx_str_t  ngx_http_retarget_f_clicked;
extern ngx_str_t  ngx_http_retarget_f_variant;
extern ngx_str_t  ngx_http_retarget_f_cart_cleared;
extern ngx_str_t  ngx_http_retarget_f_visit_last;
extern ngx_str_t  ngx_http_retarget_f_visit_pages;

/* the count of the fixed fields above */
#define NGX_HTTP_RETARGET_META_FIXED    16

/* the fields of <prefix>p:SKU: name, price, image, url, currency, in_stock */
#define NGX_HTTP_RETARGET_PRODUCT_FIELDS  6
extern ngx_str_t  ngx_http_retarget_product_fields[];

/* the fields of <prefix>stats:DAY that name a custom event: events:NAME */
extern ngx_str_t  ngx_http_retarget_c_events;


/* keys */
size_t ngx_http_retarget_key_len(ngx_str_t *prefix,
    ngx_http_retarget_key_e key, ngx_str_t *id);
u_char *ngx_http_retarget_key_put(u_char *p, ngx_str_t *prefix,
    ngx_http_retarget_key_e key, ngx_str_t *id);

/* meta fields with a name in them: c:SKU, v:SKU, code:POOL */
ngx_int_t ngx_http_retarget_item_field(ngx_str_t *field, ngx_uint_t *cart,
    ngx_str_t *sku);
ngx_int_t ngx_http_retarget_item_name(ngx_pool_t *pool, ngx_uint_t cart,
    ngx_str_t *sku, ngx_str_t *field);
ngx_int_t ngx_http_retarget_code_field(ngx_str_t *field, ngx_str_t *pool);
size_t ngx_http_retarget_code_field_len(ngx_str_t *pool);
u_char *ngx_http_retarget_code_field_put(u_char *p, ngx_str_t *pool);

/* the values of c:SKU and v:SKU */
ngx_int_t ngx_http_retarget_line_decode(ngx_str_t *value, ngx_uint_t cart,
    ngx_http_retarget_item_t *it);
size_t ngx_http_retarget_line_qty(u_char *line, size_t len, size_t gap,
    int64_t qty);
ngx_int_t ngx_http_retarget_line_encode(ngx_pool_t *pool,
    ngx_http_retarget_item_t *it, ngx_str_t *ms, ngx_str_t *out);

/* numbers as they are stored and as events give them */
int64_t ngx_http_retarget_parse_number(ngx_str_t *s);
ngx_int_t ngx_http_retarget_parse_amount(ngx_str_t *v, int64_t *cents);


/* the values of seen and clicked: "TS VARIANT" */
ngx_int_t ngx_http_retarget_stamp_decode(ngx_str_t *value, ngx_str_t *ts,
    ngx_str_t *variant);
ngx_int_t ngx_http_retarget_stamp_encode(ngx_pool_t *pool, time_t ts,
    ngx_str_t *variant, ngx_str_t *out);

/* commands on keys (ngx_http_retarget_cmd.h builds the rest) */
ngx_int_t ngx_http_retarget_arg_key(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_http_retarget_key_e key, ngx_str_t *id);
ngx_http_retarget_cmd_t *ngx_http_retarget_key_cmd(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    const char *name, ngx_http_retarget_key_e key, ngx_str_t *id);
ngx_int_t ngx_http_retarget_send_cmd(ngx_http_retarget_cmd_t *cmd);
void ngx_http_retarget_send_cmds(ngx_http_retarget_cmd_t *cmds, ngx_uint_t n);

/* writes */
ngx_int_t ngx_http_retarget_expire(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    ngx_http_retarget_key_e key, ngx_str_t *vid);
ngx_int_t ngx_http_retarget_meta_set(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *fv, ngx_uint_t n);
ngx_int_t ngx_http_retarget_item_set(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_http_retarget_item_t *it, ngx_uint_t cart, ngx_str_t *ms,
    size_t *gap);
ngx_int_t ngx_http_retarget_product_set(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    ngx_http_retarget_item_t *it, ngx_str_t *in_stock);
ngx_int_t ngx_http_retarget_cart_line_op(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_http_retarget_cart_change_t *ch);
ngx_int_t ngx_http_retarget_purchase_clear(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *cleared);
ngx_int_t ngx_http_retarget_cart_sync(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *now, ngx_str_t *cleared, ngx_str_t *lines);
ngx_int_t ngx_http_retarget_cart_sync_line(ngx_pool_t *pool,
    ngx_http_retarget_item_t *it, ngx_str_t *ms, ngx_str_t *out);
ngx_int_t ngx_http_retarget_stream_add(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *entry);

/* reads and the erasure */
ngx_int_t ngx_http_retarget_stream_read(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_str_t *vid);
ngx_int_t ngx_http_retarget_forget(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_str_t *visitor);

/* the distinct visitors of an arm: <prefix>people:DAY:KIND:ARM */
void ngx_http_retarget_utc_day(time_t t, u_char *day);
ngx_int_t ngx_http_retarget_arg_people(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    u_char *day, ngx_http_retarget_people_e kind, ngx_str_t *arm);
ngx_int_t ngx_http_retarget_people_add(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    ngx_http_retarget_people_e kind, ngx_str_t *arm, ngx_str_t *vid);

/* retention of the shared keys that hold visitors' data */
void ngx_http_retarget_expire_old(ngx_http_retarget_main_conf_t *rmcf);


#endif /* _NGX_HTTP_RETARGET_STORE_H_INCLUDED_ */
