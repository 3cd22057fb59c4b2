
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the checks on the values of "retarget_event"
 * (ngx_http_retarget_event_conf.c) and the number parsers of the store
 * (ngx_http_retarget_store.c): the values come from query arguments and
 * headers, that is from anyone.
 *
 * The first byte of the input picks the parameter (sku, qty, price, name,
 * image, url, order, value, user), the rest is the value, copied into an
 * allocation of its own so that AddressSanitizer sees any read past it.
 * Then:
 *
 *   - a value that is accepted is at most as long as its parameter
 *     allows, and holds no control character (nor a space, but in a
 *     name);
 *   - a quantity is accepted exactly when it is 1 to 18 digits worth 1
 *     to 9999, and is kept as that number;
 *   - a price or value is accepted exactly when it is digits with at most
 *     four decimals after a dot, 16 digits in all at most, at most
 *     99,999,999.99 once rounded half up to cents, and is kept in cents;
 *   - no accepted value holds a bidi control (U+061C, U+200E-200F,
 *     U+202A-202E, U+2066-2069);
 *   - ngx_http_retarget_catalog_value() refuses any value naming a
 *     variable $arg_*, $cookie_*, $http_* (also as ${...}, in any case);
 *   - an image or url that is accepted is a path on this site ("/" but
 *     not "//" or "/\") or starts with http:// or https://;
 *   - ngx_http_retarget_parse_number() gives the value of 1 to 18 digits,
 *     and NGX_ERROR for anything else.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>


/* the properties, written independently of the module */

static int64_t
fuzz_digits(const u_char *p, size_t len)
{
    size_t   i;
    int64_t  n;

    if (len == 0 || len > 18) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        n = n * 10 + (p[i] - '0');
    }

    return n;
}


static int64_t
fuzz_amount(const u_char *p, size_t len)
{
    size_t   i, dot, ndec;
    int64_t  whole, dec;

    dot = len;

    for (i = 0; i < len; i++) {
        if (p[i] == '.') {
            dot = i;
            break;
        }
    }

    if (dot == 0) {
        return -1;
    }

    ndec = (dot == len) ? 0 : len - dot - 1;

    if ((dot < len && ndec == 0) || ndec > 4 || dot + ndec > 16) {
        return -1;
    }

    whole = fuzz_digits(p, dot);
    dec = ndec ? fuzz_digits(p + dot + 1, ndec) : 0;

    if (whole < 0 || dec < 0) {
        return -1;
    }

    if (whole > 99999999LL) {
        return -1;
    }

    /* in 1/10000, then rounded half up to cents */

    for (i = ndec; i < 4; i++) {
        dec *= 10;
    }

    whole = (whole * 10000 + dec + 50) / 100;

    /* 99,999,999.99 at most */
    return (whole > 9999999999LL) ? -1 : whole;
}


static void
fuzz_printable(ngx_str_t *v, size_t max, int spaces)
{
    size_t  i;

    if (v->len > max) {
        fuzz_fail("accepted %u bytes, at most %u", (unsigned) v->len,
                  (unsigned) max);
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] < 0x20 || v->data[i] == 0x7f
            || (v->data[i] == ' ' && !spaces))
        {
            fuzz_fail("accepted byte 0x%02x at %u", v->data[i],
                      (unsigned) i);
        }

        /* bidi controls: U+061C, U+200E-200F, U+202A-202E, U+2066-2069 */

        if (i + 1 < v->len && v->data[i] == 0xd8 && v->data[i + 1] == 0x9c) {
            fuzz_fail("accepted U+061C at %u", (unsigned) i);
        }

        if (i + 2 < v->len && v->data[i] == 0xe2
            && ((v->data[i + 1] == 0x80
                 && (v->data[i + 2] == 0x8e || v->data[i + 2] == 0x8f
                     || (v->data[i + 2] >= 0xaa && v->data[i + 2] <= 0xae)))
                || (v->data[i + 1] == 0x81
                    && v->data[i + 2] >= 0xa6 && v->data[i + 2] <= 0xa9)))
        {
            fuzz_fail("accepted a bidi control at %u", (unsigned) i);
        }
    }
}


/*
 * A "catalog" value that names $arg_..., ${cookie_...}, $http_... (in
 * any case) is refused, whatever else it holds
 */

