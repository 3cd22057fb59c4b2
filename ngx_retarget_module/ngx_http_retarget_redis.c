
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The Redis link of a worker: one pipelined hiredis connection driven by
 * nginx's event loop, opened at worker start, re-opened with backoff.
 *
 * hiredis owns the socket: the nginx connection that wraps it is only
 * borrowed for its events, and is given back without closing the fd
 * (hiredis closes it right after our cleanup hook).  Events are level-
 * triggered, as hiredis' own adapters assume: it reads at most 16 KB a
 * call and would lose the rest of a burst with edge-triggered epoll.
 *
 * Writes are never waited for.  While the link is down or still in its
 * handshake they wait in a bounded queue; beyond retarget_redis_queue
 * commands (queued or sent and unanswered) they are dropped and counted.
 *
 * An ordered read keeps its place among the writes, and one that holds
 * the link keeps what comes after it in the queue until its handler has
 * run: the writes its answer decides go out first (a purchase's, after
 * "SET order NX").
 *
 * Nothing Redis sends may crash or stall the worker: hiredis' reader
 * builds the replies through ngx_http_retarget_reply.c, which refuses,
 * before allocating, a reply past its limits or one that no command is
 * owed (hiredis would assert on it), and after each read the unparsed
 * rest is checked (a bulk is buffered whole before it is parsed).  A
 * refused reply drops the link like a broken one.
 *
 * The backoff grows with every failed or short-lived connection and goes
 * back to its minimum only once a connection has proved healthy: up for
 * a watchdog period with replies to the module's own commands (a server
 * that answers the handshake's PING and then garbage keeps it growing).
 * Such flapping logs its first "down" as an error, the rest at info.
 */


#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_reply.h"
#include "ngx_http_retarget_resp.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_HTTP_RETARGET_BACKOFF_MIN     100
#define NGX_HTTP_RETARGET_BACKOFF_MAX     10000
#define NGX_HTTP_RETARGET_WATCHDOG        1000

/* how long a worker that is shutting down waits for its last replies */
#define NGX_HTTP_RETARGET_DRAIN_TIMEOUT   3000

/* how many may ask to be told that the worker leaves */
#define NGX_HTTP_RETARGET_EXIT_HANDLERS   4


typedef struct {
    ngx_queue_t                     queue;
    ngx_http_retarget_redis_read_t *read;       /* an ordered read, or a
                                                   write: NULL */
    size_t                          len;
    u_char                          data[1];
} ngx_http_retarget_qcmd_t;


typedef struct {
    ngx_http_retarget_redis_exit_pt  handler;
    void                            *data;
} ngx_http_retarget_redis_exit_t;


struct ngx_http_retarget_redis_s {
    ngx_http_retarget_main_conf_t  *rmcf;
    ngx_log_t                      *log;

    redisAsyncContext              *ac;
    ngx_connection_t               *conn;
    ngx_http_retarget_link_e        state;

    ngx_event_t                     timer;      /* connect timeout, retry */
    ngx_event_t                     watchdog;   /* replies stopped coming */
    ngx_event_t                     drain;      /* shutdown: last replies */

    ngx_msec_t                      backoff;
    ngx_uint_t                      handshake;  /* replies still expected */

    ngx_queue_t                     pending;    /* ngx_http_retarget_qcmd_t */
    ngx_uint_t                      npending;
    ngx_uint_t                      inflight;
    ngx_uint_t                      replies;    /* for the watchdog */
    ngx_uint_t                      seen;
    ngx_uint_t                      owed;       /* inflight at last tick */
    ngx_uint_t                      hold;       /* a read holds the link */
    ngx_uint_t                      up_replies; /* replies when it came up */

    ngx_http_retarget_reply_guard_t guard;      /* of the reader of "ac" */

    ngx_http_retarget_redis_stats_t stats;

    ngx_http_retarget_redis_exit_t  exits[NGX_HTTP_RETARGET_EXIT_HANDLERS];
    ngx_uint_t                      nexit;

    ngx_http_retarget_redis_link_pt on_link;    /* up, or no longer up */
    void                           *link_data;

    u_char                          down_reason[128];

    unsigned                        error_logged:1;
    unsigned                        down_logged:1;
    unsigned                        was_up:1;
    unsigned                        exiting:1;
    unsigned                        writing:1;  /* in redisAsyncHandleWrite */
    unsigned                        healthy:1;  /* this connection */
    unsigned                        flapping:1; /* lost before healthy */
};


static void ngx_http_retarget_redis_connect(ngx_http_retarget_redis_t *rds);
static ngx_int_t ngx_http_retarget_redis_attach(ngx_http_retarget_redis_t *rds,
    redisAsyncContext *ac);
