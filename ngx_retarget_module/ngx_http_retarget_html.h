
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The streaming HTML tokenizer that finds the injection point: the first
 * "</body" end tag outside scripts, styles, textareas, titles and
 * comments.  A pure function over buffers (no nginx request, no
 * allocation), so that it can be fuzzed on its own.
 */


#ifndef _NGX_HTTP_RETARGET_HTML_H_INCLUDED_
#define _NGX_HTTP_RETARGET_HTML_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* the longest partial end tag ever held back: "</body" */
#define NGX_HTTP_RETARGET_HTML_MAX_TAIL  6


/* zeroed: the state at the start of a page */
typedef struct {
    ngx_uint_t   state;
    ngx_uint_t   alive;     /* the tags a "<..." being read may still be */
    ngx_uint_t   matched;   /* bytes of it read, its '<' included */
    ngx_uint_t   raw;       /* the element whose end tag ends raw text */
    ngx_uint_t   tail;      /* the last bytes scanned that may be "</body" */
} ngx_http_retarget_html_t;


ngx_int_t ngx_http_retarget_html_scan(ngx_http_retarget_html_t *h,
    u_char *p, u_char *last, u_char **at);


#endif /* _NGX_HTTP_RETARGET_HTML_H_INCLUDED_ */
