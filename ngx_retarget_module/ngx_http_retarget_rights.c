
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor's rights over the stored data: "me" shows all of it (right
 * of access: the visitor's keys, the abandoned-cart queue entry and the
 * visitor's event stream entries), "forget" and "optout" delete all of
 * it and say so only once Redis has confirmed it.
 */


#include "ngx_http_retarget_rights.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_cookies.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_identity.h"
#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_wait.h"

#include <jansson.h>


/* the reads of "me", in the order their replies arrive */
static ngx_http_retarget_key_e  ngx_http_retarget_me_keys[] = {
    ngx_http_retarget_key_meta,
    ngx_http_retarget_key_cart,
    ngx_http_retarget_key_viewed
};

static char  *ngx_http_retarget_me_names[] = {
    "meta", "cart", "viewed"
};

#define NGX_HTTP_RETARGET_ME_KEYS                                             \
    (sizeof(ngx_http_retarget_me_keys) / sizeof(ngx_http_retarget_key_e))

/* then the visitor's entry in the abandoned-cart queue, and the stream */
#define NGX_HTTP_RETARGET_ME_CARTS  NGX_HTTP_RETARGET_ME_KEYS
#define NGX_HTTP_RETARGET_ME_STREAM (NGX_HTTP_RETARGET_ME_KEYS + 1)
#define NGX_HTTP_RETARGET_ME_READS  (NGX_HTTP_RETARGET_ME_KEYS + 2)

/* what "me" says of the stream beside the visitor's entries */
#define NGX_HTTP_RETARGET_ME_STREAM_NOTE                                      \
    "every event stream entry that names you is in stored.stream_entries; "   \
    "the entries of a first visit, before your browser sent the cookie "      \
    "back, carry no visitor id and cannot be tied to you"

/* the one read that answers a list */
#define NGX_HTTP_RETARGET_ME_LIST   2


typedef struct {
    json_t                        *doc;
    ngx_uint_t                     replies;
} ngx_http_retarget_me_t;


/* a forget waiting for Redis' answer */
typedef struct {
    ngx_http_retarget_erased_pt    done;
    void                          *data;
    ngx_uint_t                     failed;
} ngx_http_retarget_forget_t;


static ngx_int_t ngx_http_retarget_me_send(ngx_http_request_t *r,
    json_t *doc, ngx_uint_t status);
static void ngx_http_retarget_me_reply(ngx_http_request_t *r, void *data,
    redisReply *reply);
static void ngx_http_retarget_me_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static void ngx_http_retarget_me_meta(json_t *stored, redisReply *reply);
static json_t *ngx_http_retarget_me_item(redisReply *value, ngx_uint_t cart);
static json_t *ngx_http_retarget_me_value(redisReply *reply, ngx_uint_t list);
static void ngx_http_retarget_me_carts(json_t *stored, redisReply *reply);
static void ngx_http_retarget_me_stream(json_t *stored, redisReply *reply);
static void ngx_http_retarget_me_cleanup(void *data);
static void ngx_http_retarget_forget_reply(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_retarget_forget_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);


