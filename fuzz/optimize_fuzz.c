
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the optimizer's weights (ngx_http_retarget_
 * weights.c): the value of a period's field in <prefix>optimize:ARMS,
 * which anyone who can write to Redis can write, and the weights this
 * nginx writes there.
 *
 * The input: one byte for the arms (1 to 4 of a fixed list of names,
 * and whether the rest is a value or probabilities), one for the floor
 * (0 to 102 %, in steps of 0.4 %), then either the value to parse, or
 * 8 bytes a probability (any double: NaN, infinities, negatives too).
 * Properties:
 *
 *   - "configured", exactly, is the configured weights (NGX_DONE), and
 *     nothing else is;
 *
 *   - an accepted value has the arms' names in order, weights from 0 to
 *     1 in ten-thousandths, none under the floor by more than one, a sum
 *     within one an arm of the whole; formatted again it parses to the
 *     same weights, and a value with four decimals everywhere is exactly
 *     its own formatting;
 *
 *   - the weights made from any probabilities sum to exactly one, none
 *     is under the floor (a floor too large for the arms is the equal
 *     split), and their formatting is accepted back.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_weights.h"

#include <stdlib.h>
#include <string.h>


static ngx_str_t  fuzz_names[] = {
    ngx_string("A"),
    ngx_string("B"),
    ngx_string("banner-2"),
    ngx_string("A_long_variant_name_0123456789")
};


static void fuzz_parse(u_char *value, size_t len, ngx_uint_t n,
    ngx_uint_t floor);
static void fuzz_from_best(const uint8_t *data, size_t size, ngx_uint_t n,
    ngx_uint_t floor);
static ngx_uint_t fuzz_canonical(u_char *value, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *value;
    ngx_uint_t   n, floor;

    if (size < 2) {
        return 0;
    }

    n = (data[0] & 3) + 1;
    floor = (ngx_uint_t) data[1] * 40;

    if (data[0] & 0x80) {
        fuzz_from_best(data + 2, size - 2, n, floor);
        return 0;
    }

    /* a copy of its own size: a read past the value is ASan's to see */

    value = malloc(size - 2 ? size - 2 : 1);
    if (value == NULL) {
        abort();
    }

    memcpy(value, data + 2, size - 2);

    fuzz_parse(value, size - 2, n, floor);

    free(value);
    fuzz_reset();

    return 0;
}