static void
fuzz_catalog(ngx_str_t *v)
{
    size_t             i, k, n;
    ngx_str_t          var;
    static const char *bad[] = { "arg_", "cookie_", "http_" };

    if (ngx_http_retarget_catalog_value(v, &var) != NGX_OK) {
        return;
    }

    for (i = 0; i < v->len; i++) {

        if (v->data[i] != '$') {
            continue;
        }

        n = (i + 1 < v->len && v->data[i + 1] == '{') ? i + 2 : i + 1;

        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            if (v->len - n >= strlen(bad[k])
                && strncasecmp((char *) v->data + n, bad[k], strlen(bad[k]))
                   == 0)
            {
                fuzz_fail("catalog value naming $%s accepted", bad[k]);
            }
        }
    }
}


static void
fuzz_url(ngx_str_t *v)
{
    fuzz_printable(v, 1024, 0);

    if (v->data[0] == '/'
        && (v->len == 1 || (v->data[1] != '/' && v->data[1] != '\\')))
    {
        return;
    }

    if ((v->len > 8 && strncasecmp((char *) v->data, "https://", 8) == 0)
        || (v->len > 7 && strncasecmp((char *) v->data, "http://", 7) == 0))
    {
        return;
    }

    fuzz_fail("accepted a url that is neither a path nor http(s)");
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t                    n, want;
    ngx_int_t                  rc;
    ngx_str_t                  v;
    ngx_uint_t                 param;
    ngx_http_retarget_event_t  ev;

    if (size < 2) {
        return 0;
    }

    param = data[0] % ngx_http_retarget_p_if;

    v.len = size - 1;
    v.data = malloc(v.len);

    if (v.data == NULL) {
        abort();
    }

    memcpy(v.data, data + 1, v.len);

    /* the number parser, on any value */

    n = ngx_http_retarget_parse_number(&v);
    want = fuzz_digits(v.data, v.len);

    if ((want < 0 && n != NGX_ERROR) || (want >= 0 && n != want)) {
        fuzz_fail("parse_number: %lld, expected %lld", (long long) n,
                  (long long) want);
    }

    fuzz_catalog(&v);

    ngx_memzero(&ev, sizeof(ngx_http_retarget_event_t));
    ev.qty = 1;
    ev.minor = NGX_HTTP_RETARGET_MINOR_NONE;

    rc = ngx_http_retarget_event_check(param, &v, &ev);

    if (rc != NGX_OK && rc != NGX_ERROR) {
        fuzz_fail("check returned %d", (int) rc);
    }

    switch (param) {

    case ngx_http_retarget_p_qty:
        want = fuzz_digits(v.data, v.len);

        if ((rc == NGX_OK) != (want >= 1 && want <= 9999)) {
            fuzz_fail("qty: rc %d for %lld", (int) rc, (long long) want);
        }

        if (rc == NGX_OK && ev.qty != want) {
            fuzz_fail("qty: kept %lld, not %lld", (long long) ev.qty,
                      (long long) want);
        }

        break;

    case ngx_http_retarget_p_price:
    case ngx_http_retarget_p_value:
        want = fuzz_amount(v.data, v.len);

        if ((rc == NGX_OK) != (want >= 0)) {
            fuzz_fail("amount: rc %d, expected %lld", (int) rc,
                      (long long) want);
        }

        if (rc == NGX_OK && ev.cents != want) {
            fuzz_fail("amount: %lld cents, not %lld", (long long) ev.cents,
                      (long long) want);
        }

        break;

    case ngx_http_retarget_p_sku:
    case ngx_http_retarget_p_order:
        if (rc == NGX_OK) {
            fuzz_printable(&v, 64, 0);
        }

        break;

    case ngx_http_retarget_p_user:
        if (rc == NGX_OK) {
            fuzz_printable(&v, 128, 0);
        }

        break;

    case ngx_http_retarget_p_name:
        if (rc == NGX_OK) {
            fuzz_printable(&v, 200, 1);
        }

        break;

    case ngx_http_retarget_p_image:
    case ngx_http_retarget_p_url:
        if (rc == NGX_OK) {
            fuzz_url(&v);
        }

        break;

    default: /* line, delta: bounded printable, a signed number */
        break;
    }

    free(v.data);

    fuzz_reset();

    return 0;
}
