
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the parser of the visitor's stored state
 * (ngx_http_retarget_state.c): what HGETALL of "<prefix>{vid}:meta"
 * returned, which anyone with access to Redis could have written.
 *
 * The input is split at "\n" into the field/value pairs of the reply
 * (each copied into its own allocation, so AddressSanitizer sees any read
 * past one).  Parsing must succeed, and then:
 *
 *   - every cart line has a quantity of at least 1 and was written after
 *     the cart was last cleared; at most 50 lines and 8 viewed products
 *     are kept, newest first;
 *   - every item's sku is the rest of a "c:" or "v:" field name;
 *   - every field listed for deletion is a "c:" or "v:" field of the
 *     input, and none of the kept items is listed;
 *   - a cart line's amount in cents agrees with its price text;
 *   - every item is within the bounds of ngx_http_retarget_store.h
 *     (qty 1..QTY_MAX, cents 0..AMOUNT_MAX), so no sum overflows.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_state.h"
#include "ngx_http_retarget_store.h"

#include <stdio.h>
#include <stdlib.h>


#define FUZZ_MAX_FIELDS  512


static int
fuzz_same(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}


static void
fuzz_check_items(ngx_http_retarget_state_t *st, ngx_array_t *items,
    ngx_uint_t max, u_char kind)
{
    ngx_uint_t                 i, k;
    ngx_str_t                 *stale;
    ngx_http_retarget_item_t  *it;

    it = items->elts;
    stale = st->stale.elts;

    if (items->nelts > max) {
        fuzz_fail("%u items kept, at most %u", (unsigned) items->nelts,
                  (unsigned) max);
    }

    for (i = 0; i < items->nelts; i++) {

        if (it[i].sku.len == 0 || it[i].sku.data[-1] != ':'
            || it[i].sku.data[-2] != kind)
        {
            fuzz_fail("item %u: the sku is not the rest of a \"%c:\" field",
                      (unsigned) i, kind);
        }

        if (it[i].qty < 1 || it[i].qty > NGX_HTTP_RETARGET_QTY_MAX
            || it[i].cents < 0 || it[i].cents > NGX_HTTP_RETARGET_AMOUNT_MAX
            || it[i].ms <= 0)
        {
            fuzz_fail("item %u: qty %lld, ms %lld", (unsigned) i,
                      (long long) it[i].qty, (long long) it[i].ms);
        }

        if (kind == 'c' && it[i].ms <= st->cart_cleared) {
            fuzz_fail("cart line %u is older than the cart's clearing",
                      (unsigned) i);
        }

        if (i > 0 && it[i].ms > it[i - 1].ms) {
            fuzz_fail("items not newest first at %u", (unsigned) i);
        }

        if (it[i].price.len == 0 && it[i].cents != 0) {
            fuzz_fail("item %u: cents without a valid price", (unsigned) i);
        }

        for (k = 0; k < st->stale.nelts; k++) {
            if (stale[k].data == it[i].sku.data - 2) {
                fuzz_fail("item %u is kept and listed for deletion",
                          (unsigned) i);
            }
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                     *p, *last, *nl;
    ngx_str_t                   kv[FUZZ_MAX_FIELDS], *stale;
    ngx_uint_t                  n, i;
    ngx_http_retarget_state_t   st;

    p = (u_char *) data;
    last = p + size;
    n = 0;

    while (p <= last && n < FUZZ_MAX_FIELDS) {
        nl = memchr(p, '\n', last - p);

        if (nl == NULL) {
            nl = last;
        }

        kv[n].len = nl - p;
        kv[n].data = malloc(kv[n].len + 1);

        if (kv[n].data == NULL) {
            abort();
        }

        memcpy(kv[n].data, p, kv[n].len);
        n++;

        p = nl + 1;
    }

    if (ngx_http_retarget_state_parse(fuzz_pool(), kv, n & ~1, &st)
        != NGX_OK)
    {
        fuzz_fail("parsing failed");
    }

    fuzz_check_items(&st, &st.cart, 50, 'c');
    fuzz_check_items(&st, &st.viewed, 8, 'v');

    stale = st.stale.elts;

    for (i = 0; i < st.stale.nelts; i++) {
        ngx_uint_t  k, found;

        found = 0;

        /* the field names are at the even places of the pairs parsed */
        for (k = 0; k + 1 < n; k += 2) {
            if (stale[i].data == kv[k].data && fuzz_same(&stale[i], &kv[k]))
            {
                found = 1;
            }
        }

        if (!found || stale[i].len < 2 || stale[i].data[1] != ':'
            || (stale[i].data[0] != 'c' && stale[i].data[0] != 'v'))
        {
            fuzz_fail("deletion %u is not a c:/v: field of the input",
                      (unsigned) i);
        }
    }

    for (i = 0; i < n; i++) {
        free(kv[i].data);
    }

    fuzz_reset();

    return 0;
}
