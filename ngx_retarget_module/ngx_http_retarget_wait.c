
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * A request waiting for Redis: a few pipelined reads, answered in one
 * round trip, and a timer; whichever ends first resumes the request.
 *
 * hiredis gets a token, never the request: the request may be gone (a
 * client abort) when the replies arrive.  The request's pool cleanup
 * detaches the token, and the last reply frees it.
 */


#include "ngx_http_retarget_wait.h"
#include "ngx_http_retarget_redis.h"


struct ngx_http_retarget_wait_s {
    ngx_http_request_t               *r;         /* NULL: detached */
    ngx_http_retarget_wait_reply_pt   reply;
    ngx_http_retarget_wait_done_pt    done;
    void                             *data;
    ngx_uint_t                        pending;   /* replies to come */
    ngx_uint_t                        failed;
    ngx_event_t                       timer;
    ngx_pool_cleanup_t               *cln;       /* NULL: it has run */
};


static ngx_int_t ngx_http_retarget_wait_send(ngx_http_request_t *r,
    ngx_uint_t n, ngx_http_retarget_cmd_t *cmds,
    ngx_http_retarget_wait_read_t *reads,
    ngx_http_retarget_wait_reply_pt reply,
    ngx_http_retarget_wait_done_pt done, void *data);
static void ngx_http_retarget_wait_replied(void *data, redisReply *reply);
static void ngx_http_retarget_wait_timeout(ngx_event_t *ev);
static void ngx_http_retarget_wait_finish(ngx_http_retarget_wait_t *w,
    ngx_int_t rc);
static void ngx_http_retarget_wait_cleanup(void *data);
static void ngx_http_retarget_wait_free(ngx_http_retarget_wait_t *w);


/*
 * Sends the n reads; "reply" sees each reply in order, "done" is called
 * once with NGX_OK (all replied), NGX_AGAIN (timed out) or NGX_ERROR,
 * unless the request goes away first.  Returns NGX_DECLINED when the
 * link is not up: nothing was sent.
 */

ngx_int_t
ngx_http_retarget_wait(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_retarget_cmd_t *cmds, ngx_http_retarget_wait_reply_pt reply,
    ngx_http_retarget_wait_done_pt done, void *data)
{
    return ngx_http_retarget_wait_send(r, n, cmds, NULL, reply, done, data);
}


/* the same, for reads of any number of arguments (PFCOUNT of many keys) */

ngx_int_t
ngx_http_retarget_wait_reads(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_retarget_wait_read_t *reads,
    ngx_http_retarget_wait_reply_pt reply, ngx_http_retarget_wait_done_pt done,
    void *data)
{
    return ngx_http_retarget_wait_send(r, n, NULL, reads, reply, done, data);
}


static ngx_int_t
ngx_http_retarget_wait_send(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_retarget_cmd_t *cmds, ngx_http_retarget_wait_read_t *reads,
    ngx_http_retarget_wait_reply_pt reply,
    ngx_http_retarget_wait_done_pt done, void *data)
{
    int                             argc;
    size_t                         *len;
    ngx_uint_t                      i;
    const char                    **argv;
    ngx_pool_cleanup_t             *cln;
    ngx_http_retarget_wait_t       *w;
    ngx_http_retarget_redis_t      *rds;
    ngx_http_retarget_main_conf_t  *rmcf;

    rds = ngx_http_retarget_redis_get();

    if (ngx_http_retarget_redis_state(rds, NULL)
        != ngx_http_retarget_link_up)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget wait: redis link not up, nothing sent");
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    w = ngx_calloc(sizeof(ngx_http_retarget_wait_t), r->connection->log);
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->r = r;
    w->reply = reply;
    w->done = done;
    w->data = data;

    for (i = 0; i < n; i++) {

        if (cmds != NULL) {
            argc = cmds[i].argc;
            argv = cmds[i].argv;
            len = cmds[i].len;

        } else {
            argc = reads[i].argc;
            argv = reads[i].argv;
            len = reads[i].len;
        }

        if (ngx_http_retarget_redis_read(rds, argc, argv, len,
                                         ngx_http_retarget_wait_replied, w)
            != NGX_OK)
        {
            w->failed = 1;
            break;
        }

        w->pending++;
    }

    if (w->pending == 0) {
        ngx_free(w);
        return NGX_DECLINED;
    }

    w->cln = cln;
    cln->handler = ngx_http_retarget_wait_cleanup;
    cln->data = w;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    w->timer.handler = ngx_http_retarget_wait_timeout;
    w->timer.data = w;
    w->timer.log = r->connection->log;

    ngx_add_timer(&w->timer, rmcf->redis.timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget wait %p: %ui reads sent, timeout %M",
                   w, w->pending, rmcf->redis.timeout);

    return NGX_OK;
}


static void
ngx_http_retarget_wait_replied(void *data, redisReply *reply)
{
    ngx_http_retarget_wait_t *w = data;

    w->pending--;

    if (reply == NULL) {
        w->failed = 1;

    } else if (w->r != NULL && w->reply != NULL) {
        w->reply(w->r, w->data, reply);
    }

    if (w->pending) {
        return;
    }

    if (w->r != NULL) {
        ngx_http_retarget_wait_finish(w, w->failed ? NGX_ERROR : NGX_OK);
        return;
    }

    /* the request is gone, or was answered on timeout */
    ngx_http_retarget_wait_free(w);
}


static void
ngx_http_retarget_wait_timeout(ngx_event_t *ev)
{
    ngx_http_retarget_wait_t *w = ev->data;

    ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                  "retarget: redis did not answer in time");

    ngx_http_retarget_wait_finish(w, NGX_AGAIN);
}


static void
ngx_http_retarget_wait_finish(ngx_http_retarget_wait_t *w, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = w->r;
    c = r->connection;

    w->r = NULL;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "retarget wait %p: done rc:%i, %ui replies to come",
                   w, rc, w->pending);

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }

    ngx_http_set_log_request(c->log, r);

    /* may finalize r and so run the pool cleanup */
    w->done(r, w->data, rc);

    if (w->pending == 0) {
        ngx_http_retarget_wait_free(w);
    }

    ngx_http_run_posted_requests(c);
}


/* the request is being freed: replies still to come find it detached */

static void
ngx_http_retarget_wait_cleanup(void *data)
{
    ngx_http_retarget_wait_t *w = data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->timer.log, 0,
                   "retarget wait %p: request gone, %ui replies to come",
                   w, w->pending);

    w->cln = NULL;
    w->r = NULL;

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }
}


static void
ngx_http_retarget_wait_free(ngx_http_retarget_wait_t *w)
{
    if (w->cln != NULL) {
        w->cln->handler = NULL;
    }

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }

    ngx_free(w);
}
