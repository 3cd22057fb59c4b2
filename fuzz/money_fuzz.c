
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the money of ngx_http_retarget_money.c: a currency
 * code as the catalogue gives it (any bytes anyone wrote into Redis) and
 * an amount in cents.
 *
 * The input: 8 bytes of amount (any int64, negative ones too), the rest
 * the code.  Properties:
 *
 *   - ngx_http_retarget_currency_code() and _currency_set() accept
 *     exactly three ASCII letters, in any case; an accepted code is kept
 *     in upper case, with 0, 2, 3 or 4 minor digits;
 *
 *   - the value is digits, then (with minor digits) a point and exactly
 *     that many digits; read back it is the amount (negative: 0), or with
 *     no minor digits the amount rounded half up to whole units;
 *
 *   - the formatted amount holds the value once, with the symbol (or the
 *     code) before or after it, nothing else, at most
 *     NGX_HTTP_RETARGET_MONEY_LEN bytes, and is valid UTF-8; without a
 *     currency it is the value with two decimals;
 *
 *   - ngx_http_retarget_money() gives both in one allocation.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_money.h"

#include <stdlib.h>
#include <string.h>


static void fuzz_value(ngx_str_t *v, int64_t cents, ngx_uint_t digits);
static void fuzz_utf8(ngx_str_t *s);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        *p, buf[NGX_HTTP_RETARGET_MONEY_LEN + 64];
    size_t                         i, n, slen;
    int64_t                        cents;
    uint64_t                       u;
    ngx_str_t                      code, value, formatted, f2, v2, sym;
    ngx_uint_t                     letters;
    ngx_http_retarget_currency_t   cur;

    if (size < 8) {
        return 0;
    }

    u = 0;

    for (i = 0; i < 8; i++) {
        u = (u << 8) | data[i];
    }

    /* the module's amounts are bounded (store.h); the formatter is fed
     * any, but the sums it is given fit in 53 bits */

    cents = (int64_t) u >> 10;

    code.data = malloc(size - 8 + 1);
    if (code.data == NULL) {
        abort();
    }

    code.len = size - 8;
    memcpy(code.data, data + 8, code.len);

    letters = (code.len == 3);

    for (i = 0; letters && i < 3; i++) {
        if (!((code.data[i] >= 'a' && code.data[i] <= 'z')
              || (code.data[i] >= 'A' && code.data[i] <= 'Z')))
        {
            letters = 0;
        }
    }

    if ((ngx_http_retarget_currency_code(&code) == NGX_OK) != letters) {
        fuzz_fail("currency_code() says %d for a code of %zu bytes",
                  !letters, code.len);
    }

    /* without a currency: two decimals, nothing else */

    p = ngx_http_retarget_money_format(buf, cents, NULL);
    formatted.data = buf;
    formatted.len = p - buf;
    fuzz_value(&formatted, cents, 2);

    memset(&cur, 0xa5, sizeof(cur));

    if (ngx_http_retarget_currency_set(&code, &cur) != NGX_OK) {
        if (letters) {
            fuzz_fail("currency_set() refused three letters");
        }

        free(code.data);
        fuzz_reset();
        return 0;
    }

    if (!letters) {
        fuzz_fail("currency_set() accepted %zu bytes", code.len);
    }

    for (i = 0; i < 3; i++) {
        if (cur.code[i] != ngx_toupper(code.data[i])) {
            fuzz_fail("the code is not kept in upper case");
        }
    }

    if (cur.digits != 0 && cur.digits != 2 && cur.digits != 3
        && cur.digits != 4)
    {
        fuzz_fail("%d minor digits", (int) cur.digits);
    }

    p = ngx_http_retarget_money_value(buf, cents, &cur);
    value.data = buf;
    value.len = p - buf;
    fuzz_value(&value, cents, cur.digits);

    p = ngx_http_retarget_money_format(buf + 32, cents, &cur);
    formatted.data = buf + 32;
    formatted.len = p - formatted.data;

    if (formatted.len > NGX_HTTP_RETARGET_MONEY_LEN) {
        fuzz_fail("%zu bytes formatted, at most %d", formatted.len,
                  (int) NGX_HTTP_RETARGET_MONEY_LEN);
    }

    fuzz_utf8(&formatted);

    if (cur.symbol.len) {
        sym = cur.symbol;

    } else {
        sym.data = cur.code;
        sym.len = 3;
    }

    /* the symbol, an optional no-break space, the value; or the reverse */

    slen = sym.len;
    n = formatted.len;

    if (cur.style == NGX_HTTP_RETARGET_CUR_AFTER_SPACE) {
        if (n != value.len + 2 + slen
            || memcmp(formatted.data, value.data, value.len) != 0
            || memcmp(formatted.data + value.len, "\xc2\xa0", 2) != 0
            || memcmp(formatted.data + value.len + 2, sym.data, slen) != 0)
        {
            fuzz_fail("\"%.*s\" is not the value, a space and \"%.*s\"",
                      (int) n, formatted.data, (int) slen, sym.data);
        }

    } else {
        i = (cur.style == NGX_HTTP_RETARGET_CUR_BEFORE_SPACE) ? 2 : 0;

        if (n != slen + i + value.len
            || memcmp(formatted.data, sym.data, slen) != 0
            || (i && memcmp(formatted.data + slen, "\xc2\xa0", 2) != 0)
            || memcmp(formatted.data + slen + i, value.data, value.len) != 0)
        {
            fuzz_fail("\"%.*s\" is not \"%.*s\" and the value",
                      (int) n, formatted.data, (int) slen, sym.data);
        }
    }

    /* both at once, from a pool */

    if (ngx_http_retarget_money(fuzz_pool(), cents, &cur, &f2, &v2)
        != NGX_OK)
    {
        fuzz_fail("ngx_http_retarget_money() failed");
    }

    if (f2.len != formatted.len
        || memcmp(f2.data, formatted.data, f2.len) != 0
        || v2.len != value.len || memcmp(v2.data, value.data, v2.len) != 0)
    {
        fuzz_fail("ngx_http_retarget_money() differs from its parts");
    }

    free(code.data);
    fuzz_reset();

    return 0;
}


