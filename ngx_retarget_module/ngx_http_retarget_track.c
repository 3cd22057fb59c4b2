
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Redis' server-assisted invalidation, for the catalogue's cache
 * (ngx_http_retarget_catalog.c).  hiredis 0.14 speaks RESP2 only, so the
 * messages come by REDIRECT to a second connection of the worker:
 *
 *   main link, each time it is up:  CLIENT TRACKING off  (can Redis?)
 *   second link:                    [AUTH], CLIENT ID, SUBSCRIBE
 *                                   __redis__:invalidate
 *   main link, then:                CLIENT TRACKING off, CLIENT TRACKING
 *                                   on REDIRECT <id> BCAST
 *                                   PREFIX <prefix>p:
 *                                   PREFIX <prefix>out_of_stock
 *
 * BCAST: Redis tells of every change under the two prefixes, whatever
 * the worker read, and the reads of the visitors' hashes are not
 * tracked (every write of a visitor's meta would be told otherwise).
 * The cache trusts the messages only while both connections stay up
 * since tracking was answered: when either drops or comes up, the whole
 * cache is forgotten, and until tracking is on again the catalogue polls
 * (reads every known product again once a second).  A Redis that cannot
 * track (older than 6, CLIENT renamed or refused by an ACL, a proxy)
 * answers the first question with something other than +OK: it is
 * logged once, the catalogue polls, and the question is asked again only
 * when the main link comes up again; nothing is sent on a second link.
 *
 * The second link is a non-blocking hiredis redisContext driven by
 * nginx's events, not an async context: its replies are read here, one
 * at a time, so that no message of any shape can reach hiredis' pub/sub
 * dispatcher (which asserts on shapes it does not expect).  Its reader
 * builds replies within the limits of ngx_http_retarget_reply.c; a reply
 * of the wrong shape, or past the limits, drops the link (and the
 * cache), which comes back with the main link's backoff rules: doubling
 * from 100 ms to 10 s, reset once a subscribed link has lasted a second
 * (a server that confirms the SUBSCRIBE and then sends garbage keeps the
 * backoff growing).  Connect and handshake are
 * bounded by retarget_redis_timeout, as on the main link.
 */


#include "ngx_http_retarget_track.h"
#include "ngx_http_retarget_catalog.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_reply.h"
#include "ngx_http_retarget_store.h"

#include <hiredis/hiredis.h>


#define NGX_HTTP_RETARGET_TRACK_BACKOFF_MIN  100
#define NGX_HTTP_RETARGET_TRACK_BACKOFF_MAX  10000

/* where Redis publishes what changed for a REDIRECT (RESP2) */
#define NGX_HTTP_RETARGET_TRACK_CHANNEL      "__redis__:invalidate"


typedef struct {
    ngx_http_retarget_main_conf_t  *rmcf;
    ngx_log_t                      *log;

    redisContext                   *c;
    ngx_connection_t               *conn;
    ngx_event_t                     timer;     /* handshake timeout, retry */
    ngx_msec_t                      backoff;
    ngx_http_retarget_reply_guard_t guard;

    ngx_uint_t                      steps;     /* handshake replies due */
    ngx_uint_t                      auth;      /* AUTH is the first */
    long long                       id;        /* CLIENT ID, once known */
    ngx_uint_t                      ready;     /* subscribed */
    ngx_msec_t                      ready_at;

    ngx_uint_t                      gen;       /* main link ups and downs */
    ngx_uint_t                      can;       /* main: CLIENT TRACKING ok */

    ngx_str_t                       product;   /* "<prefix>p:" */
    ngx_str_t                       stock;     /* "<prefix>out_of_stock" */

    ngx_http_retarget_track_stats_t stats;

    unsigned                        refused_logged:1;
    unsigned                        on_logged:1;
} ngx_http_retarget_track_t;


/* a question on the main link: its answer counts for that link only */
typedef struct {
    ngx_http_retarget_track_t      *t;
    ngx_uint_t                      gen;
    long long                       id;
} ngx_http_retarget_track_ask_t;


static void ngx_http_retarget_track_main(void *data, ngx_uint_t up);
static ngx_int_t ngx_http_retarget_track_ask(ngx_http_retarget_track_t *t,
    ngx_http_retarget_cmd_t *cmd, ngx_http_retarget_redis_reply_pt handler);
static void ngx_http_retarget_track_probed(void *data, redisReply *reply);
static void ngx_http_retarget_track_enable(ngx_http_retarget_track_t *t);
static void ngx_http_retarget_track_enabled(void *data, redisReply *reply);
static void ngx_http_retarget_track_refused(ngx_http_retarget_track_t *t,
    const char *what, redisReply *reply);
static void ngx_http_retarget_track_off(ngx_http_retarget_track_t *t,
    const char *why);
static void ngx_http_retarget_track_connect(ngx_http_retarget_track_t *t);
static void ngx_http_retarget_track_read(ngx_event_t *ev);
static void ngx_http_retarget_track_write(ngx_event_t *ev);
static ngx_int_t ngx_http_retarget_track_reply(ngx_http_retarget_track_t *t,
    redisReply *reply);
static ngx_int_t ngx_http_retarget_track_message(
    ngx_http_retarget_track_t *t, redisReply *reply);
static void ngx_http_retarget_track_close(ngx_http_retarget_track_t *t);
static void ngx_http_retarget_track_lost(ngx_http_retarget_track_t *t,
    const char *why);
static void ngx_http_retarget_track_timer(ngx_event_t *ev);
static ngx_uint_t ngx_http_retarget_track_owed(void *data);
static ngx_uint_t ngx_http_retarget_track_is(redisReply *r, const char *s);


static ngx_str_t  ngx_http_retarget_track_channel =
    ngx_string(NGX_HTTP_RETARGET_TRACK_CHANNEL);

static ngx_http_retarget_track_t  *ngx_http_retarget_track;


ngx_int_t
ngx_http_retarget_track_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_str_t                   empty;
    ngx_http_retarget_track_t  *t;

    /* debug logging of timers reads an event's data as a connection */

    t = ngx_pcalloc(cycle->pool, ngx_max(sizeof(ngx_http_retarget_track_t),
                                         sizeof(ngx_connection_t)));
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->rmcf = rmcf;
    t->log = cycle->log;
    t->backoff = NGX_HTTP_RETARGET_TRACK_BACKOFF_MIN;

    empty.len = 0;
    empty.data = NULL;

    t->product.len = ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                               ngx_http_retarget_key_product,
                                               &empty);
    t->stock.len = ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                        ngx_http_retarget_key_out_of_stock,
                                        NULL);

    t->product.data = ngx_pnalloc(cycle->pool, t->product.len);
    t->stock.data = ngx_pnalloc(cycle->pool, t->stock.len);

    if (t->product.data == NULL || t->stock.data == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_retarget_key_put(t->product.data, &rmcf->redis.prefix,
                                     ngx_http_retarget_key_product, &empty);
    (void) ngx_http_retarget_key_put(t->stock.data, &rmcf->redis.prefix,
                                     ngx_http_retarget_key_out_of_stock,
                                     NULL);

    t->timer.handler = ngx_http_retarget_track_timer;
    t->timer.data = t;
    t->timer.log = cycle->log;
    t->timer.cancelable = 1;

    ngx_http_retarget_track = t;

    ngx_http_retarget_redis_on_link(ngx_http_retarget_redis_get(),
                                    ngx_http_retarget_track_main, t);

    return NGX_OK;
}