static void ngx_http_retarget_redis_add_read(void *data);
static void ngx_http_retarget_redis_del_read(void *data);
static void ngx_http_retarget_redis_add_write(void *data);
static void ngx_http_retarget_redis_del_write(void *data);
static void ngx_http_retarget_redis_cleanup(void *data);
static void ngx_http_retarget_redis_read_handler(ngx_event_t *ev);
static void ngx_http_retarget_redis_write_handler(ngx_event_t *ev);
static void ngx_http_retarget_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_retarget_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_retarget_redis_handshake_done(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_retarget_redis_write_done(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_retarget_redis_read_done(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_retarget_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_retarget_redis_watchdog_handler(ngx_event_t *ev);
static void ngx_http_retarget_redis_drain_handler(ngx_event_t *ev);
static void ngx_http_retarget_redis_lost(ngx_http_retarget_redis_t *rds,
    const char *why);
static void ngx_http_retarget_redis_set_state(ngx_http_retarget_redis_t *rds,
    ngx_http_retarget_link_e state, const char *why);
static void ngx_http_retarget_redis_retry(ngx_http_retarget_redis_t *rds);
static ngx_int_t ngx_http_retarget_redis_queue(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_read_t *rd);
static ngx_int_t ngx_http_retarget_redis_ask(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_reply_pt handler, void *data, ngx_uint_t ordered,
    ngx_uint_t hold);
static void ngx_http_retarget_redis_flush_pending(
    ngx_http_retarget_redis_t *rds);
static void ngx_http_retarget_redis_drop_pending(
    ngx_http_retarget_redis_t *rds);
static void ngx_http_retarget_redis_sent(ngx_http_retarget_redis_t *rds);
static void ngx_http_retarget_redis_replied(ngx_http_retarget_redis_t *rds);
static ngx_int_t ngx_http_retarget_redis_reply_failed(
    ngx_http_retarget_redis_t *rds, redisReply *reply);
static void ngx_http_retarget_redis_shutdown(ngx_http_retarget_redis_t *rds);
static ngx_uint_t ngx_http_retarget_redis_owed(void *data);
static void ngx_http_retarget_redis_healthy(ngx_http_retarget_redis_t *rds);


/* the link of this worker process */
static ngx_http_retarget_redis_t  *ngx_http_retarget_redis_link;


static char *ngx_http_retarget_link_names[] = {
    "down", "connecting", "up"
};


ngx_http_retarget_redis_t *
ngx_http_retarget_redis_get(void)
{
    return ngx_http_retarget_redis_link;
}


ngx_int_t
ngx_http_retarget_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_http_retarget_redis_t  *rds;

    rds = ngx_pcalloc(cycle->pool, sizeof(ngx_http_retarget_redis_t));
    if (rds == NULL) {
        return NGX_ERROR;
    }

    rds->rmcf = rmcf;
    rds->log = cycle->log;
    rds->state = ngx_http_retarget_link_down;
    rds->backoff = NGX_HTTP_RETARGET_BACKOFF_MIN;

    ngx_queue_init(&rds->pending);

    rds->timer.handler = ngx_http_retarget_redis_timer_handler;
    rds->timer.data = rds;
    rds->timer.log = cycle->log;
    rds->timer.cancelable = 1;

    rds->watchdog.handler = ngx_http_retarget_redis_watchdog_handler;
    rds->watchdog.data = rds;
    rds->watchdog.log = cycle->log;
    rds->watchdog.cancelable = 1;

    /* not cancelable: it keeps a worker that is shutting down alive */
    rds->drain.handler = ngx_http_retarget_redis_drain_handler;
    rds->drain.data = rds;
    rds->drain.log = cycle->log;

    ngx_http_retarget_redis_link = rds;

    ngx_http_retarget_redis_connect(rds);

    return NGX_OK;
}


void
ngx_http_retarget_redis_exit_process(ngx_cycle_t *cycle)
{
    redisAsyncContext          *ac;
    ngx_http_retarget_redis_t  *rds;

    rds = ngx_http_retarget_redis_link;

    if (rds == NULL) {
        return;
    }

    rds->exiting = 1;
    rds->state = ngx_http_retarget_link_down;

    ac = rds->ac;

    if (ac != NULL) {
        /* runs the pending callbacks with NULL, then our cleanup hook */
        rds->ac = NULL;
        redisAsyncFree(ac);
    }

    ngx_http_retarget_redis_drop_pending(rds);

    ngx_http_retarget_redis_link = NULL;
}


/*
 * Asks for "handler" to be called each time the link comes up (up 1) and
 * each time it stops being up (up 0): the catalogue's cache trusts what
 * Redis told it only for as long as the connection that told it lasts.
 */

void
ngx_http_retarget_redis_on_link(ngx_http_retarget_redis_t *rds,
    ngx_http_retarget_redis_link_pt handler, void *data)
{
    if (rds != NULL) {
        rds->on_link = handler;
        rds->link_data = data;
    }
}


/*
 * Asks for "handler" to be called when the worker starts to leave, while
 * the link still sends: what it writes then goes out with the last batch.
 */

ngx_int_t
ngx_http_retarget_redis_on_exit(ngx_http_retarget_redis_t *rds,
    ngx_http_retarget_redis_exit_pt handler, void *data)
{
    if (rds == NULL || rds->nexit == NGX_HTTP_RETARGET_EXIT_HANDLERS) {
        return NGX_ERROR;
    }

    rds->exits[rds->nexit].handler = handler;
    rds->exits[rds->nexit].data = data;
    rds->nexit++;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: exit handler %ui registered", rds->nexit);

    return NGX_OK;
}


static void
ngx_http_retarget_redis_connect(ngx_http_retarget_redis_t *rds)
{
    u_char                          db[NGX_INT_T_LEN];
    redisAsyncContext              *ac;
    ngx_http_retarget_cmd_t         cmd;
    ngx_http_retarget_redis_conf_t *rc;

    rc = &rds->rmcf->redis;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: connecting to %V, backoff %M",
                   &rc->name, rds->backoff);

    if (rc->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) rc->unix_path.data);

    } else {
        /* a numeric address: getaddrinfo() does not block on it */
        ac = redisAsyncConnect((char *) rc->host.data, (int) rc->port);
    }

    if (ac == NULL) {
        ngx_http_retarget_redis_lost(rds, "out of memory");
        return;
    }

    if (ac->err) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                       "retarget redis: connect failed at once: %s",
                       ac->errstr);

        ngx_http_retarget_redis_set_state(rds, ngx_http_retarget_link_down,
                                          ac->errstr);
        redisAsyncFree(ac);
        ngx_http_retarget_redis_retry(rds);
        return;
    }

    if (ngx_http_retarget_redis_attach(rds, ac) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_retarget_redis_lost(rds, "no free connection");
        return;
    }

    ngx_http_retarget_reply_guard(ac->c.reader, &rds->guard,
                                  ngx_http_retarget_redis_owed, ac, rds->log);

    rds->ac = ac;
    rds->handshake = 0;
    ngx_http_retarget_redis_set_state(rds, ngx_http_retarget_link_connecting,
                                      NULL);

    redisAsyncSetConnectCallback(ac, ngx_http_retarget_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_retarget_redis_on_disconnect);

    /*
     * The handshake goes first in the pipeline: AUTH, SELECT, and a PING
     * that proves the server answers at all.  The link is up when the
     * last of them is answered, within retarget_redis_timeout.
     */

    if (rc->password.len) {
        rds->handshake++;
        ngx_http_retarget_cmd_init(&cmd, "AUTH");
        ngx_http_retarget_arg_str(&cmd, &rc->password);
        redisAsyncCommandArgv(ac, ngx_http_retarget_redis_handshake_done, rds,
                              cmd.argc, cmd.argv, cmd.len);
    }

    if (rc->db) {
        rds->handshake++;
        ngx_http_retarget_cmd_init(&cmd, "SELECT");
        ngx_http_retarget_arg(&cmd, db, ngx_sprintf(db, "%ui", rc->db) - db);
        redisAsyncCommandArgv(ac, ngx_http_retarget_redis_handshake_done, rds,
                              cmd.argc, cmd.argv, cmd.len);
    }

    rds->handshake++;
    ngx_http_retarget_cmd_init(&cmd, "PING");
    redisAsyncCommandArgv(ac, ngx_http_retarget_redis_handshake_done, rds,
                          cmd.argc, cmd.argv, cmd.len);

    ngx_add_timer(&rds->timer, rds->rmcf->redis.timeout);
}


