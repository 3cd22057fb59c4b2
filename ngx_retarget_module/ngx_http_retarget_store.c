
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The Redis data model (see ngx_http_retarget_store.h for the keys): the
 * key names, the fields of the visitor's meta hash, the line codec of
 * its cart lines and viewed products, the numbers stored there, and the
 * one command builder every file sends its commands with.
 */


#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_redis.h"


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     visitor;   /* <prefix>{vid}<name> */
} ngx_http_retarget_key_name_t;


static ngx_http_retarget_cmd_t *ngx_http_retarget_cart_script(
    ngx_pool_t *pool, ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    ngx_str_t *vid, ngx_str_t *script);


static ngx_http_retarget_key_name_t  ngx_http_retarget_keys[] = {
    { ngx_string(":meta"), 1 },
    { ngx_string(":cart"), 1 },
    { ngx_string(":viewed"), 1 },
    { ngx_string("carts"), 0 },
    { ngx_string("events"), 0 },
    { ngx_string("stats:"), 0 },
    { ngx_string("order:"), 0 },
    { ngx_string("codes:"), 0 },
    { ngx_string("p:"), 0 },
    { ngx_string("out_of_stock"), 0 },
    { ngx_string(":events"), 1 },
    { ngx_string("people:"), 0 },
    { ngx_string("optimize:"), 0 }
};


/* the KIND of <prefix>people:DAY:KIND:ARM */
static ngx_str_t  ngx_http_retarget_people_names[] = {
    ngx_string("eligible"),
    ngx_string("clickers"),
    ngx_string("converters"),
    ngx_string("click_converters"),
    ngx_string("view_converters")
};


/*
 * A returning visitor's stream entry and the index of the visitor's
 * entries, in one step: the entry can never be on the stream without its
 * id in the index, so "forget" finds every one of them.  A visitor with
 * more than ARGV[4] entries on the stream loses the oldest one.
 *
 * KEYS: <prefix>events, <prefix>{vid}:events
 * ARGV: maxlen, the entry's JSON, retention, the cap of the index
 */
static ngx_str_t  ngx_http_retarget_lua_stream_add = ngx_string(
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', "
    "'e', ARGV[2]) "
    "if redis.call('RPUSH', KEYS[2], id) > tonumber(ARGV[4]) then "
    "redis.call('XDEL', KEYS[1], redis.call('LPOP', KEYS[2])) end "
    "redis.call('EXPIRE', KEYS[2], ARGV[3]) "
    "return id");

/*
 * "forget": the visitor's stream entries (by the index), then every key
 * of the visitor and its entry in the abandoned-cart queue, atomically.
 * Answers the number of stream entries deleted.
 *
 * KEYS: <prefix>events, <prefix>{vid}:events, :meta, :cart, :viewed,
 *       <prefix>carts
 * ARGV: vid
 */
static ngx_str_t  ngx_http_retarget_lua_forget = ngx_string(
    "local ids = redis.call('LRANGE', KEYS[2], 0, -1) "
    "local n = 0 "
    "for i = 1, #ids, 100 do "
    "n = n + redis.call('XDEL', KEYS[1], "
    "unpack(ids, i, math.min(i + 99, #ids))) end "
    "redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5]) "
    "redis.call('ZREM', KEYS[6], ARGV[1]) "
    "return n");

/*
 * "me": the visitor's entries still on the stream, oldest first, as
 * XRANGE answers them: [id, [field, value]].
 *
 * KEYS: <prefix>events, <prefix>{vid}:events
 */
static ngx_str_t  ngx_http_retarget_lua_stream_read = ngx_string(
    "local ids = redis.call('LRANGE', KEYS[2], 0, -1) "
    "local out = {} "
    "for _, id in ipairs(ids) do "
    "local e = redis.call('XRANGE', KEYS[1], id, id) "
    "if e[1] then out[#out + 1] = e[1] end end "
    "return out");


/*
 * cart_remove line= and cart_update: the visitor's line found by its sku
 * (ARGV[1]) or, without one, by the shop's line id (ARGV[2]: the 7th
 * part of a c:SKU value, among the first ARGV[9] cart lines), its
 * quantity set to ARGV[4] (ARGV[3] "0") or changed by it ("1"), at most
 * ARGV[5]; 0 removes the line.  The cart hash, cart_updated and the
 * abandoned-cart queue follow, as a cart_add or cart_remove moves them.
 * A line older than the last clear is no line.  Answers the new
 * quantity, or -1 when there is no such line: nothing is changed.
 *
 * KEYS: :meta, :cart, <prefix>carts
 * ARGV: sku, line, delta, n, QTY_MAX, now, vid, retention, CART lines
 */
