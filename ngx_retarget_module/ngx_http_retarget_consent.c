
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Consent: decided from the consent cookie and the Sec-GPC / DNT headers
 * before anything is set or stored.  An explicit choice of the visitor
 * ("in" or "out", made through the control endpoints) wins over a
 * browser-wide header; dismissing the notice ("ack") is not consent and
 * does not.
 */


#include "ngx_http_retarget_consent.h"


static ngx_uint_t ngx_http_retarget_privacy_headers(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_header_is_one(ngx_str_t *value);


#define NGX_HTTP_RETARGET_GPC  1
#define NGX_HTTP_RETARGET_DNT  2


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
    ngx_str_t   value;
    ngx_uint_t  headers, ack;

    ack = 0;

    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies,
                                          &rlcf->cookie->consent_name,
                                          &value)
        != NGX_DECLINED)
    {
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