static ngx_int_t
ngx_http_retarget_redis_attach(ngx_http_retarget_redis_t *rds,
    redisAsyncContext *ac)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, rds->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: attached fd:%d as connection %p",
                   ac->c.fd, c);

    c->data = rds;
    c->read->handler = ngx_http_retarget_redis_read_handler;
    c->write->handler = ngx_http_retarget_redis_write_handler;
    c->read->log = rds->log;
    c->write->log = rds->log;

    /* ngx_close_idle_connections() tells us when a graceful exit starts */
    c->idle = 1;

    rds->conn = c;

    ac->data = rds;
    ac->ev.data = rds;
    ac->ev.addRead = ngx_http_retarget_redis_add_read;
    ac->ev.delRead = ngx_http_retarget_redis_del_read;
    ac->ev.addWrite = ngx_http_retarget_redis_add_write;
    ac->ev.delWrite = ngx_http_retarget_redis_del_write;
    ac->ev.cleanup = ngx_http_retarget_redis_cleanup;

    return NGX_OK;
}


static void
ngx_http_retarget_redis_add_read(void *data)
{
    ngx_http_retarget_redis_t *rds = data;

    if (rds->conn != NULL && !rds->conn->read->active) {
        if (ngx_add_event(rds->conn->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                          "retarget: redis read event failed");
        }
    }
}


static void
ngx_http_retarget_redis_del_read(void *data)
{
    ngx_http_retarget_redis_t *rds = data;

    if (rds->conn != NULL && rds->conn->read->active) {
        ngx_del_event(rds->conn->read, NGX_READ_EVENT, 0);
    }
}


/*
 * Commands to send: on a connected socket they are written at the end of
 * this event loop iteration (a posted event), all of the iteration's
 * commands in one write() and with no epoll_ctl() at all.  Only a socket
 * that is still connecting, or that did not take everything (hiredis asks
 * again from within its write), waits for epoll to say it is writable.
 */