static ngx_str_t  ngx_http_retarget_lua_cart_line = ngx_string(
    "local f, v, cleared "
    "if ARGV[1] ~= '' then "
    "f = 'c:' .. ARGV[1] "
    "local r = redis.call('HMGET', KEYS[1], f, 'cart_cleared') "
    "v = r[1] cleared = r[2] "
    "else "
    "local h = redis.call('HGETALL', KEYS[1]) "
    "local seen = 0 "
    "for i = 1, #h, 2 do "
    "local k = h[i] "
    "if k == 'cart_cleared' then cleared = h[i + 1] "
    "elseif not v and seen < tonumber(ARGV[9]) "
    "and string.sub(k, 1, 2) == 'c:' then "
    "seen = seen + 1 "
    "local id = string.match(h[i + 1], "
    "'^[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t(.*)$') "
    "if id == ARGV[2] then f = k v = h[i + 1] end end end "
    "end "
    "if not v then return -1 end "
    "local ms, qty, rest = string.match(v, '^(%d+)\\t(%d+)(\\t.*)$') "
    "if not ms or (cleared and tonumber(ms) <= (tonumber(cleared) or 0)) "
    "then return -1 end "
    "local n = tonumber(ARGV[4]) "
    "if ARGV[3] == '1' then n = tonumber(qty) + n end "
    "if n > tonumber(ARGV[5]) then n = tonumber(ARGV[5]) end "
    "local sku = string.sub(f, 3) "
    "if n <= 0 then n = 0 "
    "redis.call('HDEL', KEYS[1], f) redis.call('HDEL', KEYS[2], sku) "
    "else "
    "redis.call('HSET', KEYS[1], f, ms .. '\\t' .. string.format('%d', n) "
    ".. rest) "
    "redis.call('HSET', KEYS[2], sku, string.format('%d', n)) end "
    "redis.call('HSET', KEYS[1], 'cart_updated', ARGV[6]) "
    "redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[8]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[8]) "
    "return n");

/*
 * The line of a cart_add without line=: the shop adds by product and
 * removes by its line key (WooCommerce's classic cart), so the key the
 * line holds (a cart_sync's, an earlier add's) stays in it.  A line not
 * newer than cart_cleared is no line: its key goes with it.  One step,
 * so nothing written between the read and the write is lost.
 *
 * KEYS: :meta
 * ARGV: c:SKU, the new line (no LINE)
 */
static ngx_str_t  ngx_http_retarget_lua_cart_add = ngx_string(
    "local r = redis.call('HMGET', KEYS[1], ARGV[1], 'cart_cleared') "
    "local v = ARGV[2] "
    "if r[1] then "
    "local ms, id = string.match(r[1], "
    "'^(%d+)\\t[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t(.+)$') "
    "if id and not (r[2] and tonumber(ms) <= (tonumber(r[2]) or 0)) then "
    "v = v .. '\\t' .. id end end "
    "redis.call('HSET', KEYS[1], ARGV[1], v) "
    "return 0");

/*
 * cart_sync: the visitor's whole cart replaced in one step.  Every c:SKU
 * line and the cart hash go, cart_cleared (ARGV[4]) makes any older line
 * still on its way stale, and the new lines (ARGV[6]: "SKU\nQTY\nLINE\n"
 * each, the values never hold a newline) are written while the meta has
 * room (ARGV[5] fields).  An empty cart leaves the abandoned-cart queue,
 * as after cart_clear.  Answers the lines written.
 *
 * KEYS: :meta, :cart, <prefix>carts
 * ARGV: now, vid, retention, cleared ms, META_MAX, the lines
 */
static ngx_str_t  ngx_http_retarget_lua_cart_sync = ngx_string(
    "local old = {} "
    "for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do "
    "if string.sub(k, 1, 2) == 'c:' then old[#old + 1] = k end end "
    "for i = 1, #old, 100 do "
    "redis.call('HDEL', KEYS[1], unpack(old, i, math.min(i + 99, #old))) "
    "end "
    "redis.call('DEL', KEYS[2]) "
    "redis.call('HSET', KEYS[1], 'cart_updated', ARGV[1], "
    "'cart_cleared', ARGV[4]) "
    "local room = tonumber(ARGV[5]) - 2 - redis.call('HLEN', KEYS[1]) "
    "local n = 0 "
    "for s, q, v in string.gmatch(ARGV[6], "
    "'([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n') do "
    "if n >= room then break end "
    "redis.call('HSET', KEYS[1], 'c:' .. s, v) "
    "redis.call('HSET', KEYS[2], s, q) "
    "n = n + 1 end "
    "if n > 0 then "
    "redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[3]) "
    "else redis.call('ZREM', KEYS[3], ARGV[2]) end "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "return n");

/*
 * A purchase's clear: cart_cleared (ARGV[1], ms) makes every older line
 * stale, as a cart_clear does, and what was in the cart then was bought:
 * its lines go now, and with them the viewed products of the same skus
 * seen before (v:SKU not newer than the clear) and the skus in the
 * recently-viewed list, so that no reminder and no e-mail worker offers
 * what was just bought.  A line added after the clear (another worker's
 * cart_add that got here first) is newer and stays.  Answers the bought
 * lines.
 *
 * KEYS: :meta, :viewed
 * ARGV: cleared ms
 */
