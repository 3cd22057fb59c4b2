
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The signed visitor identity: "<vid>.<sig>", where vid is 16 bytes from
 * the CSPRNG and sig the first 16 bytes of HMAC-SHA256(key, vid), both
 * base64url.  The first retarget_secret key signs, every key verifies, so
 * keys can be rotated without logging visitors out: a cookie signed with
 * an old key is accepted and re-signed with the current one.
 */


#include "ngx_http_retarget_identity.h"
#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_cookies.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_hmac.h"

#include <openssl/rand.h>


#define NGX_HTTP_RETARGET_VID_BYTES   16


static ngx_int_t ngx_http_retarget_verify(ngx_http_request_t *r,
    void *hmac, ngx_str_t *value, ngx_uint_t *key);
static ngx_int_t ngx_http_retarget_new_vid(ngx_http_request_t *r,
    u_char *vid);
static ngx_int_t ngx_http_retarget_is_base64url(u_char *p, size_t len);


/*
 * Returns NGX_OK with the index of the key that signed the cookie,
 * NGX_DECLINED for a malformed or forged cookie.
 */

static ngx_int_t
ngx_http_retarget_verify(ngx_http_request_t *r, void *hmac, ngx_str_t *value,
    ngx_uint_t *key)
{
    ngx_str_t  safe;

    if (value->len != NGX_HTTP_RETARGET_COOKIE_LEN
        || value->data[NGX_HTTP_RETARGET_VID_LEN] != '.'
        || !ngx_http_retarget_is_base64url(value->data,
                                           NGX_HTTP_RETARGET_VID_LEN))
    {
        ngx_http_retarget_log_value(r->pool, value->data, value->len, &safe);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: malformed visitor cookie \"%V\"", &safe);
        return NGX_DECLINED;
    }

    if (ngx_http_retarget_hmac_verify(r->connection->log, hmac, value->data,
                                      NGX_HTTP_RETARGET_VID_LEN,
                                      value->data + NGX_HTTP_RETARGET_VID_LEN
                                      + 1, key)
        == NGX_OK)
    {
        return NGX_OK;
    }

    ngx_http_retarget_log_value(r->pool, value->data, value->len, &safe);
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "retarget: visitor cookie with a bad signature \"%V\"",
                  &safe);

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_retarget_is_base64url(u_char *p, size_t len)
{
    u_char  c;

    while (len--) {
        c = *p++;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_')
        {
            continue;
        }

        return 0;
    }

    return 1;
}


static ngx_int_t
ngx_http_retarget_new_vid(ngx_http_request_t *r, u_char *vid)
{
    u_char     raw[NGX_HTTP_RETARGET_VID_BYTES];
    ngx_str_t  src, dst;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "retarget: RAND_bytes() failed");
        return NGX_ERROR;
    }

    src.len = sizeof(raw);
    src.data = raw;
    dst.data = vid;

    ngx_encode_base64url(&dst, &src);

    return NGX_OK;
}


/*
 * The visitor id of a valid cookie, if any: NGX_OK with vid filled in
 * and *resign set when an older key signed it, else NGX_DECLINED.
 */

ngx_int_t
ngx_http_retarget_cookie_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, u_char *vid, ngx_uint_t *resign)
{
    ngx_str_t                       value;
    ngx_uint_t                      key;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->hmac == NULL
        || ngx_http_retarget_cookie_find(r, &rlcf->cookie->name, &value)
           != NGX_OK
        || ngx_http_retarget_verify(r, rmcf->hmac, &value, &key) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(vid, value.data, NGX_HTTP_RETARGET_VID_LEN);
    *resign = (key != 0);

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_identify(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx)
{
    ngx_uint_t  resign;

    ctx->consent = ngx_http_retarget_consent_decide(r, rlcf, &resign);
    ctx->consent_resign = resign;
    ctx->tracked = ngx_http_retarget_consent_tracks(ctx->consent);

    ctx->show_notice = (ctx->consent == ngx_http_retarget_consent_notice
                        || ctx->consent == ngx_http_retarget_consent_pending);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: consent \"%V\", tracked:%ui notice:%ui",
                   ngx_http_retarget_consent_name(ctx->consent),
                   (ngx_uint_t) ctx->tracked, (ngx_uint_t) ctx->show_notice);

    if (!ctx->tracked) {
        /* never identified: no cookie is read, set or logged */
        return NGX_OK;
    }

    if (ngx_http_retarget_cookie_visitor(r, rlcf, ctx->vid, &resign)
        == NGX_OK)
    {
        /* signed with an older key: re-sign with the current one */
        ctx->set_cookie = resign;

    } else {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget: no valid visitor cookie, a new id");

        if (ngx_http_retarget_new_vid(r, ctx->vid) != NGX_OK) {
            return NGX_ERROR;
        }

        ctx->new_visitor = 1;
        ctx->set_cookie = 1;
    }

    ctx->visitor.len = NGX_HTTP_RETARGET_VID_LEN;
    ctx->visitor.data = ctx->vid;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: visitor \"%V\" new:%ui",
                   &ctx->visitor, (ngx_uint_t) ctx->new_visitor);

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_issue_cookie(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx)
{
    u_char                          value[NGX_HTTP_RETARGET_COOKIE_LEN];
    ngx_str_t                       v;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    ngx_memcpy(value, ctx->vid, NGX_HTTP_RETARGET_VID_LEN);
    value[NGX_HTTP_RETARGET_VID_LEN] = '.';

    if (ngx_http_retarget_hmac_sign(rmcf->hmac, 0, ctx->vid,
                                    NGX_HTTP_RETARGET_VID_LEN,
                                    value + NGX_HTTP_RETARGET_VID_LEN + 1)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "retarget: HMAC-SHA256 failed");
        return NGX_ERROR;
    }

    v.len = sizeof(value);
    v.data = value;

    return ngx_http_retarget_set_cookie(r, rlcf->cookie, &rlcf->cookie->name,
                                        &v, rlcf->cookie->max_age);
}