static void
ngx_http_retarget_redis_add_write(void *data)
{
    ngx_http_retarget_redis_t *rds = data;

    if (rds->conn == NULL) {
        return;
    }

    if (!rds->writing && rds->ac != NULL
        && (rds->ac->c.flags & REDIS_CONNECTED))
    {
        if (!rds->conn->write->active && !rds->conn->write->posted) {
            ngx_post_event(rds->conn->write, &ngx_posted_events);
        }

        return;
    }

    if (!rds->conn->write->active) {
        if (ngx_add_event(rds->conn->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                          "retarget: redis write event failed");
        }
    }
}


static void
ngx_http_retarget_redis_del_write(void *data)
{
    ngx_http_retarget_redis_t *rds = data;

    if (rds->conn == NULL) {
        return;
    }

    if (rds->conn->write->active) {
        ngx_del_event(rds->conn->write, NGX_WRITE_EVENT, 0);
    }

    if (rds->conn->write->posted) {
        ngx_delete_posted_event(rds->conn->write);
    }
}


/*
 * hiredis is about to close the socket: give the connection back to
 * nginx without closing it, and make sure no stale event reaches it.
 */

static void
ngx_http_retarget_redis_cleanup(void *data)
{
    ngx_http_retarget_redis_t *rds = data;

    ngx_connection_t  *c;

    c = rds->conn;

    if (c == NULL) {
        return;
    }

    rds->conn = NULL;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: releasing fd:%d", c->fd);

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_retarget_redis_read_handler(ngx_event_t *ev)
{
    redisAsyncContext          *ac;
    ngx_connection_t           *c;
    ngx_http_retarget_redis_t  *rds;

    c = ev->data;
    rds = c->data;

    if (c->close) {
        /* the worker is shutting down gracefully */
        c->close = 0;
        ngx_http_retarget_redis_shutdown(rds);
        return;
    }

    ac = rds->ac;

    if (ac == NULL) {
        return;
    }

    redisAsyncHandleRead(ac);

    /* the context may be gone; a new one is only made from the timer */

    if (rds->ac == ac
        && ngx_http_retarget_reply_check_pending(ac->c.reader) != NGX_OK)
    {
        ngx_http_retarget_redis_lost(rds, (char *) rds->guard.refused);
    }
}


/* a reply is owed while a callback waits in hiredis' list */

static ngx_uint_t
ngx_http_retarget_redis_owed(void *data)
{
    redisAsyncContext *ac = data;

    return ac->replies.head != NULL;
}


static void
ngx_http_retarget_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_retarget_redis_t  *rds;

    c = ev->data;
    rds = c->data;

    if (rds->ac != NULL) {
        rds->writing = 1;
        redisAsyncHandleWrite(rds->ac);
        rds->writing = 0;
    }
}


static void
ngx_http_retarget_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_retarget_redis_t  *rds;

    rds = ac->data;

    if (status == REDIS_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                       "retarget redis: connected, %ui handshake replies due",
                       rds->handshake);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: connect failed: %s", ac->errstr);

    /* hiredis frees the context when this returns */

    rds->ac = NULL;

    if (rds->timer.timer_set) {
        ngx_del_timer(&rds->timer);
    }

    ngx_http_retarget_redis_set_state(rds, ngx_http_retarget_link_down,
                                      ac->errstr);
    ngx_http_retarget_redis_retry(rds);
}


static void
ngx_http_retarget_redis_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    char                       *why;
    ngx_http_retarget_redis_t  *rds;

    rds = ac->data;

    /* hiredis frees the context when this returns */

    /* a reply we refused reaches hiredis as "Out of memory" */

    why = rds->guard.refused ? (char *) rds->guard.refused
          : status == REDIS_OK ? "disconnected" : ac->errstr;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: disconnected (%s), %ui unanswered%s",
                   why, rds->inflight, rds->exiting ? ", exiting" : "");

    rds->ac = NULL;
    rds->inflight = 0;

    if (rds->exiting) {
        /* nothing more will come: the worker need not wait */
        if (rds->drain.timer_set) {
            ngx_del_timer(&rds->drain);
        }

        return;
    }

    ngx_http_retarget_redis_set_state(rds, ngx_http_retarget_link_down, why);
    ngx_http_retarget_redis_retry(rds);
}


static void
ngx_http_retarget_redis_handshake_done(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_retarget_redis_t *rds = privdata;

    redisReply  *reply = r;
    u_char       safe[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];

    if (reply == NULL) {
        /* the context is going away; on_disconnect or a timer follows */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* Redis' words: escaped and cut before the log or down_reason */
        (void) ngx_http_retarget_log_value_buf(safe, (u_char *) reply->str,
                                               reply->len);

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                       "retarget redis: handshake refused: \"%s\" "
                       "(%uz bytes)", safe, (size_t) reply->len);

        ngx_http_retarget_redis_lost(rds, (char *) safe);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: handshake step answered, %ui to come",
                   rds->handshake - 1);

    if (--rds->handshake) {
        return;
    }

    if (rds->timer.timer_set) {
        ngx_del_timer(&rds->timer);
    }

    /* the backoff stays until the connection has proved healthy */

    rds->healthy = 0;
    rds->up_replies = rds->replies;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: up, %ui queued commands to send, "
                   "backoff %M until healthy", rds->npending, rds->backoff);

    ngx_http_retarget_redis_set_state(rds, ngx_http_retarget_link_up, NULL);

    ngx_http_retarget_redis_flush_pending(rds);

    rds->seen = rds->replies;
    rds->owed = 0;

    /* a whole period from now: healthy is judged at its end */
    ngx_add_timer(&rds->watchdog, NGX_HTTP_RETARGET_WATCHDOG);
}


