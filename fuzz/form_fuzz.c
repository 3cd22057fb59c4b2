
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for ngx_http_retarget_form.c: url-encoded and
 * multipart/form-data field lookup.  The input is a field name, a
 * newline, a Content-Type value, a newline and a body.
 *
 * The properties, written independently of the module:
 *
 *   - url-encoded: the fields are the pieces between "&"s (an empty
 *     piece is none), a name up to its first "=", names compared
 *     form-decoded ("+" a space, "%" and two hex digits a byte, anything
 *     else itself); the lookup answers the first field so named, with its
 *     value's bytes inside the body; decoding never writes more than it
 *     reads;
 *   - a boundary taken from the Content-Type lies inside it, 1 to 200
 *     bytes, no quote, backslash or control character;
 *   - a multipart value found lies inside the body, right after a blank
 *     line and right before CRLF "--" and the boundary, and holds no
 *     delimiter;
 *   - planted: the fuzzed name and value, encoded byte by byte, are found
 *     again in an url-encoded body after other fields; in a multipart
 *     body, after a file part of the same name, they are found as they
 *     are (the value holding no delimiter).
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_form.h"

#include <stdlib.h>
#include <string.h>


#define FUZZ_BOUNDARY  "fUzZ-b0und:ary"


static int
fuzz_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* the model's decoding, into a malloc()ed copy */

static u_char *
fuzz_decode(const u_char *p, size_t len, size_t *out)
{
    size_t   i, n;
    u_char  *d;

    d = malloc(len ? len : 1);
    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] == '+') {
            d[n++] = ' ';

        } else if (p[i] == '%' && i + 2 < len && fuzz_hex(p[i + 1]) >= 0
                   && fuzz_hex(p[i + 2]) >= 0)
        {
            d[n++] = (u_char) (fuzz_hex(p[i + 1]) * 16 + fuzz_hex(p[i + 2]));
            i += 2;

        } else {
            d[n++] = p[i];
        }
    }

    *out = n;

    return d;
}


static u_char *
fuzz_put(u_char *p, const char *s)
{
    size_t  n;

    n = strlen(s);

    return (u_char *) memcpy(p, s, n) + n;
}


static const u_char *
fuzz_find(const u_char *p, size_t len, const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i + n <= len; i++) {
        if (memcmp(p + i, s, n) == 0) {
            return p + i;
        }
    }

    return NULL;
}


static void
fuzz_urlencoded(u_char *body, size_t len, ngx_str_t *name)
{
    u_char      *d, *got, *want_v;
    size_t       i, start, eq, dlen, n, want_len;
    ngx_int_t    rc;
    ngx_str_t    value;
    ngx_uint_t   found;

    found = 0;
    want_v = NULL;
    want_len = 0;

    for (start = 0; start <= len && !found; start = i + 1) {
        for (i = start; i < len && body[i] != '&'; i++) {
            /* void */
        }

        if (i == start) {
            /* an empty piece is no field */
            if (i == len) {
                break;
            }

            continue;
        }

        for (eq = start; eq < i && body[eq] != '='; eq++) {
            /* void */
        }

        d = fuzz_decode(body + start, eq - start, &dlen);

        if (dlen == name->len && memcmp(d, name->data, dlen) == 0) {
            found = 1;
            want_v = body + (eq < i ? eq + 1 : i);
            want_len = body + i - want_v;
        }

        free(d);

        if (i == len) {
            break;
        }
    }

    rc = ngx_http_retarget_form_field(body, len, name, &value);

    if (found != (rc == NGX_OK)) {
        fuzz_fail("form_field(): %s, the model %s", rc == NGX_OK ? "found"
                  : "not found", found ? "found" : "not found");
    }

    if (!found) {
        return;
    }

    if (value.data != want_v || value.len != want_len) {
        fuzz_fail("form_field(): another value than the first field's");
    }

    got = malloc(value.len ? value.len : 1);
    n = ngx_http_retarget_form_decode(got, value.data, value.len) - got;
    d = fuzz_decode(value.data, value.len, &dlen);

    if (n > value.len || n != dlen || memcmp(got, d, n) != 0) {
        fuzz_fail("form_decode(): not the model's decoding");
    }

    free(got);
    free(d);
}


static void
fuzz_multipart(u_char *body, size_t len, ngx_str_t *boundary,
    ngx_str_t *name)
{
    u_char     *delim;
    size_t      dlen;
    ngx_str_t   value;

    if (ngx_http_retarget_multipart_field(body, len, boundary, name, &value)
        != NGX_OK)
    {
        return;
    }

    if (value.data < body || value.data + value.len > body + len) {
        fuzz_fail("multipart_field(): a value outside the body");
    }

    if (value.data - body < 4 || memcmp(value.data - 4, "\r\n\r\n", 4) != 0) {
        fuzz_fail("multipart_field(): a value not after a blank line");
    }

    dlen = 4 + boundary->len;
    delim = malloc(dlen);
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary->data, boundary->len);

    if ((size_t) (body + len - (value.data + value.len)) < dlen
        || memcmp(value.data + value.len, delim, dlen) != 0)
    {
        fuzz_fail("multipart_field(): a value not before a delimiter");
    }

    if (fuzz_find(value.data, value.len, (char *) delim, dlen) != NULL) {
        fuzz_fail("multipart_field(): a value holding a delimiter");
    }

    free(delim);
}


