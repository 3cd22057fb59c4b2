
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for ngx_http_retarget_json.c: the bounded parse, the
 * dot path walk and the text of a value.  The input is a path, a newline
 * and a document.
 *
 * The properties, beyond no sanitizer report (and no leak: LeakSanitizer
 * sees every jansson allocation):
 *
 *   - a parsed document nests at most NGX_HTTP_RETARGET_JSON_MAX_DEPTH
 *     deep, and parsing the same bytes again gives an equal document;
 *   - the path of the input, walked or not, gives NULL or a value inside
 *     the document, whose text is well formed: an object's or array's is
 *     JSON that parses back to an equal value (reals aside: printed with
 *     15 digits), a string's is its bytes, an integer's reads back as the
 *     same integer, a real's as the same double;
 *   - every value of the document is found again by the path built from
 *     its keys and indices (where no key holds a "."), and each element
 *     of an array by its index counted from the end, -1 the last; a key
 *     or an index past the end finds nothing; "" and "." are the root.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_json.h"

#include <stdlib.h>
#include <string.h>


#define FUZZ_PATH_MAX   512
#define FUZZ_VISITS     2000


typedef struct {
    json_t      *root;
    u_char       path[FUZZ_PATH_MAX];
    ngx_uint_t   visits;
} fuzz_walk_t;


static ngx_uint_t
fuzz_has_real(json_t *v)
{
    size_t       i;
    json_t      *e;
    const char  *k;

    switch (json_typeof(v)) {

    case JSON_REAL:
        return 1;

    case JSON_ARRAY:
        json_array_foreach(v, i, e) {
            if (fuzz_has_real(e)) {
                return 1;
            }
        }

        return 0;

    case JSON_OBJECT:
        json_object_foreach(v, k, e) {
            if (fuzz_has_real(e)) {
                return 1;
            }
        }

        return 0;

    default:
        return 0;
    }
}


static ngx_uint_t
fuzz_depth(json_t *v)
{
    size_t       i;
    json_t      *e;
    ngx_uint_t   d, max;
    const char  *k;

    max = 0;

    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            d = fuzz_depth(e);
            max = d > max ? d : max;
        }

        return max + 1;
    }

    if (json_is_object(v)) {
        json_object_foreach(v, k, e) {
            d = fuzz_depth(e);
            max = d > max ? d : max;
        }

        return max + 1;
    }

    return 0;
}


static void
fuzz_check_text(json_t *v)
{
    char       buf[64], *end;
    json_t    *back;
    ngx_str_t  text;

    if (ngx_http_retarget_json_text(fuzz_pool(), v, &text) != NGX_OK) {
        fuzz_fail("json_text() failed");
    }

    if (text.len && text.data == NULL) {
        fuzz_fail("json_text(): a length without data");
    }

    switch (json_typeof(v)) {

    case JSON_STRING:
        if (text.len != json_string_length(v)
            || memcmp(text.data, json_string_value(v), text.len) != 0)
        {
            fuzz_fail("json_text(): a string is not its bytes");
        }

        break;

    case JSON_INTEGER:
        if (text.len == 0 || text.len >= sizeof(buf)) {
            fuzz_fail("json_text(): integer of %zu bytes", text.len);
        }

        memcpy(buf, text.data, text.len);
        buf[text.len] = '\0';

        if (strtoll(buf, &end, 10) != json_integer_value(v) || *end) {
            fuzz_fail("json_text(): integer \"%s\" is not %lld", buf,
                      (long long) json_integer_value(v));
        }

        break;

    case JSON_REAL:
        if (text.len == 0 || text.len >= sizeof(buf)) {
            fuzz_fail("json_text(): real of %zu bytes", text.len);
        }

        memcpy(buf, text.data, text.len);
        buf[text.len] = '\0';

        if (strtod(buf, &end) != json_real_value(v) || *end) {
            fuzz_fail("json_text(): real \"%s\" is not %.17g", buf,
                      json_real_value(v));
        }

        break;

    case JSON_TRUE:
    case JSON_FALSE:
        if (text.len != (json_is_true(v) ? 4 : 5)
            || memcmp(text.data, json_is_true(v) ? "true" : "false",
                      text.len) != 0)
        {
            fuzz_fail("json_text(): a boolean as \"%.*s\"", (int) text.len,
                      text.data);
        }

        break;

    case JSON_NULL:
        if (text.len != 0) {
            fuzz_fail("json_text(): null is not empty");
        }

        break;

    default: /* object, array */
        /* as the module reads it back (cart_sync): "\u0000" allowed */
        back = json_loadb((const char *) text.data, text.len,
                          JSON_ALLOW_NUL, NULL);

        if (back == NULL) {
            fuzz_fail("json_text(): \"%.*s\" does not parse",
                      (int) (text.len > 200 ? 200 : text.len), text.data);
        }

        if (!fuzz_has_real(v) && !json_equal(back, v)) {
            fuzz_fail("json_text(): the text is another value");
        }

        json_decref(back);
        break;
    }
}


