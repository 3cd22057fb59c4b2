
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The values of product pages, as every source gives them: a copy,
 * entity-decoded, white space collapsed and trimmed; a price reduced to
 * digits and a decimal point, an availability to "1" or "0".  The first
 * value found for a field in a source is kept.
 */


#include "ngx_http_retarget_page_clean.h"


static size_t ngx_http_retarget_page_decode(u_char *p, size_t len);
static u_char *ngx_http_retarget_page_entity(u_char *dst, u_char **pp,
    u_char *last);
static size_t ngx_http_retarget_page_price(u_char *p, size_t len);
static ngx_int_t ngx_http_retarget_page_stock(u_char *p, size_t len);


/* pool failures of a copy, ever: a JSON-LD result missing one is not cached */
ngx_uint_t  ngx_http_retarget_page_clean_nomem;


/* entities beyond &amp; &lt; &gt; &quot; &apos; and numeric ones */
static struct {
    ngx_str_t                      name;
    ngx_str_t                      utf8;
} ngx_http_retarget_page_entities[] = {
    { ngx_string("amp"), ngx_string("&") },
    { ngx_string("lt"), ngx_string("<") },
    { ngx_string("gt"), ngx_string(">") },
    { ngx_string("quot"), ngx_string("\"") },
    { ngx_string("apos"), ngx_string("'") },
    { ngx_string("nbsp"), ngx_string(" ") },
    { ngx_string("ndash"), ngx_string("\xe2\x80\x93") },
    { ngx_string("mdash"), ngx_string("\xe2\x80\x94") },
    { ngx_string("lsquo"), ngx_string("\xe2\x80\x98") },
    { ngx_string("rsquo"), ngx_string("\xe2\x80\x99") },
    { ngx_string("ldquo"), ngx_string("\xe2\x80\x9c") },
    { ngx_string("rdquo"), ngx_string("\xe2\x80\x9d") },
    { ngx_string("hellip"), ngx_string("\xe2\x80\xa6") },
    { ngx_string("euro"), ngx_string("\xe2\x82\xac") },
    { ngx_string("pound"), ngx_string("\xc2\xa3") },
    { ngx_string("copy"), ngx_string("\xc2\xa9") },
    { ngx_string("reg"), ngx_string("\xc2\xae") },
    { ngx_string("trade"), ngx_string("\xe2\x84\xa2") },
    { ngx_string("times"), ngx_string("\xc3\x97") },
    { ngx_null_string, ngx_null_string }
};


ngx_uint_t
ngx_http_retarget_page_is(u_char *name, size_t len, const char *s)
{
    size_t  n;

    n = ngx_strlen(s);

    return len == n && ngx_memcmp(name, s, n) == 0;
}


/* the first value of a field in a source is kept */

void
ngx_http_retarget_page_set(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t source, ngx_uint_t field, u_char *p, size_t len)
{
    if (s->v[source][field].len) {
        return;
    }

    (void) ngx_http_retarget_page_clean(s, field, p, len,
                                        &s->v[source][field]);
}


/*
 * A copy, entity-decoded, white space (and control characters) collapsed
 * and trimmed; a price reduced to a number, an availability to "1"/"0".
 * out is left alone when nothing is left.
 */

ngx_int_t
ngx_http_retarget_page_clean(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t field, u_char *p, size_t len, ngx_str_t *out)
{
    u_char     *buf, *src, *dst, *last;
    ngx_int_t   stock;
    ngx_uint_t  space;

    if (len == 0 || len > NGX_HTTP_RETARGET_PAGE_ATTR_MAX) {
        return NGX_DECLINED;
    }

    buf = ngx_pnalloc(s->pool, len);
    if (buf == NULL) {
        /* a JSON-LD result missing a value is not cached */
        ngx_http_retarget_page_clean_nomem++;
        return NGX_ERROR;
    }

    ngx_memcpy(buf, p, len);
    len = ngx_http_retarget_page_decode(buf, len);

    src = buf;
    last = buf + len;
    dst = buf;
    space = 0;

    for ( /* void */ ; src < last; src++) {
        if (*src <= 0x20 || *src == 0x7f) {
            space = (dst != buf);
            continue;
        }

        if (space) {
            *dst++ = ' ';
            space = 0;
        }

        *dst++ = *src;
    }

    len = dst - buf;

    if (field == ngx_http_retarget_pf_price) {
        len = ngx_http_retarget_page_price(buf, len);

    } else if (field == ngx_http_retarget_pf_in_stock) {
        stock = ngx_http_retarget_page_stock(buf, len);

        if (stock == NGX_DECLINED) {
            return NGX_DECLINED;
        }

        buf[0] = stock ? '1' : '0';
        len = 1;
    }

    if (len == 0) {
        return NGX_DECLINED;
    }

    out->data = buf;
    out->len = len;

    return NGX_OK;
}


/* HTML character references, in place: each is longer than its UTF-8 */

static size_t
ngx_http_retarget_page_decode(u_char *p, size_t len)
{
    u_char  *src, *dst, *last;

    src = p;
    dst = p;
    last = p + len;

    while (src < last) {
        if (*src != '&') {
            *dst++ = *src++;
            continue;
        }

        dst = ngx_http_retarget_page_entity(dst, &src, last);
    }

    return dst - p;
}