static void
fuzz_planted(ngx_str_t *name, ngx_str_t *val)
{
    u_char      *b, *p;
    size_t       i, len;
    ngx_str_t    value, boundary;
    ngx_uint_t   plain;

    /* url-encoded: every byte of the name and the value as %XX */

    len = sizeof("a=1&x%zz=2&") - 1 + 3 * name->len + 1 + 3 * val->len
          + sizeof("&b=3") - 1;
    b = malloc(len);
    p = b + sprintf((char *) b, "a=1&x%%zz=2&");

    for (i = 0; i < name->len; i++) {
        p += sprintf((char *) p, "%%%02X", name->data[i]);
    }

    *p++ = '=';

    for (i = 0; i < val->len; i++) {
        p += sprintf((char *) p, "%%%02x", val->data[i]);
    }

    p = (u_char *) memcpy(p, "&b=3", 4) + 4;

    if (!(name->len == 1 && (name->data[0] == 'a' || name->data[0] == 'b'))
        && !(name->len == 4 && memcmp(name->data, "x%zz", 4) == 0))
    {
        if (ngx_http_retarget_form_field(b, p - b, name, &value) != NGX_OK) {
            fuzz_fail("planted url-encoded field not found");
        }

        p = malloc(value.len ? value.len : 1);
        len = ngx_http_retarget_form_decode(p, value.data, value.len) - p;

        if (len != val->len || memcmp(p, val->data, len) != 0) {
            fuzz_fail("planted url-encoded value decoded wrong");
        }

        free(p);
    }

    free(b);

    /* multipart: a name that needs no escaping, a value without CR */

    plain = name->len > 0;

    for (i = 0; i < name->len; i++) {
        if (name->data[i] == '"' || name->data[i] == '\\'
            || name->data[i] == '\r' || name->data[i] == '\n')
        {
            plain = 0;
        }
    }

    if (!plain || memchr(val->data, '\r', val->len) != NULL) {
        return;
    }

    len = 512 + 2 * name->len + val->len;
    b = malloc(len);

    /* memcpy(): the name may hold NUL bytes */

    p = fuzz_put(b, "--" FUZZ_BOUNDARY "\r\n"
                    "Content-Disposition: form-data; name=\"");
    p = (u_char *) memcpy(p, name->data, name->len) + name->len;
    p = fuzz_put(p, "\"; filename=\"f.txt\"\r\n\r\nFILE\r\n"
                    "--" FUZZ_BOUNDARY "  \r\n"
                    "Content-Type: text/plain\r\n"
                    "Content-Disposition: form-data; name=\"");
    p = (u_char *) memcpy(p, name->data, name->len) + name->len;
    p = fuzz_put(p, "\"\r\n\r\n");

    memcpy(p, val->data, val->len);
    p += val->len;
    p = fuzz_put(p, "\r\n--" FUZZ_BOUNDARY "--\r\n");

    ngx_str_set(&boundary, FUZZ_BOUNDARY);

    if (ngx_http_retarget_multipart_field(b, p - b, &boundary, name, &value)
        != NGX_OK)
    {
        fuzz_fail("planted multipart field not found");
    }

    if (value.len != val->len || memcmp(value.data, val->data, val->len) != 0)
    {
        fuzz_fail("planted multipart value is another");
    }

    free(b);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char          *nl, *ct, *body;
    size_t           i, ct_len, body_len;
    ngx_str_t        name, boundary, val;
    const uint8_t   *p, *last;

    p = data;
    last = data + size;

    nl = memchr(p, '\n', last - p);
    if (nl == NULL) {
        return 0;
    }

    name.len = nl - p;
    name.data = malloc(name.len ? name.len : 1);
    memcpy(name.data, p, name.len);
    p = nl + 1;

    nl = memchr(p, '\n', last - p);
    ct_len = (nl ? nl : last) - p;
    ct = malloc(ct_len ? ct_len : 1);
    memcpy(ct, p, ct_len);
    p = nl ? nl + 1 : last;

    body_len = last - p;
    body = malloc(body_len ? body_len : 1);
    memcpy(body, p, body_len);

    fuzz_urlencoded(body, body_len, &name);

    if (ngx_http_retarget_multipart_boundary(ct, ct_len, &boundary) == NGX_OK)
    {
        if (boundary.data < ct || boundary.data + boundary.len > ct + ct_len
            || boundary.len == 0
            || boundary.len > NGX_HTTP_RETARGET_BOUNDARY_MAX
            || memchr(boundary.data, '"', boundary.len) != NULL
            || memchr(boundary.data, '\\', boundary.len) != NULL)
        {
            fuzz_fail("multipart_boundary(): not a boundary");
        }

        for (i = 0; i < boundary.len; i++) {
            if (boundary.data[i] < 0x20 || boundary.data[i] >= 0x7f) {
                fuzz_fail("multipart_boundary(): a control character");
            }
        }

        fuzz_multipart(body, body_len, &boundary, &name);
    }

    /* the body once more as a value, under the fuzzed name */

    name.len = name.len > 100 ? 100 : name.len;
    val.data = body;
    val.len = body_len > 2000 ? 2000 : body_len;

    fuzz_planted(&name, &val);

    free(name.data);
    free(ct);
    free(body);

    fuzz_reset();

    return 0;
}
