
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * One cookie of the request, or none.  nginx's own
 * ngx_http_parse_multi_header_lines() splits the Cookie headers at ";"
 * and also at ",", and the first match wins: a cookie planted by another
 * host of the domain (Domain=..), an http page or a value holding
 * ",rt_vid=..." comes before the visitor's own, and chooses the visitor
 * id.  Here every Cookie header is split the same way, names compare
 * without regard to case (as nginx's do), and a name found more than
 * once is ambiguous: no valid cookie (a fresh visitor id, no consent
 * choice), whatever the values.
 */


#include "ngx_http_retarget_cookies.h"


/*
 * NGX_OK with value set when the cookie is there exactly once,
 * NGX_DECLINED when it is not there, NGX_BUSY when it is there twice or
 * more.
 */

ngx_int_t
ngx_http_retarget_cookie_find(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_int_t  rc;

#if (nginx_version >= 1023000)
    ngx_uint_t        found;
    ngx_table_elt_t  *h;

    found = 0;
    rc = NGX_DECLINED;

    for (h = r->headers_in.cookie; h; h = h->next) {
        rc = ngx_http_retarget_cookie_scan(h->value.data,
                                           h->value.data + h->value.len,
                                           name, value, &found);
        if (rc == NGX_BUSY) {
            break;
        }
    }

#else
    rc = ngx_http_retarget_cookie_lookup(&r->headers_in.cookies, name,
                                         value);
#endif

    if (rc == NGX_BUSY) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: cookie \"%V\" sent more than once, "
                      "taken as none", name);
    }

    return rc;
}


ngx_int_t
ngx_http_retarget_cookie_lookup(ngx_array_t *headers, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_int_t          rc;
    ngx_uint_t         i, found;
    ngx_table_elt_t  **h;

    found = 0;
    rc = NGX_DECLINED;

    if (headers->elts == NULL) {
        return rc;
    }

    h = headers->elts;

    for (i = 0; i < headers->nelts; i++) {
        rc = ngx_http_retarget_cookie_scan(h[i]->value.data,
                                           h[i]->value.data
                                           + h[i]->value.len,
                                           name, value, &found);
        if (rc == NGX_BUSY) {
            return rc;
        }
    }

    return found ? NGX_OK : NGX_DECLINED;
}


/*
 * One Cookie header, "a=1; b=2, c=3": the pairs are separated by ";" or
 * ",", with optional white space around them; a pair without "=" is a
 * name with an empty value.  *found counts the matches over all headers;
 * the value of the first is kept.  Returns NGX_BUSY on the second match,
 * else NGX_OK when *found, else NGX_DECLINED.
 */

ngx_int_t
ngx_http_retarget_cookie_scan(u_char *p, u_char *last, ngx_str_t *name,
    ngx_str_t *value, ngx_uint_t *found)
{
    u_char  *start, *end, *eq;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ';'
                            || *p == ','))
        {
            p++;
        }

        start = p;
        eq = NULL;

        while (p < last && *p != ';' && *p != ',') {
            if (eq == NULL && *p == '=') {
                eq = p;
            }

            p++;
        }

        if (start == p) {
            break;
        }

        end = (eq != NULL) ? eq : p;

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if ((size_t) (end - start) != name->len
            || ngx_strncasecmp(start, name->data, name->len) != 0)
        {
            continue;
        }

        if (++*found > 1) {
            return NGX_BUSY;
        }

        if (eq == NULL) {
            value->data = p;
            value->len = 0;
            continue;
        }

        start = eq + 1;
        end = p;

        while (start < end && (*start == ' ' || *start == '\t')) {
            start++;
        }

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        value->data = start;
        value->len = end - start;
    }

    return *found ? NGX_OK : NGX_DECLINED;
}
