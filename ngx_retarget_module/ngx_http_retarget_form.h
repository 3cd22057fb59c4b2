
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Fields of form bodies, application/x-www-form-urlencoded and
 * multipart/form-data: pure functions over a buffer (fuzz/form_fuzz.c).
 * Values found point into the buffer.
 */


#ifndef _NGX_HTTP_RETARGET_FORM_H_INCLUDED_
#define _NGX_HTTP_RETARGET_FORM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* RFC 2046 allows 70; some clients send longer ones */
#define NGX_HTTP_RETARGET_BOUNDARY_MAX  200


/*
 * The first field of an url-encoded body whose decoded name is name: its
 * value, still encoded.  NGX_DECLINED when there is none.
 */
ngx_int_t ngx_http_retarget_form_field(u_char *p, size_t len,
    ngx_str_t *name, ngx_str_t *value);

/* form decoding ("+" is a space, %XX a byte) of len bytes; returns the end */
u_char *ngx_http_retarget_form_decode(u_char *dst, u_char *src, size_t len);

/*
 * The boundary parameter of a multipart Content-Type value (quoted or
 * not), NGX_DECLINED when there is none or it cannot be one.
 */
ngx_int_t ngx_http_retarget_multipart_boundary(u_char *p, size_t len,
    ngx_str_t *boundary);

/*
 * The bytes of the first part of a multipart/form-data body named name
 * that is not a file (no filename= parameter).  NGX_DECLINED when there
 * is none, or the body ends before that part does.
 */
ngx_int_t ngx_http_retarget_multipart_field(u_char *p, size_t len,
    ngx_str_t *boundary, ngx_str_t *name, ngx_str_t *value);


#endif /* _NGX_HTTP_RETARGET_FORM_H_INCLUDED_ */