/*
 * Gives up the current connection: hiredis calls the pending callbacks
 * with NULL, on_disconnect does not run for a context freed by us.
 */

static void
ngx_http_retarget_redis_lost(ngx_http_retarget_redis_t *rds, const char *why)
{
    redisAsyncContext  *ac;

    ac = rds->ac;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: giving up the connection: %s, "
                   "%ui unanswered, %ui queued",
                   why, rds->inflight, rds->npending);

    if (rds->timer.timer_set) {
        ngx_del_timer(&rds->timer);
    }

    ngx_http_retarget_redis_set_state(rds, ngx_http_retarget_link_down, why);

    if (ac != NULL) {
        rds->ac = NULL;
        rds->inflight = 0;

        /* deferred by hiredis when called from one of its callbacks */
        ac->onDisconnect = NULL;
        redisAsyncFree(ac);
    }

    if (rds->exiting) {
        if (rds->drain.timer_set) {
            ngx_del_timer(&rds->drain);
        }

        return;
    }

    ngx_http_retarget_redis_retry(rds);
}


/*
 * why goes to error.log as it is: hiredis' own words, ours, or Redis'
 * words escaped by ngx_http_retarget_log_value_buf(), never a raw reply
 */

static void
ngx_http_retarget_redis_set_state(ngx_http_retarget_redis_t *rds,
    ngx_http_retarget_link_e state, const char *why)
{
    ngx_uint_t  level, up;

    if (rds->state == state) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: link %s -> %s",
                   ngx_http_retarget_link_names[rds->state],
                   ngx_http_retarget_link_names[state]);

    /*
     * Once per change, never per request; and while Redis stays away,
     * the retries are not news: only the first "down" is an error, until
     * a connection has proved healthy.  A connection lost before that
     * makes the link flap: its next "up" is not news either.
     */

    level = NGX_LOG_INFO;

    if (state == ngx_http_retarget_link_up) {
        rds->stats.reconnects += rds->was_up;
        rds->was_up = 1;

        if (!rds->flapping) {
            level = NGX_LOG_NOTICE;
        }

    } else if (state == ngx_http_retarget_link_down) {

        if (rds->state == ngx_http_retarget_link_up && !rds->healthy) {
            rds->flapping = 1;
        }

        if (!rds->down_logged
            || (!rds->flapping
                && ngx_strncmp(rds->down_reason, why ? why : "",
                               sizeof(rds->down_reason) - 1)
                   != 0))
        {
            /* the first failure, or a new reason for it (a flapping
             * link's reasons are all one failure) */
            rds->down_logged = 1;
            (void) ngx_cpystrn(rds->down_reason, (u_char *) (why ? why : ""),
                               sizeof(rds->down_reason));
            level = NGX_LOG_ERR;
        }
    }

    ngx_log_error(level, rds->log, 0, "retarget: redis %V %s%s%s",
                  &rds->rmcf->redis.name, ngx_http_retarget_link_names[state],
                  why ? ": " : "", why ? why : "");

    up = (rds->state == ngx_http_retarget_link_up);

    rds->state = state;

    if (rds->on_link != NULL && up != (state == ngx_http_retarget_link_up)) {
        rds->on_link(rds->link_data, !up);
    }
}


/* the next attempt, after a delay that doubles up to 10s, with jitter */

static void
ngx_http_retarget_redis_retry(ngx_http_retarget_redis_t *rds)
{
    ngx_msec_t  delay;

    if (rds->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_log_debug0(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                       "retarget redis: exiting, no reconnect");
        return;
    }

    delay = rds->backoff / 2 + (ngx_msec_t) ngx_random() % rds->backoff;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: reconnect scheduled in %M ms", delay);

    rds->backoff = ngx_min(rds->backoff * 2, NGX_HTTP_RETARGET_BACKOFF_MAX);

    if (rds->timer.timer_set) {
        ngx_del_timer(&rds->timer);
    }

    ngx_add_timer(&rds->timer, delay);
}


static void
ngx_http_retarget_redis_timer_handler(ngx_event_t *ev)
{
    ngx_http_retarget_redis_t *rds = ev->data;

    if (rds->ac != NULL) {
        /* connect or handshake took longer than retarget_redis_timeout */
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                       "retarget redis: connect timed out, %ui handshake "
                       "replies missing", rds->handshake);

        ngx_http_retarget_redis_lost(rds, "timed out");
        return;
    }

    ngx_http_retarget_redis_connect(rds);
}


/*
 * A server that stops answering (paused, blackholed) keeps the socket
 * open: with replies owed and none received for a whole period, the link
 * is given up and opened again.
 */

