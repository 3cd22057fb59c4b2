
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * retarget_extract $name request|response|page PATH;
 *
 * Defines a variable, as map does, whose value is read from a body when it
 * is asked for (normally in the log phase, when events are written, and
 * the response has passed whole):
 *
 *   - JSON (application/json, any "+json" type): PATH is a dot path of
 *     object keys and array indices, -1 being the last element;
 *   - application/x-www-form-urlencoded: PATH is a field name, the value
 *     form-decoded;
 *   - multipart/form-data: PATH is a field name, the value the part's
 *     bytes (uploads, parts with a filename, are skipped);
 *   - anything else, a body too large or not read: empty.
 *
 * Each body is parsed once per request, however many variables read it
 * (the document is kept with the bodies, ngx_http_retarget_body.c).
 */


#include "ngx_http_retarget_extract.h"
#include "ngx_http_retarget_body.h"
#include "ngx_http_retarget_form.h"
#include "ngx_http_retarget_json.h"
#include "ngx_http_retarget_page.h"


#define NGX_HTTP_RETARGET_EXTRACT_PATH_MAX  1024


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     source;    /* NGX_HTTP_RETARGET_SRC_* */
    ngx_str_t                      path;
} ngx_http_retarget_extract_t;


static ngx_int_t ngx_http_retarget_extract_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_retarget_extract_value(ngx_http_request_t *r,
    ngx_http_retarget_extract_t *ex, ngx_str_t *out);
static ngx_int_t ngx_http_retarget_extract_json(ngx_http_request_t *r,
    ngx_http_retarget_extract_t *ex, ngx_str_t *body, ngx_str_t *out);
static ngx_int_t ngx_http_retarget_extract_form(ngx_http_request_t *r,
    ngx_http_retarget_extract_t *ex, ngx_str_t *body, ngx_str_t *out);
static char *ngx_http_retarget_extract_check_size(ngx_conf_t *cf,
    void *post, void *data);


ngx_conf_post_t  ngx_http_retarget_extract_size_bounds = {
    ngx_http_retarget_extract_check_size
};


static ngx_str_t  ngx_http_retarget_extract_sources[] = {
    ngx_string("request"),
    ngx_string("response"),
    ngx_string("page")
};


char *
ngx_http_retarget_extract_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_main_conf_t *rmcf = conf;

    ngx_str_t                    *value, name;
    ngx_uint_t                    s;
    ngx_http_variable_t          *var;
    ngx_http_retarget_extract_t  *ex;

    value = cf->args->elts;

    name = value[1];

    if (name.len < 2 || name.data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid variable name \"%V\" in \"%V\"",
                           &name, &cmd->name);
        return NGX_CONF_ERROR;
    }

    name.len--;
    name.data++;

    for (s = 0; s < NGX_HTTP_RETARGET_SRC_COUNT; s++) {
        if (value[2].len == ngx_http_retarget_extract_sources[s].len
            && ngx_strncmp(value[2].data,
                           ngx_http_retarget_extract_sources[s].data,
                           value[2].len)
               == 0)
        {
            break;
        }
    }

    if (s == NGX_HTTP_RETARGET_SRC_COUNT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid source \"%V\" in \"%V\": \"request\", "
                           "\"response\" or \"page\"", &value[2], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (value[3].len > NGX_HTTP_RETARGET_EXTRACT_PATH_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "path of \"%V\" longer than %d bytes",
                           &cmd->name, NGX_HTTP_RETARGET_EXTRACT_PATH_MAX);
        return NGX_CONF_ERROR;
    }

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    if (var->get_handler != NULL) {
        /* map and set declare changeable variables: not ours to take */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "variable \"%V\" is already defined", &value[1]);
        return NGX_CONF_ERROR;
    }

    ex = ngx_palloc(cf->pool, sizeof(ngx_http_retarget_extract_t));
    if (ex == NULL) {
        return NGX_CONF_ERROR;
    }

    ex->name = name;
    ex->source = s;
    ex->path = value[3];

    var->get_handler = ngx_http_retarget_extract_variable;
    var->data = (uintptr_t) ex;

    rmcf->extract_sources |= NGX_HTTP_RETARGET_SRC_BIT(s);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget extract \"%V\": %V \"%V\"",
                   &ex->name, &value[2], &ex->path);

    return NGX_CONF_OK;
}


/*
 * Whether $name is a "retarget_extract ... request" variable: what the
 * visitor's own request body says (configuration time, once every
 * directive is read)
 */

ngx_uint_t
ngx_http_retarget_extract_is_request(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                    i;
    ngx_hash_key_t               *key;
    ngx_http_variable_t          *var;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_retarget_extract_t  *ex;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (cmcf->variables_keys == NULL) {
        return 0;
    }

    /* the hash is built after the postconfiguration: the keys, as added */

    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {
        var = key[i].value;

        if (var->get_handler != ngx_http_retarget_extract_variable
            || key[i].key.len != name->len
            || ngx_strncasecmp(key[i].key.data, name->data, name->len) != 0)
        {
            continue;
        }

        ex = (ngx_http_retarget_extract_t *) var->data;

        return ex->source == NGX_HTTP_RETARGET_SRC_REQUEST;
    }

    return 0;
}


