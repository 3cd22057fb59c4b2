
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * JSON documents from outside (request and response bodies, objects a
 * page embeds): a bounded parse, a dot path walk and the text of a value.
 * Pure functions of their input (fuzz/json_fuzz.c).
 */


#ifndef _NGX_HTTP_RETARGET_JSON_H_INCLUDED_
#define _NGX_HTTP_RETARGET_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <jansson.h>


/* no document is parsed beyond these */
#define NGX_HTTP_RETARGET_JSON_MAX_LEN    (8 * 1024 * 1024)
#define NGX_HTTP_RETARGET_JSON_MAX_DEPTH  64


/* a new reference (json_decref() it), or NULL: too long, too deep, not JSON */
json_t *ngx_http_retarget_json_parse(u_char *p, size_t len);

/*
 * The value at a dot path ("items.0.id", "responses.-1.body"; empty or
 * "." is the document), borrowed from root; NULL when there is none.
 */
json_t *ngx_http_retarget_json_path(json_t *root, u_char *path, size_t len);

/*
 * The text of a value: a string unescaped, a number as JSON writes it,
 * "true"/"false", an object or an array as compact JSON; empty for null
 * and for NULL.  NGX_ERROR only when memory runs out.
 */
ngx_int_t ngx_http_retarget_json_text(ngx_pool_t *pool, json_t *v,
    ngx_str_t *out);

/*
 * A document the module answers with (status, report): root dumped with
 * jansson's flags into the pool, with a newline as a text for a terminal;
 * root is freed.  NULL root (a build that ran out of memory): NGX_ERROR.
 */
ngx_int_t ngx_http_retarget_json_document(ngx_pool_t *pool, json_t *root,
    size_t flags, ngx_str_t *out);


#endif /* _NGX_HTTP_RETARGET_JSON_H_INCLUDED_ */