void
ngx_http_retarget_track_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_retarget_track_t  *t;

    t = ngx_http_retarget_track;

    if (t == NULL) {
        return;
    }

    if (t->timer.timer_set) {
        ngx_del_timer(&t->timer);
    }

    ngx_http_retarget_track_close(t);

    ngx_http_retarget_track = NULL;
}


void
ngx_http_retarget_track_stats(ngx_http_retarget_track_stats_t *stats)
{
    if (ngx_http_retarget_track == NULL) {
        ngx_memzero(stats, sizeof(ngx_http_retarget_track_stats_t));
        return;
    }

    *stats = ngx_http_retarget_track->stats;
}


/*
 * The main link came up or went down (from within the link's own
 * callbacks: nothing here frees its context).  Tracking belongs to one
 * connection of the main link: it is asked for again on each.
 */

static void
ngx_http_retarget_track_main(void *data, ngx_uint_t up)
{
    ngx_http_retarget_track_t *t = data;

    ngx_http_retarget_cmd_t  cmd;

    t->gen++;
    t->can = 0;

    ngx_http_retarget_track_off(t, up ? "the main link is up again"
                                      : "the main link is down");

    if (!up) {
        return;
    }

    ngx_http_retarget_cmd_init(&cmd, "CLIENT");
    ngx_http_retarget_arg(&cmd, (u_char *) "TRACKING", 8);
    ngx_http_retarget_arg(&cmd, (u_char *) "off", 3);

    (void) ngx_http_retarget_track_ask(t, &cmd,
                                       ngx_http_retarget_track_probed);
}


