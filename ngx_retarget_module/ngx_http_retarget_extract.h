
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * retarget_extract: variables whose values come from the request body,
 * the upstream's response body or a JSON object the page embeds.
 */


#ifndef _NGX_HTTP_RETARGET_EXTRACT_H_INCLUDED_
#define _NGX_HTTP_RETARGET_EXTRACT_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/*
 * The text of the JSON object the page embeds (retarget_page_json), once
 * the page has been seen whole: NGX_OK, or NGX_DECLINED when there is
 * none.  The page scanner sets this pointer at configuration time, so
 * that this file does not depend on it; while it is NULL, "page" extracts
 * are empty.
 */
typedef ngx_int_t (*ngx_http_retarget_page_text_pt)(ngx_http_request_t *r,
    ngx_str_t *text);

extern ngx_http_retarget_page_text_pt  ngx_http_retarget_extract_page_source;

/* retarget_extract_max_size: at most what the JSON parser takes */
extern ngx_conf_post_t  ngx_http_retarget_extract_size_bounds;

char *ngx_http_retarget_extract_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_RETARGET_EXTRACT_H_INCLUDED_ */
