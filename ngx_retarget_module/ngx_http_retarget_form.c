
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Form bodies.  Url-encoded: fields split at "&", a name up to its first
 * "=", names compared after form decoding (a shop's "qty%5B0%5D" is the
 * operator's "qty[0]").  Multipart (RFC 7578): parts between CRLF
 * "--boundary" delimiters, each named by its Content-Disposition; a part
 * with a filename is an upload, never a value.
 */


#include "ngx_http_retarget_form.h"


/* one "name=value" of a header's parameters; the value as written */
typedef struct {
    u_char                        *name;
    size_t                         name_len;
    u_char                        *start;    /* the value: quotes off, */
    u_char                        *end;      /* escapes still in */
    ngx_uint_t                     quoted;
} ngx_http_retarget_param_t;


static ngx_int_t ngx_http_retarget_form_hex(u_char c);
static ngx_int_t ngx_http_retarget_boundary_check(u_char *start,
    u_char *end, ngx_str_t *boundary);
static ngx_int_t ngx_http_retarget_form_name_is(u_char *p, u_char *last,
    ngx_str_t *name);
static u_char *ngx_http_retarget_form_find(u_char *p, u_char *last,
    u_char *s, size_t n);
static ngx_int_t ngx_http_retarget_part_named(u_char *p, u_char *last,
    ngx_str_t *name);
static ngx_int_t ngx_http_retarget_disposition_named(u_char *p,
    u_char *last, ngx_str_t *name);
static ngx_int_t ngx_http_retarget_next_param(u_char **pp, u_char *last,
    ngx_http_retarget_param_t *prm);
static u_char *ngx_http_retarget_param_value(u_char *p, u_char *last,
    u_char **start, u_char **end, ngx_uint_t *quoted);
static ngx_int_t ngx_http_retarget_quoted_is(u_char *p, u_char *last,
    ngx_str_t *name);


ngx_int_t
ngx_http_retarget_form_field(u_char *p, size_t len, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *last, *end, *eq;

    for (last = p + len; p < last; p = end + 1) {

        end = ngx_strlchr(p, last, '&');

        if (end == NULL) {
            end = last;
        }

        /* "a&&b", a trailing "&": no field between */

        if (end > p) {
            eq = ngx_strlchr(p, end, '=');

            if (eq == NULL) {
                eq = end;
            }

            if (ngx_http_retarget_form_name_is(p, eq, name)) {
                value->data = (eq < end) ? eq + 1 : end;
                value->len = end - value->data;
                return NGX_OK;
            }
        }

        if (end == last) {
            break;
        }
    }

    return NGX_DECLINED;
}


u_char *
ngx_http_retarget_form_decode(u_char *dst, u_char *src, size_t len)
{
    u_char     *last;
    ngx_int_t   hi, lo;

    for (last = src + len; src < last; src++) {

        if (*src == '+') {
            *dst++ = ' ';
            continue;
        }

        if (*src == '%' && last - src > 2) {
            hi = ngx_http_retarget_form_hex(src[1]);
            lo = ngx_http_retarget_form_hex(src[2]);

            if (hi >= 0 && lo >= 0) {
                *dst++ = (u_char) (hi * 16 + lo);
                src += 2;
                continue;
            }
        }

        /* anything else, a "%" not followed by two hex digits too */
        *dst++ = *src;
    }

    return dst;
}


static ngx_int_t
ngx_http_retarget_form_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* whether the encoded name p..last decodes to name, decoded on the fly */

static ngx_int_t
ngx_http_retarget_form_name_is(u_char *p, u_char *last, ngx_str_t *name)
{
    u_char      c;
    size_t      i;
    ngx_int_t   hi, lo;

    for (i = 0; p < last; p++, i++) {

        c = *p;

        if (c == '+') {
            c = ' ';

        } else if (c == '%' && last - p > 2) {
            hi = ngx_http_retarget_form_hex(p[1]);
            lo = ngx_http_retarget_form_hex(p[2]);

            if (hi >= 0 && lo >= 0) {
                c = (u_char) (hi * 16 + lo);
                p += 2;
            }
        }

        if (i == name->len || name->data[i] != c) {
            return 0;
        }
    }

    return i == name->len;
}


ngx_int_t
ngx_http_retarget_multipart_boundary(u_char *p, size_t len,
    ngx_str_t *boundary)
{
    u_char                    *last;
    ngx_http_retarget_param_t  prm;

    last = p + len;

    /* the parameters, after the media type */

    p = ngx_strlchr(p, last, ';');

    if (p == NULL) {
        return NGX_DECLINED;
    }

    while (ngx_http_retarget_next_param(&p, last, &prm) == NGX_OK) {

        if (prm.name_len == sizeof("boundary") - 1
            && ngx_strncasecmp(prm.name, (u_char *) "boundary", prm.name_len)
               == 0)
        {
            return ngx_http_retarget_boundary_check(prm.start, prm.end,
                                                    boundary);
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_retarget_boundary_check(u_char *start, u_char *end,
    ngx_str_t *boundary)
{
    u_char  *n;

    if (end == start || end - start > NGX_HTTP_RETARGET_BOUNDARY_MAX) {
        return NGX_DECLINED;
    }

    for (n = start; n < end; n++) {
        /* not in a boundary's alphabet, and would need unquoting */
        if (*n == '"' || *n == '\\' || *n < 0x20 || *n >= 0x7f) {
            return NGX_DECLINED;
        }
    }

    boundary->data = start;
    boundary->len = end - start;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_multipart_field(u_char *p, size_t len,
    ngx_str_t *boundary, ngx_str_t *name, ngx_str_t *value)
{
    u_char  *last, *delim, *q, *headers, *body, *next;
    size_t   dlen;
    u_char   buf[4 + NGX_HTTP_RETARGET_BOUNDARY_MAX];

    if (boundary->len == 0 || boundary->len > NGX_HTTP_RETARGET_BOUNDARY_MAX)
    {
        return NGX_DECLINED;
    }

    /* "\r\n--boundary": the delimiter; the body may start without CRLF */

    buf[0] = CR;
    buf[1] = LF;
    buf[2] = '-';
    buf[3] = '-';
    ngx_memcpy(buf + 4, boundary->data, boundary->len);

    delim = buf;
    dlen = 4 + boundary->len;
    last = p + len;

    if ((size_t) (last - p) >= dlen - 2
        && ngx_memcmp(p, delim + 2, dlen - 2) == 0)
    {
        q = p + dlen - 2;

    } else {
        q = ngx_http_retarget_form_find(p, last, delim, dlen);

        if (q == NULL) {
            return NGX_DECLINED;
        }

        q += dlen;
    }

    for ( ;; ) {
        /* q: right after a delimiter; "--" closes the body */

        if (last - q >= 2 && q[0] == '-' && q[1] == '-') {
            return NGX_DECLINED;
        }

        while (q < last && (*q == ' ' || *q == '\t')) {
            q++;
        }

        if (last - q < 2 || q[0] != CR || q[1] != LF) {
            return NGX_DECLINED;
        }

        headers = q + 2;

        if (last - headers >= 2 && headers[0] == CR && headers[1] == LF) {
            /* no header fields: a part without a name */
            body = headers + 2;
            q = headers;

        } else {
            q = ngx_http_retarget_form_find(headers, last,
                                            (u_char *) CRLF CRLF, 4);
            if (q == NULL) {
                return NGX_DECLINED;
            }

            body = q + 4;
        }

        next = ngx_http_retarget_form_find(body, last, delim, dlen);

        if (next == NULL) {
            /* cut before its end: not a value */
            return NGX_DECLINED;
        }

        if (q > headers && ngx_http_retarget_part_named(headers, q, name)) {
            value->data = body;
            value->len = next - body;
            return NGX_OK;
        }

        q = next + dlen;
    }
}


static u_char *
ngx_http_retarget_form_find(u_char *p, u_char *last, u_char *s, size_t n)
{
    while ((size_t) (last - p) >= n) {

        p = ngx_strlchr(p, last - n + 1, s[0]);

        if (p == NULL) {
            return NULL;
        }

        if (ngx_memcmp(p, s, n) == 0) {
            return p;
        }

        p++;
    }

    return NULL;
}


/* whether the header fields p..last say form-data, name=name, no file */

static ngx_int_t
ngx_http_retarget_part_named(u_char *p, u_char *last, ngx_str_t *name)
{
    u_char  *eol;
    size_t   n;

    n = sizeof("Content-Disposition:") - 1;

    while (p < last) {

        eol = ngx_http_retarget_form_find(p, last, (u_char *) CRLF, 2);

        if (eol == NULL) {
            eol = last;
        }

        if ((size_t) (eol - p) >= n
            && ngx_strncasecmp(p, (u_char *) "Content-Disposition:", n) == 0)
        {
            return ngx_http_retarget_disposition_named(p + n, eol, name);
        }

        if (eol == last) {
            break;
        }

        p = eol + 2;
    }

    return 0;
}


static ngx_int_t
ngx_http_retarget_disposition_named(u_char *p, u_char *last,
    ngx_str_t *name)
{
    ngx_int_t                  rc;
    ngx_uint_t                 named;
    ngx_http_retarget_param_t  prm;

    /* the disposition type, "form-data" */

    p = ngx_strlchr(p, last, ';');

    if (p == NULL) {
        return 0;
    }

    named = 0;

    while ((rc = ngx_http_retarget_next_param(&p, last, &prm)) == NGX_OK) {

        if ((prm.name_len == 8
             && ngx_strncasecmp(prm.name, (u_char *) "filename", 8) == 0)
            || (prm.name_len == 9
                && ngx_strncasecmp(prm.name, (u_char *) "filename*", 9) == 0))
        {
            /* an upload */
            return 0;
        }

        if (prm.name_len == 4
            && ngx_strncasecmp(prm.name, (u_char *) "name", 4) == 0
            && !named)
        {
            if (prm.quoted) {
                named = ngx_http_retarget_quoted_is(prm.start, prm.end, name)
                        ? 1 : 2;

            } else {
                named = ((size_t) (prm.end - prm.start) == name->len
                         && ngx_memcmp(prm.start, name->data, name->len) == 0)
                        ? 1 : 2;
            }
        }
    }

    /* NGX_ERROR: a quoted value without its closing quote */
    return rc == NGX_DONE && named == 1;
}


/*
 * The next "; name=value" of a header's parameters at *pp: NGX_OK with
 * it in prm (*pp after it), NGX_DONE when there is none, NGX_ERROR for a
 * quoted value without its closing quote.  A parameter without a value
 * is passed over.
 */

static ngx_int_t
ngx_http_retarget_next_param(u_char **pp, u_char *last,
    ngx_http_retarget_param_t *prm)
{
    u_char  *p;

    p = *pp;

    while (p < last && *p == ';') {
        p++;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        prm->name = p;

        while (p < last && *p != '=' && *p != ';' && *p != ' '
               && *p != '\t')
        {
            p++;
        }

        prm->name_len = p - prm->name;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == last || *p != '=') {
            /* a parameter without a value */
            p = ngx_strlchr(p, last, ';');

            if (p == NULL) {
                break;
            }

            continue;
        }

        p = ngx_http_retarget_param_value(p + 1, last, &prm->start,
                                          &prm->end, &prm->quoted);
        if (p == NULL) {
            return NGX_ERROR;
        }

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        *pp = p;

        return NGX_OK;
    }

    *pp = last;

    return NGX_DONE;
}


/*
 * A parameter's value at p: a quoted string (start..end between the
 * quotes, escapes still in) or a token.  Returns where it ends, NULL for
 * a quoted string without its closing quote.
 */

static u_char *
ngx_http_retarget_param_value(u_char *p, u_char *last, u_char **start,
    u_char **end, ngx_uint_t *quoted)
{
    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p < last && *p == '"') {
        *quoted = 1;
        *start = ++p;

        while (p < last && *p != '"') {
            if (*p == '\\' && last - p > 1) {
                p++;
            }

            p++;
        }

        if (p >= last) {
            return NULL;
        }

        *end = p++;
        return p;
    }

    *quoted = 0;
    *start = p;

    while (p < last && *p != ';' && *p != ' ' && *p != '\t') {
        p++;
    }

    *end = p;

    return p;
}


/* whether a quoted string's content, its escapes undone, is name */

static ngx_int_t
ngx_http_retarget_quoted_is(u_char *p, u_char *last, ngx_str_t *name)
{
    size_t  i;

    for (i = 0; p < last; p++, i++) {

        if (*p == '\\' && last - p > 1) {
            p++;
        }

        if (i == name->len || name->data[i] != *p) {
            return 0;
        }
    }

    return i == name->len;
}