/* digits [. digits{digits}], read back as the amount */

static void
fuzz_value(ngx_str_t *v, int64_t cents, ngx_uint_t digits)
{
    size_t    i, point;
    int64_t   units, minor, want;

    if (cents < 0) {
        cents = 0;
    }

    point = v->len;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '.') {
            point = i;
            break;
        }

        if (v->data[i] < '0' || v->data[i] > '9') {
            fuzz_fail("\"%.*s\": not a number", (int) v->len, v->data);
        }
    }

    if (point == 0 || (digits == 0) != (point == v->len)
        || (digits && v->len - point - 1 != digits))
    {
        fuzz_fail("\"%.*s\": not %d minor digits", (int) v->len, v->data,
                  (int) digits);
    }

    units = 0;

    for (i = 0; i < point; i++) {
        units = units * 10 + (v->data[i] - '0');
    }

    minor = 0;

    for (i = point + 1; i < v->len; i++) {
        if (v->data[i] < '0' || v->data[i] > '9') {
            fuzz_fail("\"%.*s\": not a number", (int) v->len, v->data);
        }

        minor = minor * 10 + (v->data[i] - '0');
    }

    switch (digits) {

    case 0:
        want = (cents + 50) / 100;
        if (units != want) {
            fuzz_fail("%lld cents shown as %lld units", (long long) cents,
                      (long long) units);
        }
        return;

    case 3:
        minor /= 10;
        break;

    case 4:
        minor /= 100;
        break;

    default:
        break;
    }

    if (units * 100 + minor != cents) {
        fuzz_fail("%lld cents shown as \"%.*s\"", (long long) cents,
                  (int) v->len, v->data);
    }
}


static void
fuzz_utf8(ngx_str_t *s)
{
    u_char  *p, *last;

    p = s->data;
    last = s->data + s->len;

    while (p < last) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        if (ngx_utf8_decode(&p, last - p) > 0x10ffff) {
            fuzz_fail("\"%.*s\" is not UTF-8", (int) s->len, s->data);
        }
    }
}