static ngx_str_t  ngx_http_retarget_lua_purchase = ngx_string(
    "local cleared = tonumber(ARGV[1]) "
    "local h = redis.call('HGETALL', KEYS[1]) "
    "local v = {} "
    "for i = 1, #h, 2 do "
    "if string.sub(h[i], 1, 2) == 'v:' then v[h[i]] = h[i + 1] end end "
    "local n = 0 "
    "for i = 1, #h, 2 do "
    "local k = h[i] "
    "if string.sub(k, 1, 2) == 'c:' then "
    "local ms = tonumber(string.match(h[i + 1], '^(%d+)\t')) "
    "if ms == nil or ms <= cleared then "
    "local sku = string.sub(k, 3) "
    "redis.call('HDEL', KEYS[1], k) "
    "local vv = v['v:' .. sku] "
    "local vms = vv and tonumber(string.match(vv, '^(%d+)\t')) "
    "if vv and (vms == nil or vms <= cleared) then "
    "redis.call('HDEL', KEYS[1], 'v:' .. sku) end "
    "redis.call('LREM', KEYS[2], 0, sku) "
    "n = n + 1 end end end "
    "redis.call('HSET', KEYS[1], 'cart_cleared', ARGV[1]) "
    "return n");


ngx_str_t  ngx_http_retarget_f_first_seen = ngx_string("first_seen");
ngx_str_t  ngx_http_retarget_f_last_seen = ngx_string("last_seen");
ngx_str_t  ngx_http_retarget_f_cart_updated = ngx_string("cart_updated");
ngx_str_t  ngx_http_retarget_f_checkout = ngx_string("checkout");
ngx_str_t  ngx_http_retarget_f_purchased = ngx_string("purchased");
ngx_str_t  ngx_http_retarget_f_user = ngx_string("user");
ngx_str_t  ngx_http_retarget_f_last_reminder = ngx_string("last_reminder");
ngx_str_t  ngx_http_retarget_f_reminders = ngx_string("reminders");
ngx_str_t  ngx_http_retarget_f_period_start = ngx_string("period_start");
ngx_str_t  ngx_http_retarget_f_dismissed = ngx_string("dismissed");
ngx_str_t  ngx_http_retarget_f_seen = ngx_string("seen");
ngx_str_t  ngx_http_retarget_f_clicked = ngx_string("clicked");
ngx_str_t  ngx_http_retarget_f_variant = ngx_string("variant");
ngx_str_t  ngx_http_retarget_f_cart_cleared = ngx_string("cart_cleared");
ngx_str_t  ngx_http_retarget_f_visit_last = ngx_string("visit_last");
ngx_str_t  ngx_http_retarget_f_visit_pages = ngx_string("visit_pages");


static ngx_str_t  ngx_http_retarget_f_code = ngx_string("code:");

/* the daily counter of a custom event: events:NAME */
ngx_str_t  ngx_http_retarget_c_events = ngx_string("events:");

/* the fields of <prefix>p:SKU, in the order they are written */
/* the fields of <prefix>p:SKU, in the order of HMGET's answer */
ngx_str_t  ngx_http_retarget_product_fields[] = {
    ngx_string("name"),
    ngx_string("price"),
    ngx_string("image"),
    ngx_string("url"),
    ngx_string("currency"),
    ngx_string("in_stock")
};


/* "<prefix>{<vid>}:meta", or "<prefix>stats:<id>" and the like */

size_t
ngx_http_retarget_key_len(ngx_str_t *prefix, ngx_http_retarget_key_e key,
    ngx_str_t *id)
{
    return prefix->len + ngx_http_retarget_keys[key].name.len
           + (id ? id->len : 0) + (ngx_http_retarget_keys[key].visitor ? 2 : 0);
}


u_char *
ngx_http_retarget_key_put(u_char *p, ngx_str_t *prefix,
    ngx_http_retarget_key_e key, ngx_str_t *id)
{
    ngx_str_t  *name;

    name = &ngx_http_retarget_keys[key].name;

    p = ngx_cpymem(p, prefix->data, prefix->len);

    if (ngx_http_retarget_keys[key].visitor) {
        *p++ = '{';
        p = ngx_cpymem(p, id->data, id->len);
        *p++ = '}';

        return ngx_cpymem(p, name->data, name->len);
    }

    p = ngx_cpymem(p, name->data, name->len);

    if (id != NULL) {
        p = ngx_cpymem(p, id->data, id->len);
    }

    return p;
}


/* "c:SKU" (a cart line) or "v:SKU" (a viewed product) */