static ngx_int_t
ngx_http_retarget_track_ask(ngx_http_retarget_track_t *t,
    ngx_http_retarget_cmd_t *cmd, ngx_http_retarget_redis_reply_pt handler)
{
    ngx_int_t                       rc;
    ngx_http_retarget_track_ask_t  *ask;

    ask = ngx_alloc(sizeof(ngx_http_retarget_track_ask_t), t->log);
    if (ask == NULL) {
        return NGX_ERROR;
    }

    ask->t = t;
    ask->gen = t->gen;
    ask->id = t->id;

    rc = ngx_http_retarget_redis_read(ngx_http_retarget_redis_get(),
                                      cmd->argc, cmd->argv, cmd->len,
                                      handler, ask);
    if (rc != NGX_OK) {
        ngx_free(ask);
    }

    return rc;
}


/* "CLIENT TRACKING off" answered: whether this Redis can track */

static void
ngx_http_retarget_track_probed(void *data, redisReply *reply)
{
    ngx_http_retarget_track_ask_t *ask = data;

    ngx_http_retarget_track_t  *t;

    t = ask->t;

    if (ngx_http_retarget_track == NULL || ask->gen != t->gen
        || reply == NULL)
    {
        /* another connection of the main link by now */
        ngx_free(ask);
        return;
    }

    ngx_free(ask);

    if (reply->type != REDIS_REPLY_STATUS
        || !ngx_http_retarget_track_is(reply, "OK"))
    {
        ngx_http_retarget_track_refused(t, "CLIENT TRACKING", reply);
        return;
    }

    t->can = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, t->log, 0,
                   "retarget track: Redis can track, second link %s, "
                   "id %L", t->ready ? "ready" : "not ready", t->id);

    if (t->ready) {
        ngx_http_retarget_track_enable(t);

    } else if (t->c == NULL && !t->timer.timer_set) {
        ngx_http_retarget_track_connect(t);
    }
}


/* both links up: the main link's changes are told to the second */

static void
ngx_http_retarget_track_enable(ngx_http_retarget_track_t *t)
{
    u_char                   id[NGX_INT64_LEN];
    ngx_http_retarget_cmd_t  cmd;

    /* a REDIRECT to an earlier second link is replaced */

    ngx_http_retarget_cmd_init(&cmd, "CLIENT");
    ngx_http_retarget_arg(&cmd, (u_char *) "TRACKING", 8);
    ngx_http_retarget_arg(&cmd, (u_char *) "off", 3);

    /* a read, not a write: sent at once, ahead of the "on" */

    if (ngx_http_retarget_redis_read(ngx_http_retarget_redis_get(),
                                     cmd.argc, cmd.argv, cmd.len, NULL, NULL)
        != NGX_OK)
    {
        return;
    }

    ngx_http_retarget_cmd_init(&cmd, "CLIENT");
    ngx_http_retarget_arg(&cmd, (u_char *) "TRACKING", 8);
    ngx_http_retarget_arg(&cmd, (u_char *) "on", 2);
    ngx_http_retarget_arg(&cmd, (u_char *) "REDIRECT", 8);
    ngx_http_retarget_arg(&cmd, id, ngx_sprintf(id, "%L", t->id) - id);
    ngx_http_retarget_arg(&cmd, (u_char *) "BCAST", 5);
    ngx_http_retarget_arg(&cmd, (u_char *) "PREFIX", 6);
    ngx_http_retarget_arg_str(&cmd, &t->product);
    ngx_http_retarget_arg(&cmd, (u_char *) "PREFIX", 6);
    ngx_http_retarget_arg_str(&cmd, &t->stock);

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, t->log, 0,
                   "retarget track: CLIENT TRACKING on REDIRECT %L", t->id);

    (void) ngx_http_retarget_track_ask(t, &cmd,
                                       ngx_http_retarget_track_enabled);
}


