
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * HMAC-SHA256 with the keys of retarget_secret.  The first key signs,
 * every key verifies, so keys can be rotated without invalidating what
 * the older keys signed: the visitor cookie and the consent cookie.  A
 * signature is the first 16 bytes of the MAC, base64url (22 characters).
 */


#include "ngx_http_retarget_hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>


#define NGX_HTTP_RETARGET_SIG_BYTES   16
#define NGX_HTTP_RETARGET_HMAC_BLOCK  64


/*
 * HMAC with the key schedule done once at configuration time: each key
 * keeps SHA-256 contexts that have already absorbed the inner and outer
 * pads, so signing costs two context copies and two short hashes, and no
 * allocation per request.
 */
typedef struct {
    EVP_MD_CTX                     *inner;
    EVP_MD_CTX                     *outer;
} ngx_http_retarget_hmac_key_t;


typedef struct {
    ngx_array_t                     keys;   /* ngx_http_retarget_hmac_key_t */
    EVP_MD_CTX                     *work;
} ngx_http_retarget_hmac_t;


static ngx_int_t ngx_http_retarget_hmac_key_init(ngx_conf_t *cf,
    ngx_http_retarget_hmac_key_t *key, ngx_str_t *secret);
static ngx_int_t ngx_http_retarget_hmac_pad(ngx_conf_t *cf, EVP_MD_CTX **ctx,
    u_char *key, u_char pad);
static void ngx_http_retarget_hmac_cleanup(void *data);


ngx_int_t
ngx_http_retarget_hmac_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_str_t                     *secret;
    ngx_uint_t                     i;
    ngx_pool_cleanup_t            *cln;
    ngx_http_retarget_hmac_t      *hmac;
    ngx_http_retarget_hmac_key_t  *key;

    hmac = ngx_pcalloc(cf->pool, sizeof(ngx_http_retarget_hmac_t));
    if (hmac == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&hmac->keys, cf->pool, rmcf->secrets->nelts,
                       sizeof(ngx_http_retarget_hmac_key_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_retarget_hmac_cleanup;
    cln->data = hmac;

    hmac->work = EVP_MD_CTX_new();
    if (hmac->work == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "EVP_MD_CTX_new() failed");
        return NGX_ERROR;
    }

    secret = rmcf->secrets->elts;

    for (i = 0; i < rmcf->secrets->nelts; i++) {
        key = ngx_array_push(&hmac->keys);
        if (key == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(key, sizeof(ngx_http_retarget_hmac_key_t));

        if (ngx_http_retarget_hmac_key_init(cf, key, &secret[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    rmcf->hmac = hmac;

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_hmac_key_init(ngx_conf_t *cf,
    ngx_http_retarget_hmac_key_t *key, ngx_str_t *secret)
{
    u_char        block[NGX_HTTP_RETARGET_HMAC_BLOCK];
    unsigned int  n;
    ngx_int_t     rc;

    ngx_memzero(block, sizeof(block));

    if (secret->len > NGX_HTTP_RETARGET_HMAC_BLOCK) {
        /* RFC 2104: longer keys are hashed first */
        if (EVP_Digest(secret->data, secret->len, block, &n, EVP_sha256(),
                       NULL)
            != 1)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "EVP_Digest() failed");
            return NGX_ERROR;
        }

    } else {
        ngx_memcpy(block, secret->data, secret->len);
    }

    rc = ngx_http_retarget_hmac_pad(cf, &key->inner, block, 0x36);

    if (rc == NGX_OK) {
        rc = ngx_http_retarget_hmac_pad(cf, &key->outer, block, 0x5c);
    }

    OPENSSL_cleanse(block, sizeof(block));

    return rc;
}


static ngx_int_t
ngx_http_retarget_hmac_pad(ngx_conf_t *cf, EVP_MD_CTX **ctx, u_char *key,
    u_char pad)
{
    u_char      padded[NGX_HTTP_RETARGET_HMAC_BLOCK];
    ngx_int_t   rc;
    ngx_uint_t  i;

    *ctx = EVP_MD_CTX_new();
    if (*ctx == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "EVP_MD_CTX_new() failed");
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_RETARGET_HMAC_BLOCK; i++) {
        padded[i] = key[i] ^ pad;
    }

    rc = NGX_OK;

    if (EVP_DigestInit_ex(*ctx, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(*ctx, padded, sizeof(padded)) != 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "SHA-256 init failed");
        rc = NGX_ERROR;
    }

    OPENSSL_cleanse(padded, sizeof(padded));

    return rc;
}


static void
ngx_http_retarget_hmac_cleanup(void *data)
{
    ngx_http_retarget_hmac_t *hmac = data;

    ngx_uint_t                     i;
    ngx_http_retarget_hmac_key_t  *key;

    key = hmac->keys.elts;

    for (i = 0; i < hmac->keys.nelts; i++) {
        EVP_MD_CTX_free(key[i].inner);
        EVP_MD_CTX_free(key[i].outer);
    }

    EVP_MD_CTX_free(hmac->work);
}


/* writes the base64url signature of data with key n */

ngx_int_t
ngx_http_retarget_hmac_sign(void *data, ngx_uint_t n, u_char *in, size_t len,
    u_char *sig)
{
    ngx_http_retarget_hmac_t *hmac = data;

    u_char                         md[EVP_MAX_MD_SIZE];
    ngx_str_t                      src, dst;
    unsigned int                   mdlen;
    ngx_http_retarget_hmac_key_t  *key;

    key = hmac->keys.elts;
    key = &key[n];

    if (EVP_MD_CTX_copy_ex(hmac->work, key->inner) != 1
        || EVP_DigestUpdate(hmac->work, in, len) != 1
        || EVP_DigestFinal_ex(hmac->work, md, &mdlen) != 1
        || EVP_MD_CTX_copy_ex(hmac->work, key->outer) != 1
        || EVP_DigestUpdate(hmac->work, md, mdlen) != 1
        || EVP_DigestFinal_ex(hmac->work, md, &mdlen) != 1)
    {
        return NGX_ERROR;
    }

    src.len = NGX_HTTP_RETARGET_SIG_BYTES;
    src.data = md;
    dst.data = sig;

    ngx_encode_base64url(&dst, &src);

    return NGX_OK;
}


/*
 * NGX_OK with the index of the key whose signature of data is sig (22
 * bytes), compared in constant time; NGX_DECLINED when none is.
 */

ngx_int_t
ngx_http_retarget_hmac_verify(ngx_log_t *log, void *data, u_char *in,
    size_t len, u_char *sig, ngx_uint_t *key)
{
    ngx_http_retarget_hmac_t *hmac = data;

    u_char      mine[NGX_HTTP_RETARGET_SIG_LEN];
    ngx_uint_t  i;

    for (i = 0; i < hmac->keys.nelts; i++) {

        if (ngx_http_retarget_hmac_sign(hmac, i, in, len, mine) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "retarget: HMAC-SHA256 failed");
            return NGX_DECLINED;
        }

        if (CRYPTO_memcmp(mine, sig, NGX_HTTP_RETARGET_SIG_LEN) == 0) {
            *key = i;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}