ngx_int_t
ngx_http_retarget_item_field(ngx_str_t *field, ngx_uint_t *cart,
    ngx_str_t *sku)
{
    if (field->len <= NGX_HTTP_RETARGET_ITEM_TAG_LEN
        || field->data[1] != ':'
        || (field->data[0] != 'c' && field->data[0] != 'v'))
    {
        return NGX_DECLINED;
    }

    *cart = (field->data[0] == 'c');

    sku->data = field->data + NGX_HTTP_RETARGET_ITEM_TAG_LEN;
    sku->len = field->len - NGX_HTTP_RETARGET_ITEM_TAG_LEN;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_item_name(ngx_pool_t *pool, ngx_uint_t cart, ngx_str_t *sku,
    ngx_str_t *field)
{
    field->len = NGX_HTTP_RETARGET_ITEM_TAG_LEN + sku->len;
    field->data = ngx_pnalloc(pool, field->len);
    if (field->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(field->data, "%c:%V", cart ? 'c' : 'v', sku);

    return NGX_OK;
}


/* "code:POOL", a code of pool:POOL pinned for the visitor */

ngx_int_t
ngx_http_retarget_code_field(ngx_str_t *field, ngx_str_t *pool)
{
    ngx_str_t  *code;

    code = &ngx_http_retarget_f_code;

    if (field->len <= code->len
        || ngx_strncmp(field->data, code->data, code->len) != 0)
    {
        return NGX_DECLINED;
    }

    pool->data = field->data + code->len;
    pool->len = field->len - code->len;

    return NGX_OK;
}


size_t
ngx_http_retarget_code_field_len(ngx_str_t *pool)
{
    return ngx_http_retarget_f_code.len + pool->len;
}


u_char *
ngx_http_retarget_code_field_put(u_char *p, ngx_str_t *pool)
{
    p = ngx_cpymem(p, ngx_http_retarget_f_code.data,
                   ngx_http_retarget_f_code.len);

    return ngx_cpymem(p, pool->data, pool->len);
}


/*
 * A cart line "MS\tQTY\tPRICE\tNAME\tIMAGE\tURL", with "\tLINE" (the
 * shop's line id) or without (lines written before line ids), or a
 * viewed product "MS\tPRICE\tNAME\tIMAGE\tURL": NGX_ERROR unless the
 * value has these parts and MS and QTY are numbers.  A price that is not
 * an amount is kept as text, with cents -1.
 */

ngx_int_t
ngx_http_retarget_line_decode(ngx_str_t *value, ngx_uint_t cart,
    ngx_http_retarget_item_t *it)
{
    u_char      *p, *last, *tab;
    ngx_str_t    parts[7], *v;
    ngx_uint_t   n, max;

    max = cart ? 7 : 5;

    p = value->data;
    last = p + value->len;

    for (n = 0; /* void */ ; /* void */ ) {
        tab = ngx_strlchr(p, last, '\t');

        parts[n].data = p;
        parts[n].len = (tab ? tab : last) - p;
        n++;

        if (tab == NULL) {
            break;
        }

        if (n == max) {
            return NGX_ERROR;
        }

        p = tab + 1;
    }

    if (n != max && !(cart && n == max - 1)) {
        return NGX_ERROR;
    }

    it->ms = ngx_http_retarget_parse_number(&parts[0]);
    it->qty = 1;

    v = &parts[1];

    if (cart) {
        it->qty = ngx_http_retarget_parse_number(v++);
    }

    if (it->ms == NGX_ERROR || it->qty == NGX_ERROR) {
        return NGX_ERROR;
    }

    it->price = v[0];
    it->name = v[1];
    it->image = v[2];
    it->url = v[3];
    it->cents = 0;

    if (n == 7) {
        it->line = v[4];

    } else {
        ngx_str_null(&it->line);
    }

    if (it->price.len
        && ngx_http_retarget_parse_amount(&it->price, &it->cents) != NGX_OK)
    {
        it->cents = -1;
    }

    return NGX_OK;
}


/*
 * The QTY of a cart line written by ngx_http_retarget_item_set() with
 * room for it at gap: the line's new length.
 */

size_t
ngx_http_retarget_line_qty(u_char *line, size_t len, size_t gap,
    int64_t qty)
{
    u_char  *p;
    size_t   tail;

    tail = len - gap - NGX_INT64_LEN;

    p = ngx_sprintf(line + gap, "%L", qty);
    ngx_memmove(p, line + gap + NGX_INT64_LEN, tail);

    return p + tail - line;
}


/* 1 to 18 digits, or NGX_ERROR */

int64_t
ngx_http_retarget_parse_number(ngx_str_t *s)
{
    int64_t   n;
    u_char   *p, *last;

    if (s->len == 0 || s->len > 18) {
        return NGX_ERROR;
    }

    n = 0;
    last = s->data + s->len;

    for (p = s->data; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        n = n * 10 + (*p - '0');
    }

    return n;
}


/*
 * "12", "12.5", "12.50": at most two decimals, kept in cents, at most
 * NGX_HTTP_RETARGET_AMOUNT_MAX
 */

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

    if (n > NGX_HTTP_RETARGET_AMOUNT_MAX) {
        /* 12 digits would allow 10^14 cents: sums of them could overflow */
        return NGX_ERROR;
    }

    *cents = n;

    return NGX_OK;
}


/* "TS VARIANT": NGX_DECLINED without the space */

ngx_int_t
ngx_http_retarget_stamp_decode(ngx_str_t *value, ngx_str_t *ts,
    ngx_str_t *variant)
{
    u_char  *sp, *last;

    last = value->data + value->len;
    sp = ngx_strlchr(value->data, last, ' ');

    if (sp == NULL) {
        return NGX_DECLINED;
    }

    ts->data = value->data;
    ts->len = sp - value->data;

    variant->data = sp + 1;
    variant->len = last - (sp + 1);

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_stamp_encode(ngx_pool_t *pool, time_t ts,
    ngx_str_t *variant, ngx_str_t *out)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_TIME_T_LEN + 1 + variant->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = ngx_sprintf(p, "%T %V", ts, variant) - p;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_arg_key(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_http_retarget_key_e key, ngx_str_t *id)
{
    u_char  *k, *p;

    k = ngx_pnalloc(pool,
                    ngx_http_retarget_key_len(&rmcf->redis.prefix, key, id));
    if (k == NULL) {
        return NGX_ERROR;
    }

    p = ngx_http_retarget_key_put(k, &rmcf->redis.prefix, key, id);

    ngx_http_retarget_arg(cmd, k, p - k);

    return NGX_OK;
}


/* NAME KEY, pushed to cmds */

ngx_http_retarget_cmd_t *
ngx_http_retarget_key_cmd(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, const char *name,
    ngx_http_retarget_key_e key, ngx_str_t *id)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_cmd(cmds, name);
    if (cmd == NULL
        || ngx_http_retarget_arg_key(pool, rmcf, cmd, key, id) != NGX_OK)
    {
        return NULL;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: %s \"%*s\"", name, cmd->len[1],
                   cmd->argv[1]);

    return cmd;
}


ngx_int_t
ngx_http_retarget_send_cmd(ngx_http_retarget_cmd_t *cmd)
{
    ngx_int_t  rc;

    rc = ngx_http_retarget_redis_write(ngx_http_retarget_redis_get(),
                                       cmd->argc, cmd->argv, cmd->len);

    if (rc != NGX_OK) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget store: \"%*s\" not queued: %i",
                       cmd->len[0], cmd->argv[0], rc);
    }

    return rc;
}