static void
ngx_http_retarget_track_enabled(void *data, redisReply *reply)
{
    ngx_http_retarget_track_ask_t *ask = data;

    ngx_http_retarget_track_t  *t;

    t = ask->t;

    if (ngx_http_retarget_track == NULL || ask->gen != t->gen
        || ask->id != t->id || !t->ready || reply == NULL)
    {
        /* either link changed since: asked again when both are up */
        ngx_free(ask);
        return;
    }

    ngx_free(ask);

    if (reply->type != REDIS_REPLY_STATUS
        || !ngx_http_retarget_track_is(reply, "OK"))
    {
        ngx_http_retarget_track_refused(t, "CLIENT TRACKING on", reply);
        return;
    }

    t->stats.on = 1;

    if (!t->on_logged) {
        t->on_logged = 1;
        ngx_log_error(NGX_LOG_NOTICE, t->log, 0,
                      "retarget: redis %V tells of catalogue changes "
                      "(CLIENT TRACKING, REDIRECT %L)",
                      &t->rmcf->redis.name, t->id);
    }

    /* what was read until now was never tracked: forgotten */

    ngx_http_retarget_catalog_tracked(1);
}


/* Redis cannot track: the catalogue polls until the main link is new */

static void
ngx_http_retarget_track_refused(ngx_http_retarget_track_t *t,
    const char *what, redisReply *reply)
{
    u_char  safe[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];

    t->can = 0;
    t->stats.refused++;

    if (reply != NULL && (reply->type == REDIS_REPLY_ERROR
                          || reply->type == REDIS_REPLY_STATUS))
    {
        (void) ngx_http_retarget_log_value_buf(safe, (u_char *) reply->str,
                                               reply->len);

    } else {
        (void) ngx_cpystrn(safe, (u_char *) "an answer of another type",
                           sizeof(safe));
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, t->log, 0,
                   "retarget track: %s refused: \"%s\"", what, safe);

    if (!t->refused_logged) {
        t->refused_logged = 1;
        ngx_log_error(NGX_LOG_NOTICE, t->log, 0,
                      "retarget: redis %V does not track keys (%s: \"%s\"): "
                      "the catalogue is read again every second",
                      &t->rmcf->redis.name, what, safe);
    }

    if (t->timer.timer_set) {
        ngx_del_timer(&t->timer);
    }

    ngx_http_retarget_track_close(t);
    ngx_http_retarget_track_off(t, "Redis does not track");
}


/* tracking is off (again): nothing told so far may be trusted */

static void
ngx_http_retarget_track_off(ngx_http_retarget_track_t *t, const char *why)
{
    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, t->log, 0,
                   "retarget track: %s, tracking %s", why,
                   t->stats.on ? "off" : "stays off");

    t->stats.on = 0;

    ngx_http_retarget_catalog_tracked(0);
    ngx_http_retarget_catalog_flush(why);
}


