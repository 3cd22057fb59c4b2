
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the checks on where the control endpoints send
 * the visitor back to (ngx_http_retarget_control.c).
 *
 * The control file is included, not linked, to reach its static
 * ngx_http_retarget_referer_path() too; the HTTP API it otherwise calls
 * is stubbed in fuzz/stubs_http.c (aborting: none of it is reached).
 *
 * The input is checked two ways:
 *
 *   - as a path, by ngx_http_retarget_same_site_path(): it must accept
 *     exactly the paths that start with "/", not with "//" or "/\", and
 *     contain no byte below 0x20, no 0x7f and no "\" (fuzz_same_site());
 *
 *   - as a Referer header, with "shop.example" as the server name, by
 *     ngx_http_retarget_referer_path(): a path it returns must be the end
 *     of the Referer, after "http(s)://shop.example" and an optional port,
 *     and pass the check above; and a Referer of "https://shop.example"
 *     followed by such a path must give that path;
 *
 *   - as an Origin and as a Referer, by
 *     ngx_http_retarget_origin_is_ours() with "shop.example" as the Host
 *     of a plain http request: an Origin is ours exactly when it is
 *     "http(s)://shop.example" with no port or the default port of its
 *     scheme, in any letter case; a Referer exactly when it starts so and
 *     goes on with nothing or a "/", "?" or "#" (fuzz_origin_check());
 *
 *   - as the raw value of a "to" argument, by
 *     ngx_http_retarget_unescape_to(): it must refuse exactly the values
 *     with a "%" not followed by two hex digits, and otherwise give each
 *     "%XY" as the byte 0xXY and every other byte as it is (fuzz_to()).
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_url.h"
#include "ngx_http_retarget_escape.h"

#include "ngx_http_retarget_control.c"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>


#define FUZZ_SERVER  "shop.example"


/* the property, written independently of the module */

static int
fuzz_same_site(const u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || p[0] != '/') {
        return 0;
    }

    if (len > 1 && (p[1] == '/' || p[1] == '\\')) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') {
            return 0;
        }
    }

    return 1;
}


/* the length of "http(s)://shop.example" at the start of p, or 0 */

static size_t
fuzz_origin(const u_char *p, size_t len)
{
    size_t  n;

    if (len >= 8 && ngx_strncasecmp((u_char *) p, (u_char *) "https://", 8)
                    == 0)
    {
        n = 8;

    } else if (len >= 7
               && ngx_strncasecmp((u_char *) p, (u_char *) "http://", 7)
                  == 0)
    {
        n = 7;

    } else {
        return 0;
    }

    if (len - n < sizeof(FUZZ_SERVER) - 1
        || ngx_strncasecmp((u_char *) p + n, (u_char *) FUZZ_SERVER,
                           sizeof(FUZZ_SERVER) - 1)
           != 0)
    {
        return 0;
    }

    return n + sizeof(FUZZ_SERVER) - 1;
}


static void
fuzz_path(u_char *copy, size_t size)
{
    int         got, want;
    ngx_str_t   path;

    path.data = copy;
    path.len = size;

    got = ngx_http_retarget_same_site_path(&path) ? 1 : 0;
    want = fuzz_same_site(copy, size);

    if (got != want) {
        fuzz_fail("same_site_path() %s a path it should %s",
                  got ? "accepted" : "refused", got ? "refuse" : "accept");
    }

    if (path.data != copy || path.len != size) {
        fuzz_fail("same_site_path() changed its argument");
    }
}


static void
fuzz_referer(u_char *copy, size_t size)
{
    u_char              *p, *last;
    size_t               origin;
    ngx_int_t            rc;
    ngx_str_t            path;
    ngx_table_elt_t      referer;
    ngx_http_request_t   r;

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    ngx_memzero(&referer, sizeof(ngx_table_elt_t));

    ngx_str_set(&referer.key, "Referer");
    referer.value.data = copy;
    referer.value.len = size;

    r.headers_in.referer = &referer;
    ngx_str_set(&r.headers_in.server, FUZZ_SERVER);

    /* as ngx_http_retarget_return_path() does */
    path.len = 0;
    path.data = NULL;

    rc = ngx_http_retarget_referer_path(&r, &path);

    if (rc != NGX_OK) {
        fuzz_fail("referer_path() returned %ld", (long) rc);
    }

    origin = fuzz_origin(copy, size);
    last = copy + size;

    if (path.len == 0) {

        if (origin && fuzz_same_site(copy + origin, size - origin)) {
            fuzz_fail("referer_path() refused the same-site path after "
                      "\"%.*s\"", (int) origin, copy);
        }

        return;
    }

    if (origin == 0) {
        fuzz_fail("referer_path() accepted a Referer of another site");
    }

    if (path.data < copy + origin || path.data + path.len != last) {
        fuzz_fail("referer_path() returned a path that is not the end of "
                  "the Referer");
    }

    if (!fuzz_same_site(path.data, path.len)) {
        fuzz_fail("referer_path() returned a path that is not same-site");
    }

    /* between the host and the path: nothing, or a ":port" */

    if (path.data != copy + origin) {

        if (copy[origin] != ':') {
            fuzz_fail("referer_path(): the host is followed by 0x%02x",
                      copy[origin]);
        }

        for (p = copy + origin; p < path.data; p++) {
            if (*p == '/' || *p == '?' || *p == '#') {
                fuzz_fail("referer_path() skipped a '%c' after the host", *p);
            }
        }
    }
}