void
ngx_http_retarget_send_cmds(ngx_http_retarget_cmd_t *cmds, ngx_uint_t n)
{
    ngx_uint_t  i;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget store: %ui writes queued", n);

    for (i = 0; i < n; i++) {
        (void) ngx_http_retarget_send_cmd(&cmds[i]);
    }
}


/* "EXPIRE <key> <retention>" of a visitor's key, or of a product's */

ngx_int_t
ngx_http_retarget_expire(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    ngx_http_retarget_key_e key, ngx_str_t *vid)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_key_cmd(pool, rmcf, cmds, "EXPIRE", key, vid);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_retarget_arg_num(pool, cmd, rmcf->retention);
}


/*
 * "HSET <prefix>{vid}:meta field value ..." (n pairs in fv) and the
 * hash's TTL: it may have expired since the visitor's last page, and
 * must never stay forever.
 */

ngx_int_t
ngx_http_retarget_meta_set(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *fv, ngx_uint_t n)
{
    ngx_uint_t                i;
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_key_cmd(pool, rmcf, cmds, "HSET",
                                    ngx_http_retarget_key_meta, vid);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < 2 * n; i++) {
        ngx_http_retarget_arg_str(cmd, &fv[i]);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: meta set of \"%V\": %ui fields, "
                   "first \"%V\"", vid, n, &fv[0]);

    return ngx_http_retarget_expire(pool, rmcf, cmds,
                                    ngx_http_retarget_key_meta, vid);
}


/*
 * "HSET <prefix>{vid}:meta c:SKU|v:SKU LINE": the line as
 * ngx_http_retarget_line_decode() reads it, stamped ms.  The QTY of a
 * cart line is not known yet: room is left for it at *gap, see
 * ngx_http_retarget_line_qty().
 */

ngx_int_t
ngx_http_retarget_item_set(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_http_retarget_item_t *it, ngx_uint_t cart, ngx_str_t *ms,
    size_t *gap)
{
    u_char                   *p;
    ngx_str_t                 field, value;
    ngx_http_retarget_cmd_t  *cmd;

    if (ngx_http_retarget_item_name(pool, cart, &it->sku, &field) != NGX_OK) {
        return NGX_ERROR;
    }

    value.len = ms->len + sizeof("\t\t\t\t") - 1
                + it->price.len + it->name.len + it->image.len + it->url.len
                + (cart ? NGX_INT64_LEN + 1 : 0)
                + (cart && it->line.len ? 1 + it->line.len : 0);
    value.data = ngx_pnalloc(pool, value.len);

    if (value.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(value.data, "%V\t", ms);

    if (cart) {
        *gap = p - value.data;
        ngx_memset(p, '0', NGX_INT64_LEN);
        p += NGX_INT64_LEN;
        *p++ = '\t';
    }

    p = ngx_sprintf(p, "%V\t%V\t%V\t%V", &it->price, &it->name, &it->image,
                    &it->url);

    if (cart && it->line.len) {
        ngx_sprintf(p, "\t%V", &it->line);
    }

    if (cart && it->line.len == 0) {
        /* the line keeps the shop's line id it had */
        cmd = ngx_http_retarget_cmd(cmds, "EVAL");
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        ngx_http_retarget_arg_str(cmd, &ngx_http_retarget_lua_cart_add);
        ngx_http_retarget_arg(cmd, (u_char *) "1", 1);

        if (ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                      ngx_http_retarget_key_meta, vid)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        cmd = ngx_http_retarget_key_cmd(pool, rmcf, cmds, "HSET",
                                        ngx_http_retarget_key_meta, vid);
        if (cmd == NULL) {
            return NGX_ERROR;
        }
    }

    /* the value is the last argument (ngx_http_retarget_cart_done()) */
    ngx_http_retarget_arg_str(cmd, &field);
    ngx_http_retarget_arg_str(cmd, &value);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: item \"%V\" of \"%V\"%s", &field, vid,
                   cmd->argv[0][0] == 'E' ? ", its line id kept" : "");

    return NGX_OK;
}


