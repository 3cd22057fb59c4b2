
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the splitting of Cookie headers
 * (ngx_http_retarget_cookies.c): the input is one or more Cookie header
 * values, one per line, and the cookie looked up is "rt_vid".
 *
 * The property, written independently of the module: each header splits
 * at every ";" and ","; a piece, without the white space before it, is a
 * name up to its first "=" (all of it when there is none) and a value
 * after it; names compare without regard to case, with white space after
 * them dropped.  ngx_http_retarget_cookie_lookup() must answer
 *
 *   - NGX_DECLINED when no piece is named "rt_vid",
 *   - NGX_OK when exactly one is, with that piece's value (white space at
 *     both ends dropped), which lies inside its header and holds no ";"
 *     or ",",
 *   - NGX_BUSY when two or more are, whatever their values.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_cookies.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>


#define FUZZ_NAME     "rt_vid"
#define FUZZ_HEADERS  16


static int
fuzz_ws(u_char c)
{
    return c == ' ' || c == '\t';
}


/* counts the pieces named FUZZ_NAME; the first one's value in *v, *vlen */

static size_t
fuzz_model(u_char *p, size_t len, u_char **v, size_t *vlen, size_t count)
{
    size_t   i, start, end, eq, vs, ve;

    i = 0;

    while (i < len) {
        start = i;

        while (i < len && p[i] != ';' && p[i] != ',') {
            i++;
        }

        end = i++;

        while (start < end && fuzz_ws(p[start])) {
            start++;
        }

        if (start == end) {
            continue;
        }

        for (eq = start; eq < end && p[eq] != '='; eq++) {
            /* void */
        }

        vs = eq;

        while (eq > start && fuzz_ws(p[eq - 1])) {
            eq--;
        }

        if (eq - start != sizeof(FUZZ_NAME) - 1
            || strncasecmp((char *) p + start, FUZZ_NAME, eq - start) != 0)
        {
            continue;
        }

        if (count++ == 0) {
            if (vs < end) {
                vs++;
            }

            ve = end;

            while (vs < ve && fuzz_ws(p[vs])) {
                vs++;
            }

            while (ve > vs && fuzz_ws(p[ve - 1])) {
                ve--;
            }

            *v = p + vs;
            *vlen = ve - vs;
        }
    }

    return count;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char            *copy, *p, *last, *nl, *want;
    size_t             count, want_len, n;
    ngx_int_t          rc;
    ngx_str_t          name, value;
    ngx_uint_t         i;
    ngx_array_t        headers;
    ngx_table_elt_t    h[FUZZ_HEADERS], *ph[FUZZ_HEADERS];

    /* exact-size heap copies, one per line: overreads are caught */

    ngx_memzero(h, sizeof(h));

    headers.elts = ph;
    headers.nelts = 0;
    headers.size = sizeof(ngx_table_elt_t *);
    headers.nalloc = FUZZ_HEADERS;
    headers.pool = NULL;

    p = (u_char *) data;
    last = p + size;
    count = 0;
    want = NULL;
    want_len = 0;

    while (headers.nelts < FUZZ_HEADERS) {
        nl = memchr(p, '\n', last - p);
        n = (nl ? nl : last) - p;

        copy = malloc(n ? n : 1);
        if (copy == NULL) {
            fuzz_fail("out of memory");
        }

        memcpy(copy, p, n);

        h[headers.nelts].value.data = copy;
        h[headers.nelts].value.len = n;
        ph[headers.nelts] = &h[headers.nelts];
        headers.nelts++;

        count = fuzz_model(copy, n, &want, &want_len, count);

        if (nl == NULL) {
            break;
        }

        p = nl + 1;
    }

    ngx_str_set(&name, FUZZ_NAME);
    value.data = NULL;
    value.len = 0;

    rc = ngx_http_retarget_cookie_lookup(&headers, &name, &value);

    if (count == 0 && rc != NGX_DECLINED) {
        fuzz_fail("lookup() found a cookie that is not there (rc %ld)",
                  (long) rc);
    }

    if (count > 1 && rc != NGX_BUSY) {
        fuzz_fail("lookup() took one of %zu cookies (rc %ld)", count,
                  (long) rc);
    }

    if (count == 1) {
        if (rc != NGX_OK) {
            fuzz_fail("lookup() missed the one cookie (rc %ld)", (long) rc);
        }

        if (value.len != want_len
            || (want_len && memcmp(value.data, want, want_len) != 0))
        {
            fuzz_fail("lookup() returned \"%.*s\", not \"%.*s\"",
                      (int) value.len, value.data, (int) want_len, want);
        }

        if (memchr(value.data, ';', value.len) != NULL
            || memchr(value.data, ',', value.len) != NULL)
        {
            fuzz_fail("lookup() returned a value with a separator");
        }

        for (i = 0; i < headers.nelts; i++) {
            if (value.data >= h[i].value.data
                && value.data + value.len
                   <= h[i].value.data + h[i].value.len)
            {
                break;
            }
        }

        if (i == headers.nelts && value.len) {
            fuzz_fail("lookup() returned a value outside the headers");
        }
    }

    for (i = 0; i < headers.nelts; i++) {
        free(h[i].value.data);
    }

    fuzz_reset();

    return 0;
}
