
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the scanner of product pages
 * (ngx_http_retarget_page_scan.c).  The first two bytes of the input seed
 * where the page is cut, the third says what retarget_page_json names
 * (nothing, id=__NEXT_DATA__ or var=product); the rest is the page.  It
 * is scanned three times, each time from a fresh state:
 *
 *   - in one call over the whole page;
 *   - cut into pieces of 0 to 40 bytes, each copied into its own
 *     allocation, so that AddressSanitizer sees any read past a buffer;
 *   - a byte at a time, so that no tag takes the scanner's fast path for
 *     whole tags: the tokenizer's own states against that fast path.
 *
 * All must find the same value for every field and the same embedded
 * object: where the page is cut changes nothing.  The scanner keeps the
 * results of JSON-LD scripts in a per-process cache (built here with 4
 * entries and 8 KB, so that eviction runs often): when bit 0 of the
 * third byte's quotient by 3 is set, the cache is emptied first, so the
 * one-shot scan parses with jansson and the two others are answered from
 * the cache, which must give the same.  Every value is within
 * its bounds (NGX_HTTP_RETARGET_PAGE_ATTR_MAX, the embedded object
 * within NGX_HTTP_RETARGET_PAGE_JSON_MAX), holds no control character
 * and no leading or trailing space; an availability is "1" or "0", a
 * price digits with at most one ".".  LeakSanitizer checks that the
 * JSON of every script was freed.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_page_scan.h"
#include "ngx_http_retarget_page_ld.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    ngx_str_t   v[ngx_http_retarget_pf_count];
    ngx_str_t   embedded;
    ngx_uint_t  ld;
} fuzz_result_t;


static void
fuzz_init(ngx_http_retarget_page_scan_t *s, unsigned kind)
{
    memset(s, 0, sizeof(*s));

    s->pool = fuzz_pool();
    s->json_kind = kind;

    if (kind == NGX_HTTP_RETARGET_PAGE_JSON_ID) {
        ngx_str_set(&s->json_name, "__NEXT_DATA__");

    } else if (kind == NGX_HTTP_RETARGET_PAGE_JSON_VAR) {
        ngx_str_set(&s->json_name, "product");
    }

    if (ngx_http_retarget_page_scan_init(s) != NGX_OK) {
        fuzz_fail("init failed");
    }
}


static void
fuzz_take(ngx_http_retarget_page_scan_t *s, fuzz_result_t *res)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_retarget_pf_count; i++) {
        ngx_http_retarget_page_value(s, i, &res->v[i]);
    }

    res->embedded = s->embedded;
    res->ld = s->ld_scripts;

    if (s->capture.size > NGX_HTTP_RETARGET_PAGE_JSON_MAX) {
        fuzz_fail("a capture buffer of %u bytes", (unsigned) s->capture.size);
    }
}


static void
fuzz_check_value(ngx_uint_t field, ngx_str_t *v)
{
    size_t      i, dots;

    if (v->len == 0) {
        return;
    }

    if (v->len > NGX_HTTP_RETARGET_PAGE_ATTR_MAX) {
        fuzz_fail("field %u: %u bytes", (unsigned) field, (unsigned) v->len);
    }

    if (v->data[0] == ' ' || v->data[v->len - 1] == ' ') {
        fuzz_fail("field %u: not trimmed", (unsigned) field);
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] < 0x20 || v->data[i] == 0x7f
            || (i && v->data[i] == ' ' && v->data[i - 1] == ' '))
        {
            fuzz_fail("field %u: a control character or two spaces",
                      (unsigned) field);
        }
    }

    if (field == ngx_http_retarget_pf_in_stock
        && !(v->len == 1 && (v->data[0] == '0' || v->data[0] == '1')))
    {
        fuzz_fail("in_stock \"%.*s\"", (int) v->len, v->data);
    }

    if (field == ngx_http_retarget_pf_price) {
        dots = 0;

        for (i = 0; i < v->len; i++) {
            if (v->data[i] == '.') {
                dots++;

            } else if (v->data[i] < '0' || v->data[i] > '9') {
                fuzz_fail("price \"%.*s\"", (int) v->len, v->data);
            }
        }

        if (dots > 1 || v->data[0] == '.' || v->data[v->len - 1] == '.') {
            fuzz_fail("price \"%.*s\"", (int) v->len, v->data);
        }
    }
}