/* a whole cart line, its quantity known: what cart_sync writes */

ngx_int_t
ngx_http_retarget_line_encode(ngx_pool_t *pool, ngx_http_retarget_item_t *it,
    ngx_str_t *ms, ngx_str_t *out)
{
    u_char  *p;

    out->data = ngx_pnalloc(pool, ms->len + NGX_INT64_LEN
                                  + sizeof("\t\t\t\t\t\t") - 1
                                  + it->price.len + it->name.len
                                  + it->image.len + it->url.len
                                  + it->line.len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(out->data, "%V\t%L\t%V\t%V\t%V\t%V", ms, it->qty,
                    &it->price, &it->name, &it->image, &it->url);

    if (it->line.len) {
        p = ngx_sprintf(p, "\t%V", &it->line);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * One line of a cart_sync, as its script reads them: "SKU\nQTY\nLINE\n".
 * Checked values hold no control character, so no newline.
 */

ngx_int_t
ngx_http_retarget_cart_sync_line(ngx_pool_t *pool,
    ngx_http_retarget_item_t *it, ngx_str_t *ms, ngx_str_t *out)
{
    u_char     *p;
    ngx_str_t   line;

    if (ngx_http_retarget_line_encode(pool, it, ms, &line) != NGX_OK) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, it->sku.len + NGX_INT64_LEN + line.len + 3);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(out->data, "%V\n%L\n%V\n", &it->sku, it->qty, &line);
    out->len = p - out->data;

    return NGX_OK;
}


/*
 * EVAL of a cart script on its three keys: the visitor's meta hash and
 * cart hash, and the abandoned-cart queue; the caller adds the ARGV
 */

static ngx_http_retarget_cmd_t *
ngx_http_retarget_cart_script(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *script)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_cmd(cmds, "EVAL");
    if (cmd == NULL) {
        return NULL;
    }

    ngx_http_retarget_arg_str(cmd, script);
    ngx_http_retarget_arg(cmd, (u_char *) "3", 1);

    if (ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                  ngx_http_retarget_key_meta, vid)
        != NGX_OK
        || ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                     ngx_http_retarget_key_cart, vid)
           != NGX_OK
        || ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                     ngx_http_retarget_key_carts, NULL)
           != NGX_OK)
    {
        return NULL;
    }

    return cmd;
}


/*
 * cart_remove line= and cart_update, one script (see its comment): the
 * caller asks for its answer, the new quantity or -1 (no such line).
 */

ngx_int_t
ngx_http_retarget_cart_line_op(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_http_retarget_cart_change_t *ch)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_cart_script(pool, rmcf, cmds, vid,
                                        &ngx_http_retarget_lua_cart_line);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, &ch->sku);
    ngx_http_retarget_arg_str(cmd, &ch->line);
    ngx_http_retarget_arg(cmd, (u_char *) (ch->delta ? "1" : "0"), 1);

    if (ngx_http_retarget_arg_num(pool, cmd, ch->qty) != NGX_OK
        || ngx_http_retarget_arg_num(pool, cmd, NGX_HTTP_RETARGET_QTY_MAX)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, ch->now);
    ngx_http_retarget_arg_str(cmd, vid);

    if (ngx_http_retarget_arg_num(pool, cmd, rmcf->retention) != NGX_OK
        || ngx_http_retarget_arg_num(pool, cmd, NGX_HTTP_RETARGET_CART_MAX)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: cart line of \"%V\": sku \"%V\" "
                   "line \"%V\" %s %L", vid, &ch->sku, &ch->line,
                   ch->delta ? "delta" : "qty", ch->qty);

    return NGX_OK;
}


/* a purchase: the cart's lines and what they bought, one script */

ngx_int_t
ngx_http_retarget_purchase_clear(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *cleared)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_cmd(cmds, "EVAL");
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, &ngx_http_retarget_lua_purchase);
    ngx_http_retarget_arg(cmd, (u_char *) "2", 1);

    if (ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                  ngx_http_retarget_key_meta, vid)
        != NGX_OK
        || ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                     ngx_http_retarget_key_viewed, vid)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, cleared);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: purchase of \"%V\" clears the cart "
                   "and its viewed products at %V", vid, cleared);

    return NGX_OK;
}


/* cart_sync: the whole cart replaced by lines, one script */

ngx_int_t
ngx_http_retarget_cart_sync(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *now, ngx_str_t *cleared, ngx_str_t *lines)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_cart_script(pool, rmcf, cmds, vid,
                                        &ngx_http_retarget_lua_cart_sync);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, now);
    ngx_http_retarget_arg_str(cmd, vid);

    if (ngx_http_retarget_arg_num(pool, cmd, rmcf->retention) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, cleared);

    if (ngx_http_retarget_arg_num(pool, cmd, NGX_HTTP_RETARGET_META_MAX)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, lines);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: cart of \"%V\" replaced, %uz bytes",
                   vid, lines->len);

    return NGX_OK;
}


/*
 * "HSET <prefix>p:SKU name N price P ...", the values it has, and
 * "EXPIRE <prefix>p:SKU <retention>": a product no page vouches for
 * any more leaves.  Only values the shop vouches for get here (the
 * "catalog" parameter of retarget_event, ngx_http_retarget_event_conf.c).
 */

