
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor's consent, from the consent cookie, Sec-GPC and DNT.
 */


#ifndef _NGX_HTTP_RETARGET_CONSENT_H_INCLUDED_
#define _NGX_HTTP_RETARGET_CONSENT_H_INCLUDED_


#include "ngx_http_retarget_module.h"


ngx_http_retarget_consent_e ngx_http_retarget_consent_state(
    ngx_http_request_t *r, ngx_http_retarget_loc_conf_t *rlcf);
ngx_http_retarget_consent_e ngx_http_retarget_consent_decide(
    ngx_http_request_t *r, ngx_http_retarget_loc_conf_t *rlcf,
    ngx_uint_t *resign);
ngx_int_t ngx_http_retarget_consent_value(ngx_http_request_t *r,
    ngx_str_t *choice, ngx_str_t *value);
ngx_int_t ngx_http_retarget_consent_resigned(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_str_t *value);
ngx_int_t ngx_http_retarget_consent_tracks(ngx_http_retarget_consent_e c);
ngx_str_t *ngx_http_retarget_consent_name(ngx_http_retarget_consent_e c);


#endif /* _NGX_HTTP_RETARGET_CONSENT_H_INCLUDED_ */
