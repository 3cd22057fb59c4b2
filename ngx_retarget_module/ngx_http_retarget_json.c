
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * JSON documents from outside: parsed with jansson after a scan that
 * refuses deep nesting (jansson's own limit is 2048 levels, each a
 * recursion), walked by a dot path ("items.0.sku", "-1": the last
 * element), and values given back as text: strings unescaped, integers
 * as written, reals in the shortest "%.15g" form, true/false, objects
 * and arrays as compact JSON; null and missing values are NULL.
 */


#include "ngx_http_retarget_json.h"


static ngx_int_t ngx_http_retarget_json_depth_ok(u_char *p, size_t len);
static json_t *ngx_http_retarget_json_step(json_t *v, u_char *p, size_t len);


/* NULL when the text is not one JSON value, or nests too deep */

json_t *
ngx_http_retarget_json_parse(u_char *p, size_t len)
{
    json_error_t  err;

    if (len == 0 || ngx_http_retarget_json_depth_ok(p, len) != NGX_OK) {
        return NULL;
    }

    return json_loadb((const char *) p, len,
                      JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
}


/* brackets outside strings, at most NGX_HTTP_RETARGET_JSON_DEPTH deep */

static ngx_int_t
ngx_http_retarget_json_depth_ok(u_char *p, size_t len)
{
    u_char      *last;
    ngx_uint_t   depth, string;

    depth = 0;
    string = 0;

    for (last = p + len; p < last; p++) {

        if (string) {
            if (*p == '\\') {
                p++;

            } else if (*p == '"') {
                string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            string = 1;
            break;

        case '[':
        case '{':
            if (++depth > NGX_HTTP_RETARGET_JSON_DEPTH) {
                return NGX_ERROR;
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

    return NGX_OK;
}


/*
 * "a.b.0.c": object keys and array indices (0-based, -1 the last); an
 * empty path or "." is the value itself.  NULL when it is not there.
 */

json_t *
ngx_http_retarget_json_path(json_t *root, u_char *path, size_t len)
{
    u_char  *p, *last, *dot;
    json_t  *v;

    v = root;

    if (v == NULL || len == 0 || (len == 1 && path[0] == '.')) {
        return v;
    }

    p = path;
    last = path + len;

    while (v != NULL) {
        dot = ngx_strlchr(p, last, '.');

        v = ngx_http_retarget_json_step(v, p, (dot ? dot : last) - p);

        if (dot == NULL) {
            break;
        }

        p = dot + 1;
    }

    return v;
}


static json_t *
ngx_http_retarget_json_step(json_t *v, u_char *p, size_t len)
{
    size_t      n;
    u_char     *q;
    ngx_uint_t  neg;

    if (json_is_object(v)) {
        return json_object_getn(v, (const char *) p, len);
    }

    if (!json_is_array(v) || len == 0 || len > 10) {
        return NULL;
    }

    neg = (p[0] == '-');
    n = 0;

    for (q = p + neg; q < p + len; q++) {
        if (*q < '0' || *q > '9') {
            return NULL;
        }

        n = n * 10 + (*q - '0');
    }

    if (q == p + neg) {
        return NULL;
    }

    if (neg) {
        if (n == 0 || n > json_array_size(v)) {
            return NULL;
        }

        n = json_array_size(v) - n;
    }

    return json_array_get(v, n);
}


/* the value as text in the pool; NGX_DECLINED for null */

ngx_int_t
ngx_http_retarget_json_text(ngx_pool_t *pool, json_t *v, ngx_str_t *out)
{
    char    *dump;
    u_char   buf[64];
    size_t   len;

    ngx_str_null(out);

    if (v == NULL) {
        return NGX_DECLINED;
    }

    switch (json_typeof(v)) {

    case JSON_STRING:
        len = json_string_length(v);
        out->data = ngx_pnalloc(pool, len + 1);
        if (out->data == NULL) {
            return NGX_ERROR;
        }

        out->len = len;
        ngx_memcpy(out->data, json_string_value(v), len);
        return NGX_OK;

    case JSON_INTEGER:
        len = ngx_sprintf(buf, "%L", (int64_t) json_integer_value(v)) - buf;
        break;

    case JSON_REAL:
        len = snprintf((char *) buf, sizeof(buf), "%.15g", json_real_value(v));
        break;

    case JSON_TRUE:
        len = ngx_cpymem(buf, "true", 4) - buf;
        break;

    case JSON_FALSE:
        len = ngx_cpymem(buf, "false", 5) - buf;
        break;

    case JSON_OBJECT:
    case JSON_ARRAY:
        dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dump == NULL) {
            return NGX_ERROR;
        }

        len = ngx_strlen(dump);
        out->data = ngx_pnalloc(pool, len + 1);
        if (out->data == NULL) {
            free(dump);
            return NGX_ERROR;
        }

        out->len = len;
        ngx_memcpy(out->data, dump, len);
        free(dump);
        return NGX_OK;

    default: /* null */
        return NGX_DECLINED;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = len;
    ngx_memcpy(out->data, buf, len);

    return NGX_OK;
}