static ngx_int_t
ngx_http_retarget_extract_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_retarget_extract_t *ex = (ngx_http_retarget_extract_t *) data;

    ngx_str_t  value;

    if (ngx_http_retarget_extract_value(r, ex, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget extract \"%V\": %uz bytes \"%V\"",
                   &ex->name, value.len, &value);

    /* asked again later, the value may have come in the meantime */

    v->len = value.len;
    v->data = value.data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* NGX_OK with the value, empty when there is none; NGX_ERROR: no memory */

static ngx_int_t
ngx_http_retarget_extract_value(ngx_http_request_t *r,
    ngx_http_retarget_extract_t *ex, ngx_str_t *out)
{
    ngx_str_t                      body, type;
    ngx_http_request_t            *mr;
    ngx_http_retarget_body_kind_e  kind;

    out->len = 0;
    out->data = (u_char *) "";

    mr = r->main;

    switch (ex->source) {

    case NGX_HTTP_RETARGET_SRC_REQUEST:
        if (ngx_http_retarget_body_request(mr, &body) != NGX_OK) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: no request body to read");
            return NGX_OK;
        }

        if (mr->headers_in.content_type == NULL) {
            ngx_str_null(&type);

        } else {
            type = mr->headers_in.content_type->value;
        }

        kind = ngx_http_retarget_body_kind(&type);
        break;

    case NGX_HTTP_RETARGET_SRC_RESPONSE:
        if (ngx_http_retarget_body_response(mr, &body) != NGX_OK) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: no response body to read");
            return NGX_OK;
        }

        type = mr->headers_out.content_type;
        kind = ngx_http_retarget_body_kind(&type);
        break;

    default: /* NGX_HTTP_RETARGET_SRC_PAGE */
        /* the object retarget_page_json names, complete by now */
        if (ngx_http_retarget_page_json_text(mr, &body) != NGX_OK
            || body.len == 0)
        {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: no object in the page");
            return NGX_OK;
        }

        ngx_str_null(&type);
        kind = ngx_http_retarget_body_json;
        break;
    }

    switch (kind) {

    case ngx_http_retarget_body_json:
        return ngx_http_retarget_extract_json(mr, ex, &body, out);

    case ngx_http_retarget_body_urlencoded:
        return ngx_http_retarget_extract_form(mr, ex, &body, out);

    case ngx_http_retarget_body_multipart:
        if (ngx_http_retarget_multipart_boundary(type.data, type.len, &type)
            != NGX_OK)
        {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget extract: multipart without a boundary");
            return NGX_OK;
        }

        (void) ngx_http_retarget_multipart_field(body.data, body.len, &type,
                                                 &ex->path, out);
        return NGX_OK;

    default:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: body of type \"%V\" not read",
                       &type);
        return NGX_OK;
    }
}


static ngx_int_t
ngx_http_retarget_extract_json(ngx_http_request_t *r,
    ngx_http_retarget_extract_t *ex, ngx_str_t *body, ngx_str_t *out)
{
    ngx_uint_t                   bit;
    ngx_http_retarget_bodies_t  *st;

    st = ngx_http_retarget_bodies(r, 1);
    if (st == NULL) {
        return NGX_ERROR;
    }

    bit = NGX_HTTP_RETARGET_SRC_BIT(ex->source);

    if (!(st->parsed & bit)) {
        /* once per request and source, whatever comes of it */
        st->parsed |= bit;
        st->doc[ex->source] = ngx_http_retarget_json_parse(body->data,
                                                           body->len);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget extract: %uz bytes of JSON %s",
                       body->len,
                       st->doc[ex->source] ? "parsed" : "not parsed");
    }

    if (st->doc[ex->source] == NULL) {
        return NGX_OK;
    }

    return ngx_http_retarget_json_text(r->pool,
                                       ngx_http_retarget_json_path(
                                           st->doc[ex->source],
                                           ex->path.data, ex->path.len),
                                       out);
}


static ngx_int_t
ngx_http_retarget_extract_form(ngx_http_request_t *r,
    ngx_http_retarget_extract_t *ex, ngx_str_t *body, ngx_str_t *out)
{
    u_char     *p;
    ngx_str_t   raw;

    if (ngx_http_retarget_form_field(body->data, body->len, &ex->path, &raw)
        != NGX_OK)
    {
        return NGX_OK;
    }

    if (raw.len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, raw.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = ngx_http_retarget_form_decode(p, raw.data, raw.len) - p;

    return NGX_OK;
}


static char *
ngx_http_retarget_extract_check_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp > NGX_HTTP_RETARGET_JSON_MAX_LEN) {
        return "must be at most 8m";
    }

    return NGX_CONF_OK;
}