static void
ngx_http_retarget_redis_watchdog_handler(ngx_event_t *ev)
{
    ngx_http_retarget_redis_t *rds = ev->data;

    if (rds->state != ngx_http_retarget_link_up) {
        return;
    }

    /* commands owed a whole period ago, and not one reply since */

    if (rds->owed && rds->replies == rds->seen) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                       "retarget redis: watchdog: %ui replies owed, none came",
                       rds->owed);

        ngx_http_retarget_redis_lost(rds, "no reply for 1s");
        return;
    }

    if (!rds->healthy && rds->replies != rds->up_replies) {
        ngx_http_retarget_redis_healthy(rds);
    }

    rds->seen = rds->replies;
    rds->owed = rds->inflight;

    ngx_add_timer(&rds->watchdog, NGX_HTTP_RETARGET_WATCHDOG);
}


/*
 * Up for a whole watchdog period, and the module's own commands were
 * answered: the backoff and the once-per-change logging start afresh.
 */

static void
ngx_http_retarget_redis_healthy(ngx_http_retarget_redis_t *rds)
{
    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: healthy after %ui replies, backoff %M "
                   "reset%s", rds->replies - rds->up_replies, rds->backoff,
                   rds->flapping ? ", was flapping" : "");

    if (rds->flapping) {
        ngx_log_error(NGX_LOG_NOTICE, rds->log, 0,
                      "retarget: redis %V up and answering",
                      &rds->rmcf->redis.name);
    }

    rds->healthy = 1;
    rds->flapping = 0;
    rds->down_logged = 0;
    rds->error_logged = 0;
    rds->backoff = NGX_HTTP_RETARGET_BACKOFF_MIN;
}


/*
 * Queues a command that needs no answer (counted on error).  Returns
 * NGX_DECLINED when it had to be dropped.
 */

ngx_int_t
ngx_http_retarget_redis_write(ngx_http_retarget_redis_t *rds, int argc,
    const char **argv, const size_t *argvlen)
{
    if (rds == NULL
        || rds->npending + rds->inflight >= rds->rmcf->redis.queue)
    {
        if (rds != NULL) {
            ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                           "retarget redis: queue full (%ui queued, "
                           "%ui in flight), write dropped",
                           rds->npending, rds->inflight);

            rds->stats.dropped++;
        }

        return NGX_DECLINED;
    }

    if (rds->state == ngx_http_retarget_link_up && rds->ac != NULL
        && rds->hold == 0)
    {
        if (ngx_http_retarget_resp_command(rds->ac,
                                           ngx_http_retarget_redis_write_done,
                                           rds, argc, argv, argvlen)
            != REDIS_OK)
        {
            rds->stats.dropped++;
            return NGX_DECLINED;
        }

        ngx_http_retarget_redis_sent(rds);

        return NGX_OK;
    }

    if (ngx_http_retarget_redis_queue(rds, argc, argv, argvlen, NULL)
        != NGX_OK)
    {
        rds->stats.dropped++;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_redis_queue(ngx_http_retarget_redis_t *rds, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_read_t *rd)
{
    int                        len;
    char                      *cmd;
    ngx_http_retarget_qcmd_t  *q;

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        return NGX_ERROR;
    }

    q = ngx_alloc(offsetof(ngx_http_retarget_qcmd_t, data) + len, rds->log);
    if (q == NULL) {
        free(cmd);
        return NGX_ERROR;
    }

    q->read = rd;
    q->len = len;
    ngx_memcpy(q->data, cmd, len);
    free(cmd);

    ngx_queue_insert_tail(&rds->pending, &q->queue);
    rds->npending++;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: %s queued while %s, %ui waiting",
                   rd ? "read" : "write",
                   ngx_http_retarget_link_names[rds->state], rds->npending);

    return NGX_OK;
}


/* up to a read that holds the link: the rest waits for its answer */

static void
ngx_http_retarget_redis_flush_pending(ngx_http_retarget_redis_t *rds)
{
    ngx_int_t                        rc;
    ngx_queue_t                     *head;
    ngx_http_retarget_qcmd_t        *q;
    ngx_http_retarget_redis_read_t  *rd;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: sending the queue: %ui waiting, "
                   "held by %ui", rds->npending, rds->hold);

    while (!ngx_queue_empty(&rds->pending) && rds->ac != NULL
           && rds->hold == 0)
    {
        head = ngx_queue_head(&rds->pending);
        q = ngx_queue_data(head, ngx_http_retarget_qcmd_t, queue);

        ngx_queue_remove(head);
        rds->npending--;

        rd = q->read;

        if (rd != NULL) {
            rc = redisAsyncFormattedCommand(rds->ac,
                                            ngx_http_retarget_redis_read_done,
                                            rd, (char *) q->data, q->len);

        } else {
            rc = redisAsyncFormattedCommand(rds->ac,
                                            ngx_http_retarget_redis_write_done,
                                            rds, (char *) q->data, q->len);
        }

        ngx_free(q);

        if (rc == REDIS_OK) {
            ngx_http_retarget_redis_sent(rds);

            if (rd != NULL && rd->hold) {
                rds->hold++;
            }

            continue;
        }

        rds->stats.dropped++;

        if (rd != NULL) {
            /* never sent: it holds nothing, and no answer comes */
            rd->hold = 0;
            ngx_http_retarget_redis_read_done(NULL, NULL, rd);
        }
    }
}


