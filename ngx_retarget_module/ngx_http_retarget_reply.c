
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The reply objects of the Redis link, built by hiredis' reader through
 * our own redisReplyObjectFunctions.  They are plain redisReply objects
 * (every reply handler reads them as such), but each is charged to its
 * reply before it is allocated, and one past the limits of
 * ngx_http_retarget_reply.h is not allocated at all: the function returns
 * NULL, which hiredis' reader (0.14) takes for "out of memory": it frees
 * what it built of that reply with our freeObject, stops with an error,
 * and the async context drops the connection (REDIS_ERR to the disconnect
 * callback, NULL to every callback still waiting).  The guard keeps the
 * real reason for the log.
 *
 * A reply nobody asked for: hiredis' async dispatcher takes the callback
 * of the next reply from its list, and with none (not subscribed) it
 * asserts (async.c, redisProcessCallbacks) unless the reply is an error.
 * The reader makes reply k only after the dispatcher has taken the
 * callbacks of replies 1 .. k-1 (it parses one reply per call), so when
 * the first object of a reply (its root) is about to be made, a reply is
 * owed exactly if a callback is still queued: the guard asks the link
 * (owed()), and refuses the reply if not.  The dispatcher never sees it.
 *
 * What the reader buffers before calling us is bounded separately: a
 * bulk string is handed over only once all of it is buffered, so
 * ngx_http_retarget_reply_check_pending() looks, after each read, at the
 * length a pending bulk declares and at the unparsed rest of the buffer.
 */


#include "ngx_http_retarget_reply.h"


static void *ngx_http_retarget_reply_string(const redisReadTask *task,
    char *str, size_t len);
static void *ngx_http_retarget_reply_array(const redisReadTask *task,
    int elements);
static void *ngx_http_retarget_reply_integer(const redisReadTask *task,
    long long value);
static void *ngx_http_retarget_reply_nil(const redisReadTask *task);
static void ngx_http_retarget_reply_free(void *obj);
static redisReply *ngx_http_retarget_reply_new(const redisReadTask *task,
    int type, size_t extra);
static ngx_int_t ngx_http_retarget_reply_attach(const redisReadTask *task,
    redisReply *r);
static void ngx_http_retarget_reply_refuse(ngx_http_retarget_reply_guard_t *g,
    const char *what, size_t seen, size_t limit);


static redisReplyObjectFunctions  ngx_http_retarget_reply_functions = {
    ngx_http_retarget_reply_string,
    ngx_http_retarget_reply_array,
    ngx_http_retarget_reply_integer,
    ngx_http_retarget_reply_nil,
    ngx_http_retarget_reply_free
};


/*
 * Makes the reader build our objects; "owed(data)" tells whether the link
 * waits for another reply.  The reader hands its privdata to every task.
 */

void
ngx_http_retarget_reply_guard(redisReader *reader,
    ngx_http_retarget_reply_guard_t *g, ngx_http_retarget_reply_owed_pt owed,
    void *data, ngx_log_t *log)
{
    ngx_memzero(g, sizeof(ngx_http_retarget_reply_guard_t));

    g->owed = owed;
    g->data = data;
    g->log = log;

    reader->fn = &ngx_http_retarget_reply_functions;
    reader->privdata = g;
}


/*
 * After the reader was fed and every complete reply taken: what is left
 * unparsed is the rest of one line or of one bulk string (hiredis keeps
 * all of a bulk until it is complete).  NGX_ERROR, with the reason in the
 * guard, when a pending bulk declares more than MAX_BULK, or when the
 * unparsed rest is already longer than any line or bulk may be.
 */