static void
fuzz_find(fuzz_walk_t *w, size_t len, json_t *want)
{
    json_t  *got;

    got = ngx_http_retarget_json_path(w->root, w->path, len);

    if (got != want) {
        fuzz_fail("json_path(\"%.*s\") found %p, not %p", (int) len,
                  w->path, (void *) got, (void *) want);
    }
}


/* every value below v, whose path is w->path[0 .. len) */

static void
fuzz_walk(fuzz_walk_t *w, json_t *v, size_t len)
{
    int          n;
    size_t       i, size, klen, at;
    json_t      *e;
    const char  *k;

    if (++w->visits > FUZZ_VISITS) {
        return;
    }

    at = len ? len + 1 : 0;

    if (len && at < FUZZ_PATH_MAX) {
        w->path[len] = '.';
    }

    if (json_is_array(v)) {
        size = json_array_size(v);

        json_array_foreach(v, i, e) {
            n = snprintf((char *) w->path + at, FUZZ_PATH_MAX - at, "%zu", i);

            if (n < 0 || at + n >= FUZZ_PATH_MAX) {
                return;
            }

            fuzz_find(w, at + n, e);
            fuzz_walk(w, e, at + n);

            /* the walk below wrote over the path: written again */
            if (len) {
                w->path[len] = '.';
            }

            n = snprintf((char *) w->path + at, FUZZ_PATH_MAX - at, "-%zu",
                         size - i);

            if (n < 0 || at + n >= FUZZ_PATH_MAX) {
                return;
            }

            fuzz_find(w, at + n, e);
        }

        n = snprintf((char *) w->path + at, FUZZ_PATH_MAX - at, "%zu", size);

        if (n > 0 && at + n < FUZZ_PATH_MAX) {
            fuzz_find(w, at + n, NULL);
        }

        n = snprintf((char *) w->path + at, FUZZ_PATH_MAX - at, "-%zu",
                     size + 1);

        if (n > 0 && at + n < FUZZ_PATH_MAX) {
            fuzz_find(w, at + n, NULL);
        }

        return;
    }

    if (!json_is_object(v)) {
        return;
    }

    json_object_foreach(v, k, e) {
        klen = strlen(k);

        /* "" at the root would be the root itself */
        if (memchr(k, '.', klen) != NULL || at + klen >= FUZZ_PATH_MAX
            || (klen == 0 && at == 0))
        {
            continue;
        }

        memcpy(w->path + at, k, klen);

        fuzz_find(w, at + klen, e);
        fuzz_walk(w, e, at + klen);

        if (len) {
            w->path[len] = '.';
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char       *nl, *doc, *path;
    size_t        plen, dlen;
    json_t       *root, *again, *v;
    fuzz_walk_t   w;

    nl = memchr(data, '\n', size);

    if (nl == NULL) {
        plen = 0;
        dlen = size;
        doc = (u_char *) data;

    } else {
        plen = nl - data;
        dlen = size - plen - 1;
        doc = nl + 1;
    }

    /* exact-size heap copies: overreads are caught */

    path = malloc(plen ? plen : 1);
    memcpy(path, data, plen);

    doc = (u_char *) memcpy(malloc(dlen ? dlen : 1), doc, dlen);

    root = ngx_http_retarget_json_parse(doc, dlen);

    if (root != NULL) {
        if (fuzz_depth(root) > NGX_HTTP_RETARGET_JSON_MAX_DEPTH) {
            fuzz_fail("a document %lu deep was parsed",
                      (unsigned long) fuzz_depth(root));
        }

        again = ngx_http_retarget_json_parse(doc, dlen);

        if (again == NULL || !json_equal(root, again)) {
            fuzz_fail("the same bytes parse differently");
        }

        json_decref(again);

        v = ngx_http_retarget_json_path(root, path, plen);

        if (v != NULL) {
            fuzz_check_text(v);
        }

        fuzz_check_text(root);

        w.root = root;
        w.visits = 0;

        fuzz_find(&w, 0, root);
        w.path[0] = '.';
        fuzz_find(&w, 1, root);

        fuzz_walk(&w, root, 0);

        json_decref(root);

    } else if (ngx_http_retarget_json_path(NULL, path, plen) != NULL) {
        fuzz_fail("json_path(NULL) found something");
    }

    free(path);
    free(doc);

    fuzz_reset();

    return 0;
}