static int
fuzz_same(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                         *copy, *piece;
    size_t                          base, len;
    unsigned                        seed, kind;
    ngx_uint_t                      i;
    fuzz_result_t                   one, split, bytes;
    ngx_http_retarget_page_scan_t   s;

    if (size < 3) {
        return 0;
    }

    seed = data[0] | (data[1] << 8);
    kind = data[2] % 3;

    if ((data[2] / 3) & 1) {
        ngx_http_retarget_page_ld_cache_flush();
    }
    data += 3;
    size -= 3;

    /* one shot */

    fuzz_init(&s, kind);

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, data, size);
    (void) ngx_http_retarget_page_scan(&s, copy, copy + size);
    fuzz_take(&s, &one);

    /* split; the values of the first scan stay in the pool until reset */

    fuzz_init(&s, kind);
    base = 0;

    while (base < size) {
        seed = seed * 1103515245 + 12345;
        len = (seed >> 16) % 41;

        if (len > size - base) {
            len = size - base;
        }

        piece = malloc(len ? len : 1);
        if (piece == NULL) {
            abort();
        }

        memcpy(piece, data + base, len);
        (void) ngx_http_retarget_page_scan(&s, piece, piece + len);
        free(piece);

        base += len;
    }

    fuzz_take(&s, &split);

    /*
     * a byte at a time: no tag is ever whole in a buffer, so the fast
     * path for tags (ngx_http_retarget_page_tag_fast) never runs and
     * every tag goes through the tokenizer's states; the one-shot scan,
     * where most tags take the fast path, must find the same
     */

    fuzz_init(&s, kind);

    for (base = 0; base < size; base++) {
        piece = malloc(1);
        if (piece == NULL) {
            abort();
        }

        piece[0] = data[base];
        (void) ngx_http_retarget_page_scan(&s, piece, piece + 1);
        free(piece);
    }

    fuzz_take(&s, &bytes);

    for (i = 0; i < ngx_http_retarget_pf_count; i++) {
        fuzz_check_value(i, &one.v[i]);

        if (!fuzz_same(&one.v[i], &split.v[i])) {
            fuzz_fail("field %u: one shot \"%.*s\", split \"%.*s\"",
                      (unsigned) i, (int) one.v[i].len, one.v[i].data,
                      (int) split.v[i].len, split.v[i].data);
        }

        if (!fuzz_same(&one.v[i], &bytes.v[i])) {
            fuzz_fail("field %u: one shot \"%.*s\", byte by byte \"%.*s\"",
                      (unsigned) i, (int) one.v[i].len, one.v[i].data,
                      (int) bytes.v[i].len, bytes.v[i].data);
        }
    }

    if (!fuzz_same(&one.embedded, &split.embedded) || one.ld != split.ld
        || !fuzz_same(&one.embedded, &bytes.embedded) || one.ld != bytes.ld)
    {
        fuzz_fail("embedded object (%u, %u, %u bytes) or JSON-LD scripts "
                  "(%u, %u, %u) differ", (unsigned) one.embedded.len,
                  (unsigned) split.embedded.len,
                  (unsigned) bytes.embedded.len, (unsigned) one.ld,
                  (unsigned) split.ld, (unsigned) bytes.ld);
    }

    if (one.embedded.len > NGX_HTTP_RETARGET_PAGE_JSON_MAX) {
        fuzz_fail("embedded object of %u bytes",
                  (unsigned) one.embedded.len);
    }

    free(copy);
    fuzz_reset();

    return 0;
}