static void
ngx_http_retarget_redis_drop_pending(ngx_http_retarget_redis_t *rds)
{
    ngx_queue_t                     *head;
    ngx_http_retarget_qcmd_t        *q;
    ngx_http_retarget_redis_read_t  *rd;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: dropping %ui queued commands",
                   rds->npending);

    while (!ngx_queue_empty(&rds->pending)) {
        head = ngx_queue_head(&rds->pending);
        q = ngx_queue_data(head, ngx_http_retarget_qcmd_t, queue);

        ngx_queue_remove(head);
        rd = q->read;
        ngx_free(q);

        rds->npending--;
        rds->stats.dropped++;

        if (rd != NULL) {
            /* what it answers for may queue writes: dropped here too */
            rd->hold = 0;
            ngx_http_retarget_redis_read_done(NULL, NULL, rd);
        }
    }
}


static void
ngx_http_retarget_redis_write_done(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_retarget_redis_t *rds = privdata;

    redisReply  *reply = r;

    if (reply == NULL) {
        /* the connection went away with the command unanswered */
        rds->stats.dropped++;
        return;
    }

    ngx_http_retarget_redis_replied(rds);
    (void) ngx_http_retarget_redis_reply_failed(rds, reply);
}


/* a reply is owed: a leaving worker waits for it (up to a limit) */

static void
ngx_http_retarget_redis_sent(ngx_http_retarget_redis_t *rds)
{
    rds->inflight++;
    rds->stats.sent++;

    if (rds->exiting && !rds->drain.timer_set) {
        ngx_add_timer(&rds->drain, NGX_HTTP_RETARGET_DRAIN_TIMEOUT);
    }
}


static void
ngx_http_retarget_redis_replied(ngx_http_retarget_redis_t *rds)
{
    rds->inflight--;
    rds->replies++;

    if (rds->exiting && rds->inflight == 0 && rds->drain.timer_set) {
        /* the last reply a leaving worker waited for */
        ngx_del_timer(&rds->drain);
    }
}


/* counts an error reply, and logs the first one after each reconnect */

static ngx_int_t
ngx_http_retarget_redis_reply_failed(ngx_http_retarget_redis_t *rds,
    redisReply *reply)
{
    u_char  safe[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];

    if (reply->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    rds->stats.errors++;

    if (!rds->error_logged) {
        rds->error_logged = 1;
        (void) ngx_http_retarget_log_value_buf(safe, (u_char *) reply->str,
                                               reply->len);
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "retarget: redis %V error: \"%s\" "
                      "(further errors are counted, not logged)",
                      &rds->rmcf->redis.name, safe);
    }

    return 1;
}


/*
 * A read whose answer someone waits for: sent only on a working link,
 * never queued.  The handler gets the reply (maybe an error reply), or
 * NULL when the link went away; the reply is freed when it returns.
 */

ngx_int_t
ngx_http_retarget_redis_read(ngx_http_retarget_redis_t *rds, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_reply_pt handler, void *data)
{
    return ngx_http_retarget_redis_ask(rds, argc, argv, argvlen, handler,
                                       data, 0, 0);
}


/*
 * A read in the order of the writes: it waits in the queue behind those
 * that wait.  With "hold", what comes after it waits until its handler
 * has run, and the writes the handler makes go out ahead of it.  Like
 * any read it needs a working link (NGX_DECLINED without).
 */

ngx_int_t
ngx_http_retarget_redis_read_ordered(ngx_http_retarget_redis_t *rds,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_reply_pt handler, void *data, ngx_uint_t hold)
{
    return ngx_http_retarget_redis_ask(rds, argc, argv, argvlen, handler,
                                       data, 1, hold);
}