ngx_int_t
ngx_http_retarget_me(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    u_char                          vid[NGX_HTTP_RETARGET_VID_LEN];
    json_t                         *doc;
    ngx_int_t                       rc;
    ngx_str_t                       visitor, *consent;
    ngx_uint_t                      i, resign;
    ngx_pool_cleanup_t             *cln;
    ngx_http_retarget_me_t         *me;
    ngx_http_retarget_cmd_t         cmds[NGX_HTTP_RETARGET_ME_READS];
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    doc = json_object();
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(doc);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_retarget_me_cleanup;
    cln->data = doc;

    consent = ngx_http_retarget_consent_name(
                                   ngx_http_retarget_consent_state(r, rlcf));

    json_object_set_new(doc, "consent",
                        json_stringn((char *) consent->data, consent->len));

    if (ngx_http_retarget_cookie_visitor(r, rlcf, vid, &resign) != NGX_OK) {
        json_object_set_new(doc, "visitor", json_null());
        json_object_set_new(doc, "stored", json_object());
        return ngx_http_retarget_me_send(r, doc, NGX_HTTP_OK);
    }

    json_object_set_new(doc, "visitor",
                        json_stringn((char *) vid, sizeof(vid)));

    if (rmcf->redis.name.len == 0) {
        json_object_set_new(doc, "stored", json_object());
        return ngx_http_retarget_me_send(r, doc, NGX_HTTP_OK);
    }

    visitor.data = ngx_pnalloc(r->pool, sizeof(vid));
    if (visitor.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    visitor.len = sizeof(vid);
    ngx_memcpy(visitor.data, vid, sizeof(vid));

    for (i = 0; i < NGX_HTTP_RETARGET_ME_KEYS; i++) {
        ngx_http_retarget_cmd_init(&cmds[i],
                                   i == NGX_HTTP_RETARGET_ME_LIST
                                   ? "LRANGE" : "HGETALL");

        if (ngx_http_retarget_arg_key(r->pool, rmcf, &cmds[i],
                                      ngx_http_retarget_me_keys[i], &visitor)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (i == NGX_HTTP_RETARGET_ME_LIST) {
            ngx_http_retarget_arg(&cmds[i], (u_char *) "0", 1);
            ngx_http_retarget_arg(&cmds[i], (u_char *) "-1", 2);
        }
    }

    ngx_http_retarget_cmd_init(&cmds[NGX_HTTP_RETARGET_ME_CARTS], "ZSCORE");

    if (ngx_http_retarget_arg_key(r->pool, rmcf,
                                  &cmds[NGX_HTTP_RETARGET_ME_CARTS],
                                  ngx_http_retarget_key_carts, NULL)
        != NGX_OK
        || ngx_http_retarget_stream_read(r->pool, rmcf,
                                         &cmds[NGX_HTTP_RETARGET_ME_STREAM],
                                         &visitor)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_retarget_arg_str(&cmds[NGX_HTTP_RETARGET_ME_CARTS], &visitor);

    json_object_set_new(doc, "stream",
                        json_string(NGX_HTTP_RETARGET_ME_STREAM_NOTE));

    me = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_me_t));
    if (me == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_set_new(doc, "stored", json_object());
    me->doc = doc;

    rc = ngx_http_retarget_wait(r, NGX_HTTP_RETARGET_ME_READS, cmds,
                                ngx_http_retarget_me_reply,
                                ngx_http_retarget_me_done, me);

    if (rc == NGX_DECLINED) {
        json_object_set_new(doc, "error", json_string("storage unavailable"));
        return ngx_http_retarget_me_send(r, doc,
                                         NGX_HTTP_SERVICE_UNAVAILABLE);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_retarget_me_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_me_t *me = data;

    json_t      *stored, *v;
    ngx_uint_t   i;

    i = me->replies++;

    if (i >= NGX_HTTP_RETARGET_ME_READS) {
        return;
    }

    stored = json_object_get(me->doc, "stored");

    if (i == 0) {
        ngx_http_retarget_me_meta(stored, reply);
        return;
    }

    if (i == NGX_HTTP_RETARGET_ME_CARTS) {
        ngx_http_retarget_me_carts(stored, reply);
        return;
    }

    if (i == NGX_HTTP_RETARGET_ME_STREAM) {
        ngx_http_retarget_me_stream(stored, reply);
        return;
    }

    v = ngx_http_retarget_me_value(reply, i == NGX_HTTP_RETARGET_ME_LIST);

    if (v != NULL) {
        json_object_set_new(stored, ngx_http_retarget_me_names[i], v);
    }
}


/*
 * The meta hash, with its cart lines ("c:SKU") and viewed products
 * ("v:SKU") apart: objects by sku.  A line that does not parse is shown
 * as it is stored, with the other fields.
 */

static void
ngx_http_retarget_me_meta(json_t *stored, redisReply *reply)
{
    json_t      *meta, *lines, *viewed, *v;
    size_t       i;
    ngx_str_t    name, sku;
    ngx_uint_t   cart;
    redisReply  *field, *value;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    meta = json_object();
    lines = json_object();
    viewed = json_object();

    if (meta == NULL || lines == NULL || viewed == NULL) {
        goto failed;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {
        field = reply->element[i];
        value = reply->element[i + 1];

        if (field->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        name.data = (u_char *) field->str;
        name.len = field->len;

        if (ngx_http_retarget_item_field(&name, &cart, &sku) == NGX_OK) {
            v = ngx_http_retarget_me_item(value, cart);

            if (v != NULL) {
                /* a sku that is not UTF-8 is left out, as values are */
                json_object_setn_new(cart ? lines : viewed,
                                     (char *) sku.data, sku.len, v);
                continue;
            }
        }

        v = json_stringn(value->str, value->len);

        if (v != NULL) {
            json_object_setn_new(meta, field->str, field->len, v);
        }
    }

    json_object_set_new(stored, "meta", meta);
    json_object_set_new(stored, "cart_lines", lines);
    json_object_set_new(stored, "viewed_products", viewed);

    return;

failed:

    json_decref(meta);
    json_decref(lines);
    json_decref(viewed);
}


/* "carts": the time (unix seconds) the visitor's cart last changed */

static void
ngx_http_retarget_me_carts(json_t *stored, redisReply *reply)
{
    int64_t    n;
    ngx_str_t  score;

    if (reply->type != REDIS_REPLY_STRING) {
        /* not in the queue */
        return;
    }

    score.data = (u_char *) reply->str;
    score.len = reply->len;

    n = ngx_http_retarget_parse_number(&score);

    json_object_set_new(stored, "cart_queued",
                        n == NGX_ERROR ? json_stringn(reply->str, reply->len)
                                       : json_integer(n));
}


/*
 * "events": the visitor's entries on the event stream, oldest first, as
 * {"id": STREAM ID, "e": the entry's JSON}.  An entry whose JSON does not
 * parse is shown as the string it is.
 */

static void
ngx_http_retarget_me_stream(json_t *stored, redisReply *reply)
{
    json_t      *list, *item, *e;
    size_t       i, k;
    redisReply  *entry, *fields;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    list = json_array();
    if (list == NULL) {
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        entry = reply->element[i];

        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
            || entry->element[0]->type != REDIS_REPLY_STRING
            || entry->element[1]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        item = json_object();
        if (item == NULL) {
            break;
        }

        json_object_set_new(item, "id",
                            json_stringn(entry->element[0]->str,
                                         entry->element[0]->len));

        fields = entry->element[1];

        for (k = 0; k + 1 < fields->elements; k += 2) {
            if (fields->element[k]->type != REDIS_REPLY_STRING
                || fields->element[k + 1]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            e = json_loadb(fields->element[k + 1]->str,
                           fields->element[k + 1]->len, 0, NULL);

            if (e == NULL) {
                e = json_stringn(fields->element[k + 1]->str,
                                 fields->element[k + 1]->len);
            }

            if (e != NULL) {
                json_object_setn_new(item, fields->element[k]->str,
                                     fields->element[k]->len, e);
            }
        }

        json_array_append_new(list, item);
    }

    json_object_set_new(stored, "stream_entries", list);
}


/*
 * A cart line or a viewed product, decoded as the page's read decodes
 * it: NULL when it does not, and the line is shown as it is stored.
 */

static json_t *
ngx_http_retarget_me_item(redisReply *value, ngx_uint_t cart)
{
    json_t                    *item;
    ngx_str_t                  line;
    ngx_http_retarget_item_t   it;

    line.data = (u_char *) value->str;
    line.len = value->len;

    if (ngx_http_retarget_line_decode(&line, cart, &it) != NGX_OK) {
        return NULL;
    }

    item = json_object();
    if (item == NULL) {
        return NULL;
    }

    /* the time (ms) it was written, the quantity of a line */

    if (json_object_set_new(item, "time_ms", json_integer(it.ms)) != 0
        || (cart
            && json_object_set_new(item, "qty", json_integer(it.qty)) != 0)
        || json_object_set_new(item, "price",
                               json_stringn((char *) it.price.data,
                                            it.price.len))
           != 0
        || json_object_set_new(item, "name",
                               json_stringn((char *) it.name.data,
                                            it.name.len))
           != 0
        || json_object_set_new(item, "image",
                               json_stringn((char *) it.image.data,
                                            it.image.len))
           != 0
        || json_object_set_new(item, "url",
                               json_stringn((char *) it.url.data,
                                            it.url.len))
           != 0
        || (it.line.len
            && json_object_set_new(item, "line",
                                   json_stringn((char *) it.line.data,
                                                it.line.len))
               != 0))
    {
        json_decref(item);
        return NULL;
    }

    return item;
}


static void
ngx_http_retarget_me_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_retarget_me_t *me = data;

    ngx_uint_t  status;

    status = NGX_HTTP_OK;

    if (rc != NGX_OK) {
        json_object_set_new(me->doc, "error",
                            json_string(rc == NGX_AGAIN
                                        ? "storage timed out"
                                        : "storage unavailable"));
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_http_finalize_request(r, ngx_http_retarget_me_send(r, me->doc,
                                                           status));
}


/*
 * A hash as an object, a list as an array; anything else Redis might
 * answer (a key of another type, garbage) is left out.  Values that are
 * not UTF-8 are left out too: jansson refuses them.
 */

static json_t *
ngx_http_retarget_me_value(redisReply *reply, ngx_uint_t list)
{
    json_t  *v, *s;
    size_t   i;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }

    v = list ? json_array() : json_object();
    if (v == NULL) {
        return NULL;
    }

    for (i = 0; i < reply->elements; i += list ? 1 : 2) {

        if (list) {
            if (reply->element[i]->type == REDIS_REPLY_STRING) {
                s = json_stringn(reply->element[i]->str,
                                 reply->element[i]->len);
                if (s != NULL) {
                    json_array_append_new(v, s);
                }
            }

            continue;
        }

        if (i + 1 >= reply->elements
            || reply->element[i]->type != REDIS_REPLY_STRING
            || reply->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        s = json_stringn(reply->element[i + 1]->str,
                         reply->element[i + 1]->len);

        if (s != NULL) {
            json_object_setn_new(v, reply->element[i]->str,
                                 reply->element[i]->len, s);
        }
    }

    return v;
}


static ngx_int_t
ngx_http_retarget_me_send(ngx_http_request_t *r, json_t *doc,
    ngx_uint_t status)
{
    char       *dump;
    ngx_int_t   rc;

    static ngx_str_t  type = ngx_string("application/json");

    dump = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (dump == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_retarget_send(r, status, &type, (u_char *) dump,
                                ngx_strlen(dump), 1);

    free(dump);

    return rc;
}


static void
ngx_http_retarget_me_cleanup(void *data)
{
    json_decref((json_t *) data);
}


/*
 * "forget" and "optout": everything stored about the visitor of a valid
 * cookie, in one command whose reply says it was done.  NGX_OK: nothing
 * to erase (no valid cookie, or no Redis configured), "done" is not
 * called; NGX_DONE: sent, "done" comes with NGX_OK once Redis confirmed
 * it and NGX_ERROR when it did not (an error reply, no answer within
 * retarget_redis_timeout, the link lost); NGX_DECLINED: the link is not
 * up, nothing was sent.
 */

ngx_int_t
ngx_http_retarget_forget_visitor(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_erased_pt done,
    void *data)
{
    u_char                          vid[NGX_HTTP_RETARGET_VID_LEN], *p;
    ngx_int_t                       rc;
    ngx_str_t                       visitor, value;
    ngx_uint_t                      resign;
    ngx_http_retarget_cmd_t         cmd;
    ngx_http_retarget_forget_t     *f;
    ngx_http_retarget_main_conf_t  *rmcf;

    /*
     * A visitor cookie sent twice names no visitor, but one of the two is
     * the browser's real id, whose data stays: that erase is not done, and
     * must not be answered as if it were.
     */

    if (ngx_http_retarget_cookie_find(r, &rlcf->cookie->name, &value)
        == NGX_BUSY)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget rights: visitor cookie sent twice, "
                       "nothing can be erased");
        return NGX_DECLINED;
    }

    if (ngx_http_retarget_cookie_visitor(r, rlcf, vid, &resign) != NGX_OK) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget rights: no visitor cookie, nothing to forget");
        return NGX_OK;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->redis.name.len == 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget rights: no redis, nothing stored to forget");
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof(vid));
    f = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_forget_t));

    if (p == NULL || f == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, vid, sizeof(vid));

    visitor.data = p;
    visitor.len = sizeof(vid);

    f->done = done;
    f->data = data;

    if (ngx_http_retarget_forget(r->pool, rmcf, &cmd, &visitor) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_retarget_wait(r, 1, &cmd, ngx_http_retarget_forget_reply,
                                ngx_http_retarget_forget_done, f);

    if (rc == NGX_DECLINED) {
        /* the link's own state changes are logged by the link */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: forget not done: redis is down");
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static void
ngx_http_retarget_forget_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_forget_t *f = data;

    ngx_str_t  safe;

    if (reply->type != REDIS_REPLY_INTEGER) {
        f->failed = 1;

        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_http_retarget_log_value(r->pool, (u_char *) reply->str,
                                        reply->len, &safe);
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "retarget: forget not done: redis: \"%V\"",
                          &safe);
            return;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "retarget: forget not done: a reply of type %d",
                      reply->type);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget rights: forgotten, %L stream entries deleted",
                   (int64_t) reply->integer);
}


static void
ngx_http_retarget_forget_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_forget_t *f = data;

    if (rc != NGX_OK && !f->failed) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "retarget: forget not confirmed: %s",
                      rc == NGX_AGAIN ? "redis did not answer in time"
                                      : "the link was lost");
    }

    f->done(r, f->data, (rc == NGX_OK && !f->failed) ? NGX_OK : NGX_ERROR);
}
