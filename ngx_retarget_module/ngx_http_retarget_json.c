
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * JSON from outside: bodies of requests and responses, objects embedded
 * in pages.  jansson parses; what is bounded here is what jansson would
 * let a visitor cost: the length of the text, and the nesting depth
 * (jansson recurses once per level, up to 2048 levels).
 */


#include "ngx_http_retarget_json.h"

#include <stdio.h>
#include <stdlib.h>


/* an index of a path component: "-1" is the last element */
#define NGX_HTTP_RETARGET_JSON_MAX_INDEX  9


static ngx_int_t ngx_http_retarget_json_depth_ok(u_char *p, size_t len);
static json_t *ngx_http_retarget_json_step(json_t *v, u_char *p, size_t n);
static ngx_int_t ngx_http_retarget_json_real(ngx_pool_t *pool, double d,
    ngx_str_t *out);


json_t *
ngx_http_retarget_json_parse(u_char *p, size_t len)
{
    json_t        *root;
    json_error_t   err;

    if (p == NULL || len == 0 || len > NGX_HTTP_RETARGET_JSON_MAX_LEN) {
        return NULL;
    }

    if (!ngx_http_retarget_json_depth_ok(p, len)) {
        return NULL;
    }

    /*
     * JSON_DECODE_ANY: a body may be a bare string or number too.
     * JSON_ALLOW_NUL: a "\u0000" in one value must not lose the whole
     * body (a value with it fails the checks of what is stored).
     */

    root = json_loadb((const char *) p, len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                      &err);

    if (root == NULL && json_error_code(&err) == json_error_numeric_overflow) {
        /*
         * An integer beyond 64 bits somewhere (an id, a hash): read
         * integers as reals rather than refuse every value of the body
         */
        root = json_loadb((const char *) p, len,
                          JSON_DECODE_ANY | JSON_ALLOW_NUL
                          | JSON_DECODE_INT_AS_REAL, &err);
    }

    return root;
}


/*
 * Whether no object or array nests deeper than the bound: brackets are
 * counted outside strings.  Text that is not JSON may pass; jansson
 * rejects it then.
 */

static ngx_int_t
ngx_http_retarget_json_depth_ok(u_char *p, size_t len)
{
    u_char      *last;
    ngx_uint_t   depth, in_string;

    depth = 0;
    in_string = 0;

    for (last = p + len; p < last; p++) {

        if (in_string) {
            if (*p == '\\' && p + 1 < last) {
                p++;

            } else if (*p == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > NGX_HTTP_RETARGET_JSON_MAX_DEPTH) {
                return 0;
            }

            break;

        case ']':
        case '}':
            if (depth) {
                depth--;
            }

            break;
        }
    }

    return 1;
}


json_t *
ngx_http_retarget_json_path(json_t *root, u_char *path, size_t len)
{
    u_char  *p, *last, *dot;
    json_t  *v;

    if (root == NULL) {
        return NULL;
    }

    if (len == 0 || (len == 1 && path[0] == '.')) {
        return root;
    }

    v = root;
    p = path;
    last = path + len;

    for ( ;; ) {
        dot = ngx_strlchr(p, last, '.');

        if (dot == NULL) {
            dot = last;
        }

        v = ngx_http_retarget_json_step(v, p, dot - p);

        if (v == NULL || dot == last) {
            return v;
        }

        p = dot + 1;
    }
}


/* one component: a key of an object, or an index of an array */

static json_t *
ngx_http_retarget_json_step(json_t *v, u_char *p, size_t n)
{
    size_t      size;
    ngx_int_t   neg, i;
    ngx_uint_t  k;

    if (json_is_object(v)) {
        return json_object_getn(v, (const char *) p, n);
    }

    if (!json_is_array(v)) {
        return NULL;
    }

    neg = (n > 1 && p[0] == '-');

    if (neg) {
        p++;
        n--;
    }

    if (n == 0 || n > NGX_HTTP_RETARGET_JSON_MAX_INDEX) {
        return NULL;
    }

    i = 0;

    for (k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9') {
            return NULL;
        }

        i = i * 10 + (p[k] - '0');
    }

    size = json_array_size(v);

    if (neg) {
        if (i == 0 || (size_t) i > size) {
            return NULL;
        }

        i = size - i;
    }

    if ((size_t) i >= size) {
        return NULL;
    }

    return json_array_get(v, i);
}


ngx_int_t
ngx_http_retarget_json_text(ngx_pool_t *pool, json_t *v, ngx_str_t *out)
{
    u_char  *p;
    char    *dump;
    size_t   len;

    out->len = 0;
    out->data = (u_char *) "";

    if (v == NULL) {
        return NGX_OK;
    }

    switch (json_typeof(v)) {

    case JSON_STRING:
        len = json_string_length(v);

        p = ngx_pnalloc(pool, len ? len : 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, json_string_value(v), len);

        out->data = p;
        out->len = len;
        return NGX_OK;

    case JSON_INTEGER:
        p = ngx_pnalloc(pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        out->data = p;
        out->len = ngx_sprintf(p, "%L", (int64_t) json_integer_value(v)) - p;
        return NGX_OK;

    case JSON_REAL:
        return ngx_http_retarget_json_real(pool, json_real_value(v), out);

    case JSON_TRUE:
        ngx_str_set(out, "true");
        return NGX_OK;

    case JSON_FALSE:
        ngx_str_set(out, "false");
        return NGX_OK;

    case JSON_NULL:
        return NGX_OK;

    default: /* JSON_OBJECT, JSON_ARRAY */
        break;
    }

    /* jansson allocates the text with malloc(): copied, then freed */

    dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER
                         | JSON_REAL_PRECISION(15));
    if (dump == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(dump);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        free(dump);
        return NGX_ERROR;
    }

    ngx_memcpy(p, dump, len);
    free(dump);

    out->data = p;
    out->len = len;

    return NGX_OK;
}


/*
 * A real as people write it: 15 significant digits ("19.99", not
 * "19.989999999999998"), or 17 when 15 do not give the same number back.
 */

static ngx_int_t
ngx_http_retarget_json_real(ngx_pool_t *pool, double d, ngx_str_t *out)
{
    int      n;
    char     buf[64];
    u_char  *p;

    n = snprintf(buf, sizeof(buf), "%.15g", d);

    if (n > 0 && (size_t) n < sizeof(buf) && strtod(buf, NULL) != d) {
        n = snprintf(buf, sizeof(buf), "%.17g", d);
    }

    if (n <= 0 || (size_t) n >= sizeof(buf)) {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, buf, n);

    out->data = p;
    out->len = n;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_json_document(ngx_pool_t *pool, json_t *root,
    size_t flags, ngx_str_t *out)
{
    char    *s;
    size_t   len;

    s = (root != NULL) ? json_dumps(root, flags) : NULL;

    json_decref(root);

    if (s == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(s);

    out->data = ngx_pnalloc(pool, len + 1);

    if (out->data != NULL) {
        ngx_memcpy(out->data, s, len);
        out->data[len] = LF;
        out->len = len + 1;
    }

    free(s);

    return out->data ? NGX_OK : NGX_ERROR;
}