static ngx_int_t
ngx_http_retarget_redis_ask(ngx_http_retarget_redis_t *rds, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_retarget_redis_reply_pt handler, void *data, ngx_uint_t ordered,
    ngx_uint_t hold)
{
    ngx_http_retarget_redis_read_t  *rd;

    if (rds == NULL || rds->state != ngx_http_retarget_link_up
        || rds->ac == NULL
        || rds->npending + rds->inflight >= rds->rmcf->redis.queue)
    {
        if (rds != NULL) {
            ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                           "retarget redis: read not sent: link %s, "
                           "%ui commands owed",
                           ngx_http_retarget_link_names[rds->state],
                           rds->npending + rds->inflight);
        }

        return NGX_DECLINED;
    }

    rd = ngx_alloc(sizeof(ngx_http_retarget_redis_read_t), rds->log);
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->rds = rds;
    rd->handler = handler;
    rd->data = data;
    rd->hold = hold;

    if (ordered && (rds->hold || rds->npending)) {
        if (ngx_http_retarget_redis_queue(rds, argc, argv, argvlen, rd)
            != NGX_OK)
        {
            ngx_free(rd);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_retarget_resp_command(rds->ac,
                                       ngx_http_retarget_redis_read_done, rd,
                                       argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(rd);
        return NGX_ERROR;
    }

    ngx_http_retarget_redis_sent(rds);

    rds->hold += hold;

    return NGX_OK;
}


static void
ngx_http_retarget_redis_read_done(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_retarget_redis_read_t *rd = privdata;

    redisReply                 *reply = r;
    ngx_http_retarget_redis_t  *rds;

    rds = rd->rds;

    if (reply != NULL) {
        ngx_http_retarget_redis_replied(rds);

        /* counted, and left to the handler: a key of another type is
         * the caller's business, not the link's */
        (void) ngx_http_retarget_redis_reply_failed(rds, reply);
    }

    if (rd->hold) {
        /* what the handler writes goes out ahead of what waited */
        rds->hold--;
    }

    if (rd->handler != NULL) {
        rd->handler(rd->data, reply);
    }

    if (rd->hold && rds->state == ngx_http_retarget_link_up) {
        /* then what waited, up to the next read that holds */
        ngx_http_retarget_redis_flush_pending(rds);
    }

    ngx_free(rd);
}


/* the worker is leaving: what is queued goes out, and we wait a little */

static void
ngx_http_retarget_redis_shutdown(ngx_http_retarget_redis_t *rds)
{
    ngx_uint_t  i;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "retarget redis: worker leaving: %ui exit handlers, "
                   "%ui queued, %ui in flight",
                   rds->nexit, rds->npending, rds->inflight);

    for (i = 0; i < rds->nexit; i++) {
        rds->exits[i].handler(rds->exits[i].data);
    }

    rds->exiting = 1;

    if (rds->timer.timer_set) {
        ngx_del_timer(&rds->timer);
    }

    if (rds->watchdog.timer_set) {
        ngx_del_timer(&rds->watchdog);
    }

    if (rds->state == ngx_http_retarget_link_up) {
        ngx_http_retarget_redis_flush_pending(rds);
    }

    if (rds->inflight && rds->ac != NULL) {
        ngx_add_timer(&rds->drain, NGX_HTTP_RETARGET_DRAIN_TIMEOUT);
    }
}


static void
ngx_http_retarget_redis_drain_handler(ngx_event_t *ev)
{
    ngx_http_retarget_redis_t *rds = ev->data;

    ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                  "retarget: redis %V: %ui replies not received at exit",
                  &rds->rmcf->redis.name, rds->inflight);
}


ngx_http_retarget_link_e
ngx_http_retarget_redis_state(ngx_http_retarget_redis_t *rds,
    ngx_http_retarget_redis_stats_t *stats)
{
    if (rds == NULL) {
        if (stats != NULL) {
            ngx_memzero(stats, sizeof(ngx_http_retarget_redis_stats_t));
        }

        return ngx_http_retarget_link_down;
    }

    if (stats != NULL) {
        *stats = rds->stats;
        stats->queued = rds->npending;
        stats->inflight = rds->inflight;
    }

    return rds->state;
}


/*
 * retarget_redis host:port | unix:/path [db=N] [password=P] [prefix=S]
 *
 * The host must be an IP address (or "localhost"): a name would make
 * hiredis resolve it with a blocking getaddrinfo() on the event loop, so
 * ngx_parse_url() is told not to resolve it either.
 */

char *
ngx_http_retarget_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_main_conf_t *rmcf = conf;

    u_char                          *p;
    ngx_int_t                        n;
    ngx_str_t                       *value, host, v;
    ngx_url_t                        u;
    ngx_uint_t                       i;
    ngx_http_retarget_redis_conf_t  *rc;

    rc = &rmcf->redis;

    if (rc->name.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    rc->name = value[1];

    /* "unix:" as written: ngx_parse_url() would take any case */

    if (value[1].len >= 5
        && ngx_strncasecmp(value[1].data, (u_char *) "unix:", 5) == 0
        && ngx_strncmp(value[1].data, "unix:", 5) != 0)
    {
        goto invalid_address;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.no_port) {
        goto invalid_address;
    }

    if (u.family == AF_UNIX) {
        /* cf->args strings are null-terminated */
        rc->unix_path = u.host;

    } else {
        rc->port = u.port;
        host = u.host;

        if (host.len > 2 && host.data[0] == '[') {
            host.data++;
            host.len -= 2;
        }

        if (u.naddrs == 0
            && host.len == 9 && ngx_strncmp(host.data, "localhost", 9) == 0)
        {
            ngx_str_set(&host, "127.0.0.1");

        } else if (u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" needs an IP address or \"localhost\", "
                               "not \"%V\": resolving a name would block "
                               "the worker", &cmd->name, &host);
            return NGX_CONF_ERROR;
        }

        rc->host.data = ngx_pnalloc(cf->pool, host.len + 1);
        if (rc->host.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(rc->host.data, host.data, host.len);
        rc->host.data[host.len] = '\0';
        rc->host.len = host.len;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 65535) {
                goto invalid;
            }

            rc->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            v.data = value[i].data + 7;
            v.len = value[i].len - 7;

            if (v.len == 0 || v.len > 64) {
                goto invalid;
            }

            for (p = v.data; p < v.data + v.len; p++) {
                if (*p <= ' ' || *p >= 0x7f || *p == '{' || *p == '}') {
                    goto invalid;
                }
            }

            rc->prefix = v;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid_address:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid address \"%V\" in \"%V\": use host:port "
                       "or unix:/path", &value[1], &cmd->name);
    return NGX_CONF_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\"",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}
