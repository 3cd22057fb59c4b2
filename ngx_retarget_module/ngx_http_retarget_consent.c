
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Consent: decided from the consent cookie and the Sec-GPC / DNT headers
 * before anything is set or stored.  An explicit choice of the visitor
 * ("in" or "out", made through the control endpoints) wins over a
 * browser-wide header; dismissing the notice ("ack") is not consent and
 * does not.
 *
 * The consent cookie is "<choice>.<sig>", sig the HMAC of "consent:" and
 * the choice with the first key of retarget_secret (any key verifies),
 * like the visitor cookie: a page of another host of the domain, an http
 * page or a script cannot make one up.  The value is the same for every
 * visitor who made that choice, so it identifies no one.  An unsigned,
 * forged or duplicated consent cookie is no choice, but for the plain
 * "out" that versions before the signature set (see
 * ngx_http_retarget_consent_cookie_read()).
 */


#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_cookies.h"
#include "ngx_http_retarget_hmac.h"


static ngx_uint_t ngx_http_retarget_privacy_headers(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_header_is_one(ngx_str_t *value);
static ngx_int_t ngx_http_retarget_consent_sign(ngx_http_request_t *r,
    ngx_uint_t key, ngx_str_t *choice, u_char *sig);
static ngx_int_t ngx_http_retarget_consent_cookie_read(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_str_t *choice, ngx_uint_t *key);


#define NGX_HTTP_RETARGET_GPC  1
#define NGX_HTTP_RETARGET_DNT  2

#define NGX_HTTP_RETARGET_CONSENT_MAX  sizeof("consent:ack")

/* the "key" of the legacy unsigned "out": to be signed, like an old key */
#define NGX_HTTP_RETARGET_CONSENT_UNSIGNED  ((ngx_uint_t) -1)


static ngx_str_t  ngx_http_retarget_consent_names[] = {
    ngx_string("notice"),
    ngx_string("ack"),
    ngx_string("in"),
    ngx_string("pending"),
    ngx_string("out"),
    ngx_string("gpc"),
    ngx_string("dnt")
};


ngx_http_retarget_consent_e
ngx_http_retarget_consent_state(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    return ngx_http_retarget_consent_decide(r, rlcf, NULL);
}


/* *resign (when not NULL) is set when an older key signed the choice */

ngx_http_retarget_consent_e
ngx_http_retarget_consent_decide(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_uint_t *resign)
{
    ngx_str_t   value;
    ngx_uint_t  headers, ack, key;

    ack = 0;

    if (resign) {
        *resign = 0;
    }

    if (ngx_http_retarget_consent_cookie_read(r, rlcf, &value, &key)
        == NGX_OK)
    {
        if (resign) {
            *resign = (key != 0);
        }

        if (value.len == 2 && ngx_strncmp(value.data, "in", 2) == 0) {
            return ngx_http_retarget_consent_in;
        }

        if (value.len == 3 && ngx_strncmp(value.data, "out", 3) == 0) {
            return ngx_http_retarget_consent_out;
        }

        ack = (value.len == 3 && ngx_strncmp(value.data, "ack", 3) == 0);
    }

    headers = ngx_http_retarget_privacy_headers(r, rlcf);

    if (headers & NGX_HTTP_RETARGET_GPC) {
        return ngx_http_retarget_consent_gpc;
    }

    if (headers & NGX_HTTP_RETARGET_DNT) {
        return ngx_http_retarget_consent_dnt;
    }

    if (rlcf->consent_mode == NGX_HTTP_RETARGET_MODE_OPTIN) {
        return ngx_http_retarget_consent_pending;
    }

    return ack ? ngx_http_retarget_consent_ack
               : ngx_http_retarget_consent_notice;
}


/* one pass over the request headers for the signals that are enabled */

static ngx_uint_t
ngx_http_retarget_privacy_headers(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    ngx_uint_t        i, found;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    found = 0;

    if (!rlcf->gpc && !rlcf->dnt) {
        return found;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (rlcf->gpc
            && h[i].key.len == sizeof("Sec-GPC") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-GPC",
                               sizeof("Sec-GPC") - 1)
               == 0
            && ngx_http_retarget_header_is_one(&h[i].value))
        {
            found |= NGX_HTTP_RETARGET_GPC;
        }

        if (rlcf->dnt
            && h[i].key.len == sizeof("DNT") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "DNT",
                               sizeof("DNT") - 1)
               == 0
            && ngx_http_retarget_header_is_one(&h[i].value))
        {
            found |= NGX_HTTP_RETARGET_DNT;
        }
    }

    return found;
}