/*
 * Adds "Set-Cookie: name=value; Max-Age=..; Expires=..<tail>".  A max_age
 * of 0 deletes the cookie.  The value is copied, so it may live on the
 * stack.
 */

ngx_int_t
ngx_http_retarget_set_cookie(ngx_http_request_t *r,
    ngx_http_retarget_cookie_conf_t *cc, ngx_str_t *name, ngx_str_t *value,
    time_t max_age)
{
    u_char           *p;
    size_t            len;
    ngx_uint_t        secure;
    ngx_table_elt_t  *h;

    /* Secure on https by default, and always with retarget_cookie secure */

    secure = cc->secure;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        secure = 1;
    }
#endif

    len = name->len + 1 + value->len
          + sizeof("; Max-Age=") - 1 + NGX_TIME_T_LEN
          + sizeof("; Expires=") - 1
          + sizeof("Thu, 01-Jan-1970 00:00:00 GMT") - 1
          + cc->tail.len + sizeof("; Secure") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Set-Cookie");
    h->value.data = p;

    p = ngx_cpymem(p, name->data, name->len);
    *p++ = '=';
    p = ngx_cpymem(p, value->data, value->len);
    p = ngx_sprintf(p, "; Max-Age=%T; Expires=", max_age);
    p = ngx_http_cookie_time(p, max_age ? ngx_time() + max_age : 0);
    p = ngx_cpymem(p, cc->tail.data, cc->tail.len);

    if (secure) {
        p = ngx_cpymem(p, "; Secure", sizeof("; Secure") - 1);
    }

    h->value.len = p - h->value.data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget: set cookie \"%V\" secure:%ui", name, secure);

    return NGX_OK;
}


/* retarget_cookie name=N [domain=D] [path=P] [max_age=T] [samesite=..]
 * [secure] */