ngx_int_t
ngx_http_retarget_product_set(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    ngx_http_retarget_item_t *it, ngx_str_t *in_stock)
{
    ngx_str_t                 none;
    ngx_uint_t                k;
    ngx_str_t                *v[NGX_HTTP_RETARGET_PRODUCT_FIELDS];
    ngx_http_retarget_cmd_t  *cmd;

    none.len = 0;
    none.data = NULL;

    if (in_stock == NULL) {
        in_stock = &none;
    }

    cmd = ngx_http_retarget_key_cmd(pool, rmcf, cmds, "HSET",
                                    ngx_http_retarget_key_product, &it->sku);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    v[0] = &it->name;
    v[1] = &it->price;
    v[2] = &it->image;
    v[3] = &it->url;
    v[4] = &it->currency;
    v[5] = in_stock;

    for (k = 0; k < NGX_HTTP_RETARGET_PRODUCT_FIELDS; k++) {
        if (v[k]->len) {
            ngx_http_retarget_arg_str(cmd,
                                      &ngx_http_retarget_product_fields[k]);
            ngx_http_retarget_arg_str(cmd, v[k]);
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: product \"%V\", %d fields",
                   &it->sku, (cmd->argc - 2) / 2);

    return ngx_http_retarget_expire(pool, rmcf, cmds,
                                    ngx_http_retarget_key_product, &it->sku);
}


/*
 * The stream entry of an event: "XADD <prefix>events MAXLEN ~ N * e
 * JSON"; for a returning visitor (vid not NULL) the script that also
 * puts the entry's id into the visitor's index <prefix>{vid}:events, so
 * that "forget" deletes it and "me" shows it.
 */

ngx_int_t
ngx_http_retarget_stream_add(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds, ngx_str_t *vid,
    ngx_str_t *entry)
{
    ngx_http_retarget_cmd_t  *cmd;

    if (vid == NULL) {
        cmd = ngx_http_retarget_key_cmd(pool, rmcf, cmds, "XADD",
                                        ngx_http_retarget_key_events, NULL);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        ngx_http_retarget_arg(cmd, (u_char *) "MAXLEN", 6);
        ngx_http_retarget_arg(cmd, (u_char *) "~", 1);

        if (ngx_http_retarget_arg_num(pool, cmd, rmcf->stream_maxlen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_http_retarget_arg(cmd, (u_char *) "*", 1);
        ngx_http_retarget_arg(cmd, (u_char *) "e", 1);
        ngx_http_retarget_arg_str(cmd, entry);

        return NGX_OK;
    }

    cmd = ngx_http_retarget_cmd(cmds, "EVAL");
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, &ngx_http_retarget_lua_stream_add);
    ngx_http_retarget_arg(cmd, (u_char *) "2", 1);

    if (ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                  ngx_http_retarget_key_events, NULL)
        != NGX_OK
        || ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                     ngx_http_retarget_key_stream_ids, vid)
           != NGX_OK
        || ngx_http_retarget_arg_num(pool, cmd, rmcf->stream_maxlen)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, entry);

    if (ngx_http_retarget_arg_num(pool, cmd, rmcf->retention) != NGX_OK
        || ngx_http_retarget_arg_num(pool, cmd,
                                     NGX_HTTP_RETARGET_STREAM_PER_VISITOR)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: stream entry indexed for \"%V\"", vid);

    return NGX_OK;
}


/* "me": the visitor's entries still on the stream (one read) */

ngx_int_t
ngx_http_retarget_stream_read(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_str_t *vid)
{
    ngx_http_retarget_cmd_init(cmd, "EVAL");
    ngx_http_retarget_arg_str(cmd, &ngx_http_retarget_lua_stream_read);
    ngx_http_retarget_arg(cmd, (u_char *) "2", 1);

    if (ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                  ngx_http_retarget_key_events, NULL)
        != NGX_OK
        || ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                     ngx_http_retarget_key_stream_ids, vid)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "forget" and "optout": the one command that deletes every key of the
 * visitor, its entries on the event stream and its entry in the
 * abandoned-cart queue, atomically.  Its reply says it was done: the
 * caller waits for it.
 */