static void
fuzz_parse(u_char *value, size_t len, ngx_uint_t n, ngx_uint_t floor)
{
    u_char      *buf, *p;
    ngx_int_t    rc;
    ngx_uint_t   w[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_uint_t   w2[NGX_HTTP_RETARGET_OPTIMIZE_ARMS], i, sum;

    rc = ngx_http_retarget_weights_parse(value, len, fuzz_names, n, floor, w);

    if (rc == NGX_DONE) {
        if (len != sizeof(NGX_HTTP_RETARGET_WEIGHTS_CONFIGURED) - 1
            || memcmp(value, NGX_HTTP_RETARGET_WEIGHTS_CONFIGURED, len) != 0)
        {
            fuzz_fail("\"%.*s\" taken for the configured weights",
                      (int) len, value);
        }

        return;
    }

    if (rc != NGX_OK) {
        return;
    }

    sum = 0;

    for (i = 0; i < n; i++) {
        if (w[i] > NGX_HTTP_RETARGET_WEIGHT_ONE) {
            fuzz_fail("weight %u over one", (unsigned) w[i]);
        }

        if (w[i] + 1 < floor) {
            fuzz_fail("weight %u under the floor %u", (unsigned) w[i],
                      (unsigned) floor);
        }

        sum += w[i];
    }

    if (sum + n < NGX_HTTP_RETARGET_WEIGHT_ONE
        || sum > NGX_HTTP_RETARGET_WEIGHT_ONE + n)
    {
        fuzz_fail("weights summing to %u accepted", (unsigned) sum);
    }

    /* every name in order, each once, then "=" */

    p = value;

    for (i = 0; i < n; i++) {
        if (i && *p++ != ',') {
            fuzz_fail("no comma before arm %u", (unsigned) i);
        }

        if (memcmp(p, fuzz_names[i].data, fuzz_names[i].len) != 0
            || p[fuzz_names[i].len] != '=')
        {
            fuzz_fail("arm %u is not \"%s\"", (unsigned) i,
                      (char *) fuzz_names[i].data);
        }

        p += fuzz_names[i].len + 1;

        while (p < value + len && *p != ',') {
            if (*p != '.' && (*p < '0' || *p > '9')) {
                fuzz_fail("byte 0x%02x in a weight", *p);
            }

            p++;
        }
    }

    if (p != value + len) {
        fuzz_fail("%zu bytes after the last weight", (size_t) (value + len - p));
    }

    buf = malloc(ngx_http_retarget_weights_len(fuzz_names, n));
    if (buf == NULL) {
        abort();
    }

    p = ngx_http_retarget_weights_format(buf, fuzz_names, n, w);

    if ((size_t) (p - buf) > ngx_http_retarget_weights_len(fuzz_names, n)) {
        fuzz_fail("formatted past its length");
    }

    if (ngx_http_retarget_weights_parse(buf, p - buf, fuzz_names, n, floor,
                                        w2)
        != NGX_OK
        || memcmp(w, w2, n * sizeof(ngx_uint_t)) != 0)
    {
        fuzz_fail("\"%.*s\" does not parse back to its weights",
                  (int) (p - buf), buf);
    }

    if (fuzz_canonical(value, len)
        && ((size_t) (p - buf) != len || memcmp(buf, value, len) != 0))
    {
        fuzz_fail("\"%.*s\" formatted as \"%.*s\"", (int) len, value,
                  (int) (p - buf), buf);
    }

    free(buf);
}


/* every weight "0.dddd" or "1.0000": what an nginx writes */

static ngx_uint_t
fuzz_canonical(u_char *value, size_t len)
{
    u_char  *p, *last, *eq;

    p = value;
    last = value + len;

    while (p < last) {
        eq = memchr(p, '=', last - p);
        if (eq == NULL || last - eq < 7) {
            return 0;
        }

        if (eq[2] != '.' || (eq[1] != '0' && eq[1] != '1')) {
            return 0;
        }

        p = eq + 7;

        if (p < last && *p++ != ',') {
            return 0;
        }
    }

    return 1;
}


static void
fuzz_from_best(const uint8_t *data, size_t size, ngx_uint_t n,
    ngx_uint_t floor)
{
    u_char      *buf, *p;
    double       p_best[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_uint_t   w[NGX_HTTP_RETARGET_OPTIMIZE_ARMS];
    ngx_uint_t   w2[NGX_HTTP_RETARGET_OPTIMIZE_ARMS], i, sum, eff;

    if (size < n * sizeof(double)) {
        return;
    }

    for (i = 0; i < n; i++) {
        memcpy(&p_best[i], data + i * sizeof(double), sizeof(double));
    }

    ngx_http_retarget_weights_from_best(p_best, n, floor, w);

    eff = (floor * n > NGX_HTTP_RETARGET_WEIGHT_ONE)
          ? NGX_HTTP_RETARGET_WEIGHT_ONE / n : floor;
    sum = 0;

    for (i = 0; i < n; i++) {
        if (w[i] < eff || w[i] > NGX_HTTP_RETARGET_WEIGHT_ONE) {
            fuzz_fail("weight %u with floor %u", (unsigned) w[i],
                      (unsigned) eff);
        }

        sum += w[i];
    }

    if (sum != NGX_HTTP_RETARGET_WEIGHT_ONE) {
        fuzz_fail("weights sum to %u", (unsigned) sum);
    }

    buf = malloc(ngx_http_retarget_weights_len(fuzz_names, n));
    if (buf == NULL) {
        abort();
    }

    p = ngx_http_retarget_weights_format(buf, fuzz_names, n, w);

    if (ngx_http_retarget_weights_parse(buf, p - buf, fuzz_names, n, eff, w2)
        != NGX_OK
        || memcmp(w, w2, n * sizeof(ngx_uint_t)) != 0)
    {
        fuzz_fail("our own \"%.*s\" is refused", (int) (p - buf), buf);
    }

    free(buf);
}