static void
ngx_http_retarget_track_connect(ngx_http_retarget_track_t *t)
{
    redisContext                    *c;
    ngx_connection_t                *conn;
    ngx_http_retarget_cmd_t          cmd;
    ngx_http_retarget_redis_conf_t  *rc;

    rc = &t->rmcf->redis;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, t->log, 0,
                   "retarget track: connecting the second link, backoff %M",
                   t->backoff);

    if (rc->unix_path.len) {
        c = redisConnectUnixNonBlock((char *) rc->unix_path.data);

    } else {
        /* a numeric address: no resolving */
        c = redisConnectNonBlock((char *) rc->host.data, (int) rc->port);
    }

    if (c == NULL || c->err) {
        if (c != NULL) {
            redisFree(c);
        }

        ngx_http_retarget_track_lost(t, "connect failed");
        return;
    }

    conn = ngx_get_connection(c->fd, t->log);
    if (conn == NULL) {
        redisFree(c);
        ngx_http_retarget_track_lost(t, "no free connection");
        return;
    }

    conn->data = t;
    conn->read->handler = ngx_http_retarget_track_read;
    conn->write->handler = ngx_http_retarget_track_write;
    conn->read->log = t->log;
    conn->write->log = t->log;

    /* ngx_close_idle_connections() tells us when a graceful exit starts */
    conn->idle = 1;

    t->c = c;
    t->conn = conn;
    t->stats.connects++;

    ngx_http_retarget_reply_guard(c->reader, &t->guard,
                                  ngx_http_retarget_track_owed, t, t->log);

    t->steps = 0;
    t->auth = 0;

    if (rc->password.len) {
        ngx_http_retarget_cmd_init(&cmd, "AUTH");
        ngx_http_retarget_arg_str(&cmd, &rc->password);
        (void) redisAppendCommandArgv(c, cmd.argc, cmd.argv, cmd.len);
        t->steps++;
        t->auth = 1;
    }

    ngx_http_retarget_cmd_init(&cmd, "CLIENT");
    ngx_http_retarget_arg(&cmd, (u_char *) "ID", 2);
    (void) redisAppendCommandArgv(c, cmd.argc, cmd.argv, cmd.len);

    ngx_http_retarget_cmd_init(&cmd, "SUBSCRIBE");
    ngx_http_retarget_arg_str(&cmd, &ngx_http_retarget_track_channel);
    (void) redisAppendCommandArgv(c, cmd.argc, cmd.argv, cmd.len);

    t->steps += 2;

    if (ngx_add_event(conn->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK
        || ngx_add_event(conn->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
           != NGX_OK)
    {
        ngx_http_retarget_track_lost(t, "events failed");
        return;
    }

    ngx_add_timer(&t->timer, rc->timeout);
}


static void
ngx_http_retarget_track_write(ngx_event_t *ev)
{
    int                         done;
    ngx_connection_t           *conn;
    ngx_http_retarget_track_t  *t;

    conn = ev->data;
    t = conn->data;

    if (t->c == NULL) {
        return;
    }

    done = 0;

    if (redisBufferWrite(t->c, &done) != REDIS_OK) {
        ngx_http_retarget_track_lost(t, t->c->errstr);
        return;
    }

    if (done && conn->write->active) {
        ngx_del_event(conn->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_http_retarget_track_read(ngx_event_t *ev)
{
    void                       *reply;
    ngx_int_t                   rc;
    ngx_connection_t           *conn;
    redisReplyObjectFunctions  *fn;
    ngx_http_retarget_track_t  *t;

    conn = ev->data;
    t = conn->data;

    if (conn->close) {
        /* the worker is shutting down gracefully */
        conn->close = 0;

        if (t->timer.timer_set) {
            ngx_del_timer(&t->timer);
        }

        ngx_http_retarget_track_close(t);
        return;
    }

    if (t->c == NULL) {
        return;
    }

    if (redisBufferRead(t->c) != REDIS_OK) {
        ngx_http_retarget_track_lost(t, t->c->errstr);
        return;
    }

    for ( ;; ) {
        reply = NULL;

        if (redisReaderGetReply(t->c->reader, &reply) != REDIS_OK) {
            ngx_http_retarget_track_lost(t, t->guard.refused
                                            ? (char *) t->guard.refused
                                            : t->c->reader->errstr);
            return;
        }

        if (reply == NULL) {
            break;
        }

        /* the reply may close the link: its reader goes with it */

        fn = t->c->reader->fn;

        rc = ngx_http_retarget_track_reply(t, reply);

        fn->freeObject(reply);

        if (rc == NGX_DONE) {
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_retarget_track_lost(t, "an unexpected reply");
            return;
        }
    }

    if (ngx_http_retarget_reply_check_pending(t->c->reader) != NGX_OK) {
        ngx_http_retarget_track_lost(t, (char *) t->guard.refused);
    }
}


/* the handshake's replies in their order, then the messages */

static ngx_int_t
ngx_http_retarget_track_reply(ngx_http_retarget_track_t *t,
    redisReply *reply)
{
    u_char  safe[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];

    if (t->ready) {
        return ngx_http_retarget_track_message(t, reply);
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        (void) ngx_http_retarget_log_value_buf(safe, (u_char *) reply->str,
                                               reply->len);
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, t->log, 0,
                       "retarget track: handshake refused: \"%s\"", safe);

        /* no ACL for SUBSCRIBE or CLIENT: as a Redis that cannot track */
        ngx_http_retarget_track_refused(t, "the second link", reply);
        return NGX_DONE;
    }

    if (t->auth) {
        t->auth = 0;
        t->steps--;
        return NGX_OK;
    }

    if (t->steps == 2) {
        if (reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0) {
            return NGX_ERROR;
        }

        t->id = reply->integer;
        t->steps--;
        return NGX_OK;
    }

    /* "subscribe", the channel, 1 */

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || !ngx_http_retarget_track_is(reply->element[0], "subscribe")
        || !ngx_http_retarget_track_is(reply->element[1],
                                       NGX_HTTP_RETARGET_TRACK_CHANNEL))
    {
        return NGX_ERROR;
    }

    t->steps = 0;
    t->ready = 1;
    t->ready_at = ngx_current_msec;

    if (t->timer.timer_set) {
        ngx_del_timer(&t->timer);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, t->log, 0,
                   "retarget track: second link subscribed, id %L, main "
                   "link %s", t->id, t->can ? "can track" : "not asked yet");

    if (t->can) {
        ngx_http_retarget_track_enable(t);
    }

    return NGX_OK;
}


/*
 * "message", "__redis__:invalidate", then the keys that changed (an
 * array of them, or one), or nil: every key (FLUSHDB, FLUSHALL).
 * Nothing else is expected on the link.
 */

static ngx_int_t
ngx_http_retarget_track_message(ngx_http_retarget_track_t *t,
    redisReply *reply)
{
    size_t       i;
    ngx_str_t    key;
    redisReply  *keys, *e;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || !ngx_http_retarget_track_is(reply->element[0], "message")
        || !ngx_http_retarget_track_is(reply->element[1],
                                       NGX_HTTP_RETARGET_TRACK_CHANNEL))
    {
        return NGX_ERROR;
    }

    t->stats.messages++;

    if (!t->stats.on) {
        /* the catalogue polls: nothing it knows was told */
        return NGX_OK;
    }

    keys = reply->element[2];

    if (keys->type == REDIS_REPLY_NIL) {
        ngx_http_retarget_catalog_invalidate(NULL);
        return NGX_OK;
    }

    if (keys->type == REDIS_REPLY_STRING) {
        key.data = (u_char *) keys->str;
        key.len = keys->len;
        ngx_http_retarget_catalog_invalidate(&key);
        return NGX_OK;
    }

    if (keys->type != REDIS_REPLY_ARRAY) {
        return NGX_ERROR;
    }

    for (i = 0; i < keys->elements; i++) {
        e = keys->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            /* what changed is not known: all of it */
            ngx_http_retarget_catalog_invalidate(NULL);
            return NGX_OK;
        }

        key.data = (u_char *) e->str;
        key.len = e->len;
        ngx_http_retarget_catalog_invalidate(&key);
    }

    return NGX_OK;
}


