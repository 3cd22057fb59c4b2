
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Outside input made safe for error.log.
 */


#ifndef _NGX_HTTP_RETARGET_ESCAPE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_ESCAPE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/* the most bytes of a value a log line shows, before escaping */
#define NGX_HTTP_RETARGET_LOG_VALUE_MAX  64

/*
 * the size of a buffer that holds any value escaped: every byte as
 * "\xHH", "..." when cut and a terminating '\0'
 */
#define NGX_HTTP_RETARGET_LOG_VALUE_SIZE                                     \
    (4 * NGX_HTTP_RETARGET_LOG_VALUE_MAX + sizeof("...") - 1 + 1)


void ngx_http_retarget_log_value(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_str_t *out);
u_char *ngx_http_retarget_log_value_buf(u_char *buf, u_char *data,
    size_t len);


#endif /* _NGX_HTTP_RETARGET_ESCAPE_H_INCLUDED_ */