static ngx_int_t
ngx_http_retarget_header_is_one(ngx_str_t *value)
{
    return value->len == 1 && value->data[0] == '1';
}


ngx_int_t
ngx_http_retarget_consent_tracks(ngx_http_retarget_consent_e c)
{
    return c == ngx_http_retarget_consent_notice
           || c == ngx_http_retarget_consent_ack
           || c == ngx_http_retarget_consent_in;
}


ngx_str_t *
ngx_http_retarget_consent_name(ngx_http_retarget_consent_e c)
{
    return &ngx_http_retarget_consent_names[c];
}


/*
 * The choice of a valid consent cookie ("ack", "in" or "out") and the
 * index of the key that signed it: NGX_OK, else NGX_DECLINED (none, more
 * than one, another value, unsigned or forged).
 */

static ngx_int_t
ngx_http_retarget_consent_cookie_read(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_str_t *choice, ngx_uint_t *key)
{
    u_char                         *dot, *p;
    u_char                          msg[NGX_HTTP_RETARGET_CONSENT_MAX];
    ngx_str_t                       value;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->hmac == NULL
        || ngx_http_retarget_cookie_find(r, &rlcf->cookie->consent_name,
                                         &value)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (value.len == 3 && ngx_strncmp(value.data, "out", 3) == 0) {
        /*
         * The unsigned "out" of the versions before the signature: an
         * opt-out made before the upgrade holds, and a planted one can
         * only stop tracking.  It is signed on the next response.
         */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: unsigned consent cookie \"out\" kept");

        choice->data = value.data;
        choice->len = 3;
        *key = NGX_HTTP_RETARGET_CONSENT_UNSIGNED;

        return NGX_OK;
    }

    dot = ngx_strlchr(value.data, value.data + value.len, '.');

    if (dot == NULL
        || (size_t) (value.data + value.len - dot - 1)
           != NGX_HTTP_RETARGET_SIG_LEN)
    {
        goto invalid;
    }

    choice->data = value.data;
    choice->len = dot - value.data;

    if (!((choice->len == 2 && ngx_strncmp(choice->data, "in", 2) == 0)
          || (choice->len == 3 && ngx_strncmp(choice->data, "out", 3) == 0)
          || (choice->len == 3 && ngx_strncmp(choice->data, "ack", 3) == 0)))
    {
        goto invalid;
    }

    p = ngx_cpymem(msg, "consent:", sizeof("consent:") - 1);
    p = ngx_cpymem(p, choice->data, choice->len);

    if (ngx_http_retarget_hmac_verify(r->connection->log, rmcf->hmac, msg,
                                      p - msg, dot + 1, key)
        != NGX_OK)
    {
        goto invalid;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: consent cookie \"%V\" signed by key %ui",
                   choice, *key);

    return NGX_OK;

invalid:

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "retarget: consent cookie not signed by this shop, "
                  "taken as no choice");

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_retarget_consent_sign(ngx_http_request_t *r, ngx_uint_t key,
    ngx_str_t *choice, u_char *sig)
{
    u_char                         *p;
    u_char                          msg[NGX_HTTP_RETARGET_CONSENT_MAX];
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (choice->len > 3) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(msg, "consent:", sizeof("consent:") - 1);
    p = ngx_cpymem(p, choice->data, choice->len);

    if (ngx_http_retarget_hmac_sign(rmcf->hmac, key, msg, p - msg, sig)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "retarget: HMAC-SHA256 failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the value of the consent cookie for a choice, in the request pool */

ngx_int_t
ngx_http_retarget_consent_value(ngx_http_request_t *r, ngx_str_t *choice,
    ngx_str_t *value)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, choice->len + 1 + NGX_HTTP_RETARGET_SIG_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value->data = p;

    p = ngx_cpymem(p, choice->data, choice->len);
    *p++ = '.';

    if (ngx_http_retarget_consent_sign(r, 0, choice, p) != NGX_OK) {
        return NGX_ERROR;
    }

    value->len = choice->len + 1 + NGX_HTTP_RETARGET_SIG_LEN;

    return NGX_OK;
}


/*
 * The consent cookie signed again with the first key, when an older key
 * signed it: NGX_OK with the new value, else NGX_DECLINED.
 */

ngx_int_t
ngx_http_retarget_consent_resigned(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_str_t *value)
{
    ngx_str_t   choice;
    ngx_uint_t  key;

    if (ngx_http_retarget_consent_cookie_read(r, rlcf, &choice, &key)
        != NGX_OK
        || key == 0)
    {
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: consent \"%V\" signed again", &choice);

    return ngx_http_retarget_consent_value(r, &choice, value);
}