static u_char *
ngx_http_retarget_page_entity(u_char *dst, u_char **pp, u_char *last)
{
    u_char      *p, *start;
    size_t       n;
    uint32_t     cp;
    ngx_uint_t   i, hex, digits;

    p = *pp + 1;

    if (p < last && *p == '#') {
        p++;
        hex = (p < last && (*p == 'x' || *p == 'X'));
        p += hex;
        cp = 0;
        digits = 0;

        while (p < last && digits < 8) {
            if (*p >= '0' && *p <= '9') {
                cp = cp * (hex ? 16 : 10) + (*p - '0');

            } else if (hex && (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') {
                cp = cp * 16 + ((*p | 0x20) - 'a' + 10);

            } else {
                break;
            }

            p++;
            digits++;
        }

        if (digits == 0 || digits == 8 || p == last || *p != ';'
            || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        {
            goto literal;
        }

        *pp = p + 1;

        if (cp < 0x80) {
            *dst++ = (u_char) cp;

        } else if (cp < 0x800) {
            *dst++ = (u_char) (0xc0 | (cp >> 6));
            *dst++ = (u_char) (0x80 | (cp & 0x3f));

        } else if (cp < 0x10000) {
            *dst++ = (u_char) (0xe0 | (cp >> 12));
            *dst++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
            *dst++ = (u_char) (0x80 | (cp & 0x3f));

        } else {
            *dst++ = (u_char) (0xf0 | (cp >> 18));
            *dst++ = (u_char) (0x80 | ((cp >> 12) & 0x3f));
            *dst++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
            *dst++ = (u_char) (0x80 | (cp & 0x3f));
        }

        return dst;
    }

    start = p;

    while (p < last && p - start < 8 && ngx_http_retarget_page_alpha(*p)) {
        p++;
    }

    if (p == last || *p != ';') {
        goto literal;
    }

    n = p - start;

    for (i = 0; ngx_http_retarget_page_entities[i].name.len; i++) {
        if (n == ngx_http_retarget_page_entities[i].name.len
            && ngx_memcmp(start, ngx_http_retarget_page_entities[i].name.data,
                          n)
               == 0)
        {
            *pp = p + 1;
            return ngx_cpymem(dst, ngx_http_retarget_page_entities[i].utf8.data,
                              ngx_http_retarget_page_entities[i].utf8.len);
        }
    }

literal:

    *dst++ = '&';
    (*pp)++;

    return dst;
}


/*
 * "45", "18.90", "1,299.00", "1.299,00", "$ 45.00", "45,00 EUR": the
 * first number, the last "." or "," its decimal point (a lone "," before
 * three digits is a thousands separator), in place.  0 when none.
 */

static size_t
ngx_http_retarget_page_price(u_char *p, size_t len)
{
    u_char   *last, *start, *end, *dec, *dst, *q;
    size_t    commas, dots;

    last = p + len;
    start = p;

    while (start < last && !(*start >= '0' && *start <= '9')) {
        start++;
    }

    end = start;
    commas = 0;
    dots = 0;
    dec = NULL;

    while (end < last
           && ((*end >= '0' && *end <= '9') || *end == '.' || *end == ','))
    {
        if (*end == '.') {
            dots++;
            dec = end;

        } else if (*end == ',') {
            commas++;
            dec = end;
        }

        end++;
    }

    if (start == end) {
        return 0;
    }

    if (dec != NULL) {
        if (*dec == ',' && dots == 0 && (commas > 1 || end - dec == 4)) {
            dec = NULL;

        } else if (*dec == '.' && commas == 0 && dots > 1) {
            dec = NULL;
        }
    }

    dst = p;

    for (q = start; q < end; q++) {
        if (*q >= '0' && *q <= '9') {
            *dst++ = *q;

        } else if (q == dec) {
            *dst++ = '.';
        }
    }

    if (dst > p && dst[-1] == '.') {
        dst--;
    }

    return dst - p;
}


/* schema.org's availability (any URL form), OpenGraph's words */

static ngx_int_t
ngx_http_retarget_page_stock(u_char *p, size_t len)
{
    u_char      word[32], *last, *start;
    size_t      n;
    ngx_uint_t  i;

    static const char  *in[] = {
        "instock", "limitedavailability", "onlineonly", "instoreonly",
        "availablefororder", NULL
    };

    static const char  *out[] = {
        "outofstock", "soldout", "discontinued", "oos", NULL
    };

    last = p + len;
    start = p;

    for (i = 0; i < len; i++) {
        if (p[i] == '/' || p[i] == ':') {
            start = p + i + 1;
        }
    }

    n = 0;

    for ( /* void */ ; start < last; start++) {
        if (*start == ' ' || *start == '_' || *start == '-') {
            continue;
        }

        if (n == sizeof(word)) {
            return NGX_DECLINED;
        }

        word[n++] = ngx_tolower(*start);
    }

    for (i = 0; in[i]; i++) {
        if (ngx_http_retarget_page_is(word, n, in[i])) {
            return 1;
        }
    }

    for (i = 0; out[i]; i++) {
        if (ngx_http_retarget_page_is(word, n, out[i])) {
            return 0;
        }
    }

    return NGX_DECLINED;
}