ngx_int_t
ngx_http_retarget_reply_check_pending(redisReader *reader)
{
    u_char                           *p, *last;
    size_t                            n, rest;
    ngx_uint_t                        digits;
    ngx_http_retarget_reply_guard_t  *g;

    g = reader->privdata;

    if (g->refused) {
        return NGX_ERROR;
    }

    if (reader->err || reader->buf == NULL || reader->pos >= reader->len) {
        return NGX_OK;
    }

    rest = reader->len - reader->pos;

    if (reader->ridx >= 0
        && (size_t) reader->ridx
           < sizeof(reader->rstack) / sizeof(reader->rstack[0])
        && reader->rstack[reader->ridx].type == REDIS_REPLY_STRING)
    {
        /*
         * "$<len>\r\n<data>\r\n", the "$" taken: the digits seen so far
         * only grow, so a value past the limit is final before the line
         * ends.  A "-1" (nil) has no digit before its "-".
         */

        p = (u_char *) reader->buf + reader->pos;
        last = p + rest;
        n = 0;
        digits = 0;

        while (p < last && *p >= '0' && *p <= '9'
               && n <= NGX_HTTP_RETARGET_REPLY_MAX_BULK)
        {
            n = n * 10 + (*p++ - '0');
            digits++;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, g->log, 0,
                       "retarget redis: bulk pending, %ui digits, declares "
                       "%uz, %uz bytes buffered", digits, n, rest);

        if (n > NGX_HTTP_RETARGET_REPLY_MAX_BULK) {
            ngx_http_retarget_reply_refuse(g, "a string longer than %uz "
                                           "bytes", n,
                                           NGX_HTTP_RETARGET_REPLY_MAX_BULK);
            return NGX_ERROR;
        }
    }

    /* the longest a bulk may be, with its length line and CRLFs */

    if (rest > NGX_HTTP_RETARGET_REPLY_MAX_BULK + NGX_INT64_LEN + 4) {
        ngx_http_retarget_reply_refuse(g, "a line or string longer than "
                                       "%uz bytes", rest,
                                       NGX_HTTP_RETARGET_REPLY_MAX_BULK);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_retarget_reply_string(const redisReadTask *task, char *str,
    size_t len)
{
    redisReply                       *r;
    ngx_http_retarget_reply_guard_t  *g;

    g = task->privdata;

    if (len > NGX_HTTP_RETARGET_REPLY_MAX_BULK) {
        /* not reached with check_pending() after each read */
        ngx_http_retarget_reply_refuse(g, "a string longer than %uz bytes",
                                       len, NGX_HTTP_RETARGET_REPLY_MAX_BULK);
        return NULL;
    }

    /* the string right after the object, in the same allocation */

    r = ngx_http_retarget_reply_new(task, task->type, len + 1);
    if (r == NULL) {
        return NULL;
    }

    r->str = (char *) (r + 1);
    ngx_memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;

    if (ngx_http_retarget_reply_attach(task, r) != NGX_OK) {
        ngx_free(r);
        return NULL;
    }

    return r;
}


static void *
ngx_http_retarget_reply_array(const redisReadTask *task, int elements)
{
    ngx_uint_t                        depth;
    redisReply                       *r;
    redisReadTask                    *t;
    ngx_http_retarget_reply_guard_t  *g;

    g = task->privdata;

    depth = 1;

    for (t = task->parent; t != NULL; t = t->parent) {
        depth++;
    }

    if (depth > NGX_HTTP_RETARGET_REPLY_MAX_DEPTH) {
        ngx_http_retarget_reply_refuse(g, "arrays nested deeper than %uz",
                                       depth,
                                       NGX_HTTP_RETARGET_REPLY_MAX_DEPTH);
        return NULL;
    }

    if (elements < 0 || elements > NGX_HTTP_RETARGET_REPLY_MAX_ELEMENTS) {
        ngx_http_retarget_reply_refuse(g, "an array of more than %uz "
                                       "elements",
                                       elements < 0 ? 0 : (size_t) elements,
                                       NGX_HTTP_RETARGET_REPLY_MAX_ELEMENTS);
        return NULL;
    }

    /* the elements' slots right after the object, in the same allocation */

    r = ngx_http_retarget_reply_new(task, REDIS_REPLY_ARRAY,
                                    (size_t) elements * sizeof(redisReply *));
    if (r == NULL) {
        return NULL;
    }

    if (elements) {
        r->element = (redisReply **) (r + 1);
        ngx_memzero(r->element, (size_t) elements * sizeof(redisReply *));
    }

    r->elements = elements;

    if (ngx_http_retarget_reply_attach(task, r) != NGX_OK) {
        ngx_free(r);
        return NULL;
    }

    return r;
}


static void *
ngx_http_retarget_reply_integer(const redisReadTask *task, long long value)
{
    redisReply  *r;

    r = ngx_http_retarget_reply_new(task, REDIS_REPLY_INTEGER, 0);
    if (r == NULL) {
        return NULL;
    }

    r->integer = value;

    if (ngx_http_retarget_reply_attach(task, r) != NGX_OK) {
        ngx_free(r);
        return NULL;
    }

    return r;
}


static void *
ngx_http_retarget_reply_nil(const redisReadTask *task)
{
    redisReply  *r;

    r = ngx_http_retarget_reply_new(task, REDIS_REPLY_NIL, 0);
    if (r == NULL) {
        return NULL;
    }

    if (ngx_http_retarget_reply_attach(task, r) != NGX_OK) {
        ngx_free(r);
        return NULL;
    }

    return r;
}


/* also what the reader frees of a reply it gave up half-way: NULL slots */

static void
ngx_http_retarget_reply_free(void *obj)
{
    size_t       i;
    redisReply  *r;

    r = obj;

    if (r == NULL) {
        return;
    }

    /* an array's slots and a string are in the object's allocation */

    if (r->type == REDIS_REPLY_ARRAY && r->element != NULL) {
        for (i = 0; i < r->elements; i++) {
            ngx_http_retarget_reply_free(r->element[i]);
        }
    }

    ngx_free(r);
}


/*
 * One object of a reply, charged first: the root of a reply starts its
 * account, and is refused when no reply is owed.
 */

static redisReply *
ngx_http_retarget_reply_new(const redisReadTask *task, int type,
    size_t extra)
{
    size_t                            cost;
    redisReply                       *r;
    ngx_http_retarget_reply_guard_t  *g;

    g = task->privdata;

    if (g->refused) {
        return NULL;
    }

    if (task->parent == NULL) {
        g->size = 0;
        g->replies++;

        if (!g->owed(g->data)) {
            ngx_http_retarget_reply_refuse(g, "a reply nothing asked for",
                                           (size_t) type, 0);
            return NULL;
        }
    }

    cost = sizeof(redisReply) + extra;

    if (cost > NGX_HTTP_RETARGET_REPLY_MAX_SIZE - g->size) {
        ngx_http_retarget_reply_refuse(g, "a reply of more than %uz bytes",
                                       g->size + cost,
                                       NGX_HTTP_RETARGET_REPLY_MAX_SIZE);
        return NULL;
    }

    g->size += cost;

    /*
     * What the object holds (a string, an array's slots) is allocated
     * with it, "extra" bytes after it: one malloc() and one free() an
     * element, not two (callgrind, bench (d): the HGETALL of the page
     * made 29 objects, 58 allocations)
     */

    r = ngx_alloc(cost, g->log);
    if (r == NULL) {
        return NULL;
    }

    ngx_memzero(r, sizeof(redisReply));
    r->type = type;

    return r;
}


static ngx_int_t
ngx_http_retarget_reply_attach(const redisReadTask *task, redisReply *r)
{
    redisReply                       *parent;
    ngx_http_retarget_reply_guard_t  *g;

    if (task->parent == NULL) {
        return NGX_OK;
    }

    g = task->privdata;
    parent = task->parent->obj;

    /* the reader keeps to the counts it was given; not trusted blindly */

    if (parent == NULL || parent->type != REDIS_REPLY_ARRAY
        || task->idx < 0 || (size_t) task->idx >= parent->elements
        || parent->element[task->idx] != NULL)
    {
        ngx_http_retarget_reply_refuse(g, "an element out of place",
                                       (size_t) task->idx, 0);
        return NGX_ERROR;
    }

    parent->element[task->idx] = r;

    return NGX_OK;
}


/*
 * "what" has at most one "%uz", the limit; the reason is the same each
 * time (the link logs a reason once), and "seen" goes to the debug log.
 */

static void
ngx_http_retarget_reply_refuse(ngx_http_retarget_reply_guard_t *g,
    const char *what, size_t seen, size_t limit)
{
    u_char  *p, *last;

    if (g->refused) {
        return;
    }

    last = g->reason + sizeof(g->reason) - 1;

    p = ngx_cpymem(g->reason, "reply refused: ",
                   sizeof("reply refused: ") - 1);
    p = ngx_slprintf(p, last, what, limit);
    *p = '\0';

    g->refused = g->reason;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, g->log, 0,
                   "retarget redis: %s (seen: %uz)", g->reason, seen);
}
