
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Redis replies as hiredis' reader builds them, within limits: nothing
 * Redis sends is allocated beyond them, and a reply nobody asked for is
 * refused before hiredis' async dispatcher sees it.
 */


#ifndef _NGX_HTTP_RETARGET_REPLY_H_INCLUDED_
#define _NGX_HTTP_RETARGET_REPLY_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/*
 * The limits on one reply (the module's own replies are far below them:
 * flat arrays of a visitor's hash, a set of skus, short strings).
 *
 * MAX_BULK      the bytes of one string (a bulk, a status or error line,
 *               any line of the protocol): refused as soon as the bulk's
 *               declared length, or the unparsed rest of a line, is past
 *               it, before hiredis buffers the rest
 * MAX_ELEMENTS  the elements one array declares, refused before the array
 *               of pointers is allocated
 * MAX_DEPTH     arrays inside arrays (hiredis itself stops at 7; a stream
 *               read, XRANGE, is 3 deep)
 * MAX_SIZE      what one whole reply may cost in memory: every object, its
 *               string and its element pointers, charged before each is
 *               allocated; it also bounds the time freeing a reply takes
 */

#define NGX_HTTP_RETARGET_REPLY_MAX_BULK      (1024 * 1024)
#define NGX_HTTP_RETARGET_REPLY_MAX_ELEMENTS  (1024 * 1024)
#define NGX_HTTP_RETARGET_REPLY_MAX_DEPTH     4
#define NGX_HTTP_RETARGET_REPLY_MAX_SIZE      (16 * 1024 * 1024)


/* whether the link waits for another reply: one is owed for a command */
typedef ngx_uint_t (*ngx_http_retarget_reply_owed_pt)(void *data);


typedef struct {
    ngx_http_retarget_reply_owed_pt   owed;
    void                             *data;
    ngx_log_t                        *log;

    size_t                            size;      /* charged to this reply */
    ngx_uint_t                        replies;   /* replies begun */

    u_char                           *refused;   /* why, or NULL */
    u_char                            reason[128];
} ngx_http_retarget_reply_guard_t;


void ngx_http_retarget_reply_guard(redisReader *reader,
    ngx_http_retarget_reply_guard_t *g, ngx_http_retarget_reply_owed_pt owed,
    void *data, ngx_log_t *log);
ngx_int_t ngx_http_retarget_reply_check_pending(redisReader *reader);


#endif /* _NGX_HTTP_RETARGET_REPLY_H_INCLUDED_ */