ngx_int_t
ngx_http_retarget_forget(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_str_t *visitor)
{
    ngx_uint_t  i;

    static ngx_http_retarget_key_e  keys[] = {
        ngx_http_retarget_key_stream_ids,
        ngx_http_retarget_key_meta,
        ngx_http_retarget_key_cart,
        ngx_http_retarget_key_viewed
    };

    ngx_http_retarget_cmd_init(cmd, "EVAL");
    ngx_http_retarget_arg_str(cmd, &ngx_http_retarget_lua_forget);
    ngx_http_retarget_arg(cmd, (u_char *) "6", 1);

    if (ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                  ngx_http_retarget_key_events, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (ngx_http_retarget_arg_key(pool, rmcf, cmd, keys[i], visitor)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                  ngx_http_retarget_key_carts, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(cmd, visitor);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: forget \"%V\"", visitor);

    return NGX_OK;
}


/* the UTC day of t as YYYYMMDD: the day the daily counters count into */

void
ngx_http_retarget_utc_day(time_t t, u_char *day)
{
    ngx_tm_t  tm;

    ngx_gmtime(t, &tm);

    (void) ngx_sprintf(day, "%04d%02d%02d", tm.ngx_tm_year, tm.ngx_tm_mon,
                       tm.ngx_tm_mday);
}


/* "<prefix>people:DAY:KIND:ARM" as the next argument of cmd */

ngx_int_t
ngx_http_retarget_arg_people(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    u_char *day, ngx_http_retarget_people_e kind, ngx_str_t *arm)
{
    u_char     *p;
    ngx_str_t   id;

    id.len = NGX_HTTP_RETARGET_DAY_LEN + 1
             + ngx_http_retarget_people_names[kind].len + 1 + arm->len;

    id.data = ngx_pnalloc(pool, id.len);
    if (id.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(id.data, day, NGX_HTTP_RETARGET_DAY_LEN);
    *p++ = ':';
    p = ngx_cpymem(p, ngx_http_retarget_people_names[kind].data,
                   ngx_http_retarget_people_names[kind].len);
    *p++ = ':';
    ngx_memcpy(p, arm->data, arm->len);

    return ngx_http_retarget_arg_key(pool, rmcf, cmd,
                                     ngx_http_retarget_key_people, &id);
}


/*
 * "PFADD <prefix>people:TODAY:KIND:ARM vid" and the key's TTL, pushed to
 * cmds: a visitor already in the HyperLogLog changes nothing, so the
 * count is of distinct visitors however often they come.  The TTL is
 * renewed at each add (one EXPIRE beside it in the same batch): the key
 * lives 100 days after its day's last visitor, a day at most more.
 */

ngx_int_t
ngx_http_retarget_people_add(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_array_t *cmds,
    ngx_http_retarget_people_e kind, ngx_str_t *arm, ngx_str_t *vid)
{
    u_char                    day[NGX_HTTP_RETARGET_DAY_LEN];
    ngx_http_retarget_cmd_t  *add, *expire;

    ngx_http_retarget_utc_day(ngx_time(), day);

    add = ngx_http_retarget_cmd(cmds, "PFADD");
    if (add == NULL
        || ngx_http_retarget_arg_people(pool, rmcf, add, day, kind, arm)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg_str(add, vid);

    expire = ngx_http_retarget_cmd(cmds, "EXPIRE");
    if (expire == NULL) {
        return NGX_ERROR;
    }

    /* the array may have moved: add is the element before expire */
    add = expire - 1;

    ngx_http_retarget_arg(expire, (u_char *) add->argv[1], add->len[1]);

    if (ngx_http_retarget_arg_num(pool, expire, NGX_HTTP_RETARGET_PEOPLE_TTL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget store: visitor \"%V\" counted in \"%*s\"",
                   vid, add->len[1], add->argv[1]);

    return NGX_OK;
}


/*
 * Nothing outlives retarget_retention: stream entries and abandoned-cart
 * queue members older than it go, once a second (each worker's counter
 * flush).  An exact "XTRIM MINID" costs a seek when there is nothing to
 * trim; "~" would keep the newest radix node of a quiet stream forever.
 */

void
ngx_http_retarget_expire_old(ngx_http_retarget_main_conf_t *rmcf)
{
    u_char                   min[NGX_INT64_LEN + 2], *p;
    time_t                   cut;
    ngx_http_retarget_cmd_t  cmd;

    /* the worker's buffer of the two key names, made once */
    static u_char           *key;
    static size_t            events_len, carts_len;

    cut = ngx_time() - rmcf->retention;

    if (cut <= 0) {
        return;
    }

    if (key == NULL) {
        events_len = ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                               ngx_http_retarget_key_events,
                                               NULL);
        carts_len = ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                              ngx_http_retarget_key_carts,
                                              NULL);

        key = ngx_pnalloc(ngx_cycle->pool, events_len + carts_len);
        if (key == NULL) {
            return;
        }

        p = ngx_http_retarget_key_put(key, &rmcf->redis.prefix,
                                      ngx_http_retarget_key_events, NULL);
        (void) ngx_http_retarget_key_put(p, &rmcf->redis.prefix,
                                         ngx_http_retarget_key_carts, NULL);
    }

    if (rmcf->stream_maxlen) {
        ngx_http_retarget_cmd_init(&cmd, "XTRIM");
        ngx_http_retarget_arg(&cmd, key, events_len);
        ngx_http_retarget_arg(&cmd, (u_char *) "MINID", 5);
        p = ngx_sprintf(min, "%T000", cut);
        ngx_http_retarget_arg(&cmd, min, p - min);

        (void) ngx_http_retarget_send_cmd(&cmd);
    }

    /* the command is copied into the link's buffer when it is queued */

    ngx_http_retarget_cmd_init(&cmd, "ZREMRANGEBYSCORE");
    ngx_http_retarget_arg(&cmd, key + events_len, carts_len);
    ngx_http_retarget_arg(&cmd, (u_char *) "-inf", 4);
    p = ngx_sprintf(min, "(%T", cut);
    ngx_http_retarget_arg(&cmd, min, p - min);

    (void) ngx_http_retarget_send_cmd(&cmd);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget store: stream and carts trimmed before %T",
                   cut);
}