/* the property of ngx_http_retarget_origin_is_ours(), independently */

static int
fuzz_ours(const u_char *p, size_t len, int prefix)
{
    size_t       i, n;
    const char  *o;

    static const char  *origins[] = {
        "http://shop.example", "http://shop.example:80",
        "https://shop.example", "https://shop.example:443", NULL
    };

    for (i = 0; origins[i]; i++) {
        o = origins[i];
        n = strlen(o);

        if (len < n || strncasecmp((const char *) p, o, n) != 0) {
            continue;
        }

        if (len == n) {
            return 1;
        }

        if (prefix && (p[n] == '/' || p[n] == '?' || p[n] == '#')) {
            return 1;
        }
    }

    return 0;
}


static void
fuzz_origin_check(u_char *copy, size_t size)
{
    int                  got, want;
    ngx_str_t            url;
    ngx_uint_t           prefix;
    ngx_table_elt_t      host;
    ngx_connection_t     c;
    ngx_http_request_t   r;

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    ngx_memzero(&c, sizeof(ngx_connection_t));
    ngx_memzero(&host, sizeof(ngx_table_elt_t));

    ngx_str_set(&host.key, "Host");
    ngx_str_set(&host.value, FUZZ_SERVER);

    r.connection = &c;
    r.headers_in.host = &host;

    url.data = copy;
    url.len = size;

    for (prefix = 0; prefix < 2; prefix++) {
        got = ngx_http_retarget_origin_is_ours(&r, &url, prefix) ? 1 : 0;
        want = fuzz_ours(copy, size, (int) prefix);

        if (got != want) {
            fuzz_fail("origin_is_ours(%s) %s \"%.*s\"",
                      prefix ? "Referer" : "Origin",
                      got ? "accepted" : "refused", (int) size, copy);
        }
    }
}


static int
fuzz_hex(u_char c)
{
    static const char  digits[] = "0123456789abcdef";

    return (int) (strchr(digits, tolower(c)) - digits);
}


static void
fuzz_to(u_char *copy, size_t size)
{
    u_char     *got, *want;
    size_t      i, n;
    ngx_int_t   rc;
    ngx_str_t   src, dst;
    int         valid;

    got = malloc(size ? size : 1);
    want = malloc(size ? size : 1);

    if (got == NULL || want == NULL) {
        fuzz_fail("out of memory");
    }

    /* the property, decoded independently */

    valid = 1;
    n = 0;

    for (i = 0; i < size; i++) {

        if (copy[i] != '%') {
            want[n++] = copy[i];
            continue;
        }

        if (size - i < 3 || !isxdigit(copy[i + 1]) || !isxdigit(copy[i + 2]))
        {
            valid = 0;
            break;
        }

        want[n++] = (u_char) (fuzz_hex(copy[i + 1]) * 16
                              + fuzz_hex(copy[i + 2]));
        i += 2;
    }

    src.data = copy;
    src.len = size;
    dst.data = got;
    dst.len = 0;

    rc = ngx_http_retarget_unescape_to(&src, &dst);

    if ((rc == NGX_OK) != valid) {
        fuzz_fail("unescape_to() %s a value it should %s",
                  rc == NGX_OK ? "accepted" : "refused",
                  rc == NGX_OK ? "refuse" : "accept");
    }

    if (rc == NGX_OK) {
        if (dst.data != got || dst.len != n || memcmp(got, want, n) != 0) {
            fuzz_fail("unescape_to() decoded \"%.*s\" wrongly",
                      (int) size, copy);
        }
    }

    free(got);
    free(want);
}


/*
 * What error.log gets of a value (ngx_http_retarget_escape.c): printable
 * ASCII only, no '"' or '\' unescaped, at most 4 bytes per input byte of
 * the first NGX_HTTP_RETARGET_LOG_VALUE_MAX, and "..." when cut
 */

static void
fuzz_log_value(u_char *data, size_t size)
{
    size_t     i, n;
    ngx_str_t  out;

    ngx_http_retarget_log_value(fuzz_pool(), data, size, &out);

    n = ngx_min(size, NGX_HTTP_RETARGET_LOG_VALUE_MAX);

    if (out.len > 4 * n + 3) {
        fuzz_fail("log value: %u bytes for %u", (unsigned) out.len,
                  (unsigned) size);
    }

    for (i = 0; i < out.len; i++) {
        if (out.data[i] < 0x20 || out.data[i] >= 0x7f
            || (out.data[i] == '"')
            || (out.data[i] == '\\'
                && (i + 1 >= out.len || out.data[i + 1] != 'x')))
        {
            fuzz_fail("log value: byte 0x%02x at %u", out.data[i],
                      (unsigned) i);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *copy;

    /* an exact-size heap copy: libFuzzer's buffer may have slack */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        fuzz_fail("out of memory");
    }

    if (size) {
        memcpy(copy, data, size);
    }

    fuzz_path(copy, size);
    fuzz_referer(copy, size);
    fuzz_origin_check(copy, size);
    fuzz_to(copy, size);
    fuzz_log_value(copy, size);

    free(copy);

    fuzz_reset();

    return 0;
}