/* the second link's context and connection go; its fd is closed */

static void
ngx_http_retarget_track_close(ngx_http_retarget_track_t *t)
{
    ngx_connection_t  *conn;

    conn = t->conn;

    if (conn != NULL) {
        t->conn = NULL;

        if (conn->read->active) {
            ngx_del_event(conn->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
        }

        if (conn->write->active) {
            ngx_del_event(conn->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
        }

        if (conn->read->posted) {
            ngx_delete_posted_event(conn->read);
        }

        if (conn->write->posted) {
            ngx_delete_posted_event(conn->write);
        }

        ngx_free_connection(conn);
        conn->fd = (ngx_socket_t) -1;
    }

    if (t->c != NULL) {
        /* closes the fd */
        redisFree(t->c);
        t->c = NULL;
    }

    t->ready = 0;
    t->id = 0;
    t->steps = 0;
}


static void
ngx_http_retarget_track_lost(ngx_http_retarget_track_t *t, const char *why)
{
    ngx_msec_t  delay;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, t->log, 0,
                   "retarget track: second link lost: %s, retry in about "
                   "%M ms", why ? why : "", t->backoff);

    if (t->timer.timer_set) {
        ngx_del_timer(&t->timer);
    }

    if (t->ready && ngx_current_msec - t->ready_at >= 1000) {
        /* it had proved healthy: this is a new failure */
        t->backoff = NGX_HTTP_RETARGET_TRACK_BACKOFF_MIN;
    }

    ngx_http_retarget_track_close(t);
    ngx_http_retarget_track_off(t, "the second link is down");

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    delay = t->backoff / 2 + (ngx_msec_t) ngx_random() % t->backoff;
    t->backoff = ngx_min(t->backoff * 2, NGX_HTTP_RETARGET_TRACK_BACKOFF_MAX);

    ngx_add_timer(&t->timer, delay);
}


static void
ngx_http_retarget_track_timer(ngx_event_t *ev)
{
    ngx_http_retarget_track_t *t = ev->data;

    if (t->c != NULL) {
        ngx_http_retarget_track_lost(t, "timed out");
        return;
    }

    /* connected again only while the main link says Redis can track */

    if (t->can) {
        ngx_http_retarget_track_connect(t);
    }
}


/* every reply may come: the link hears of changes without asking */

static ngx_uint_t
ngx_http_retarget_track_owed(void *data)
{
    return 1;
}


static ngx_uint_t
ngx_http_retarget_track_is(redisReply *r, const char *s)
{
    size_t  len;

    len = ngx_strlen(s);

    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
           && (size_t) r->len == len
           && ngx_strncasecmp((u_char *) r->str, (u_char *) s, len) == 0;
}