char *
ngx_http_retarget_cookie(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    time_t                            max_age;
    ngx_str_t                        *value, v;
    ngx_uint_t                        i;
    ngx_http_retarget_cookie_conf_t  *cc;

    if (rlcf->cookie != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    cc = ngx_pcalloc(cf->pool, sizeof(ngx_http_retarget_cookie_conf_t));
    if (cc == NULL) {
        return NGX_CONF_ERROR;
    }

    cc->max_age = NGX_CONF_UNSET;
    cc->samesite = NGX_CONF_UNSET_UINT;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;

            if (v.len == 0 || v.len > 64
                || !ngx_http_retarget_is_base64url(v.data, v.len))
            {
                goto invalid;
            }

            cc->name = v;
            continue;
        }

        if (ngx_strncmp(value[i].data, "domain=", 7) == 0) {
            cc->domain.data = value[i].data + 7;
            cc->domain.len = value[i].len - 7;

            if (cc->domain.len == 0
                || ngx_strlchr(cc->domain.data,
                               cc->domain.data + cc->domain.len, ';')
                   != NULL)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "path=", 5) == 0) {
            cc->path.data = value[i].data + 5;
            cc->path.len = value[i].len - 5;

            if (cc->path.len == 0 || cc->path.data[0] != '/'
                || ngx_strlchr(cc->path.data, cc->path.data + cc->path.len,
                               ';')
                   != NULL)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_age=", 8) == 0) {
            v.data = value[i].data + 8;
            v.len = value[i].len - 8;

            max_age = ngx_parse_time(&v, 1);

            if (max_age == (time_t) NGX_ERROR || max_age == 0) {
                goto invalid;
            }

            if (max_age > NGX_HTTP_RETARGET_MAX_AGE_CAP) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" max_age \"%V\" is over 400d, "
                                   "the longest browsers keep a cookie",
                                   &cmd->name, &v);
                return NGX_CONF_ERROR;
            }

            cc->max_age = max_age;
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=lax") == 0) {
            cc->samesite = NGX_HTTP_RETARGET_SAMESITE_LAX;
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=strict") == 0) {
            cc->samesite = NGX_HTTP_RETARGET_SAMESITE_STRICT;
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=none") == 0) {
            cc->samesite = NGX_HTTP_RETARGET_SAMESITE_NONE;
            continue;
        }

        if (ngx_strcmp(value[i].data, "secure") == 0) {
            cc->secure = 1;
            continue;
        }

        goto invalid;
    }

    /*
     * The cookie prefixes (RFC 6265bis): a browser takes a "__Host-"
     * cookie only with Secure, Path=/ and no Domain, and a "__Secure-"
     * one only with Secure, so that no other host of the domain and no
     * http page can plant one.  The module does not prefix the name
     * itself: a new name would lose every visitor's id and choice.
     */

    if (cc->name.len > sizeof("__Host-") - 1
        && ngx_strncmp(cc->name.data, "__Host-", sizeof("__Host-") - 1) == 0
        && (!cc->secure || cc->domain.len
            || (cc->path.len
                && (cc->path.len != 1 || cc->path.data[0] != '/'))))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" name=__Host-... requires \"secure\", "
                           "path=/ and no domain", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cc->name.len > sizeof("__Secure-") - 1
        && ngx_strncmp(cc->name.data, "__Secure-", sizeof("__Secure-") - 1)
           == 0
        && !cc->secure)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" name=__Secure-... requires \"secure\"",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cc->samesite == NGX_HTTP_RETARGET_SAMESITE_NONE && !cc->secure) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" samesite=none requires \"secure\"",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    rlcf->cookie = cc;

    return ngx_http_retarget_cookie_conf(cf, cc);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\"",
                       &value[i], &cmd->name);

    return NGX_CONF_ERROR;
}


/* fills in the defaults and builds the attribute tail */

char *
ngx_http_retarget_cookie_conf(ngx_conf_t *cf,
    ngx_http_retarget_cookie_conf_t *cc)
{
    u_char  *p;
    size_t   len;

    static ngx_str_t  samesite[] = {
        ngx_string("; SameSite=Lax"),
        ngx_string("; SameSite=Strict"),
        ngx_string("; SameSite=None")
    };

    if (cc->name.len == 0) {
        ngx_str_set(&cc->name, "rt_vid");
    }

    if (cc->path.len == 0) {
        ngx_str_set(&cc->path, "/");
    }

    if (cc->max_age == NGX_CONF_UNSET || cc->max_age == 0) {
        cc->max_age = 365 * 86400;
    }

    if (cc->samesite == NGX_CONF_UNSET_UINT) {
        cc->samesite = NGX_HTTP_RETARGET_SAMESITE_LAX;
    }

    /* the consent cookie: "<name>_consent" */

    cc->consent_name.len = cc->name.len + sizeof("_consent") - 1;
    cc->consent_name.data = ngx_pnalloc(cf->pool, cc->consent_name.len);
    if (cc->consent_name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(cc->consent_name.data, "%V_consent", &cc->name);

    len = sizeof("; Path=") - 1 + cc->path.len
          + samesite[cc->samesite].len
          + sizeof("; HttpOnly") - 1;

    if (cc->domain.len) {
        len += sizeof("; Domain=") - 1 + cc->domain.len;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    cc->tail.data = p;

    p = ngx_cpymem(p, "; Path=", sizeof("; Path=") - 1);
    p = ngx_cpymem(p, cc->path.data, cc->path.len);

    if (cc->domain.len) {
        p = ngx_cpymem(p, "; Domain=", sizeof("; Domain=") - 1);
        p = ngx_cpymem(p, cc->domain.data, cc->domain.len);
    }

    p = ngx_cpymem(p, samesite[cc->samesite].data,
                   samesite[cc->samesite].len);
    p = ngx_cpymem(p, "; HttpOnly", sizeof("; HttpOnly") - 1);

    /* "; Secure" is added per response: see ngx_http_retarget_set_cookie() */

    cc->tail.len = p - cc->tail.data;

    return NGX_CONF_OK;
}
