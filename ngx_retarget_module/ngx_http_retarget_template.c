
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Templates: a Mustache subset compiled at configuration time into a flat
 * array of nodes, and rendered per request in two passes over it: measure
 * the exact length, then allocate once and write.
 */


#include "ngx_http_retarget_template.h"


#define NGX_HTTP_RETARGET_TPL_MAX_DEPTH  32
#define NGX_HTTP_RETARGET_TPL_MAX_SIZE   (256 * 1024)

/* how much of a faulty tag an error message quotes */
#define NGX_HTTP_RETARGET_TPL_EXCERPT    48


typedef enum {
    ngx_http_retarget_tn_text = 0,
    ngx_http_retarget_tn_var,             /* {{name}} */
    ngx_http_retarget_tn_raw,             /* {{{data_json}}} */
    ngx_http_retarget_tn_section,         /* {{#name}} */
    ngx_http_retarget_tn_inverted,        /* {{^name}} */
    ngx_http_retarget_tn_end,             /* {{/name}} */
    ngx_http_retarget_tn_comment          /* {{! ... }}, never a node */
} ngx_http_retarget_tnode_type_e;


/*
 * A section node and its end node point at each other through "jump",
 * so that rendering is a loop over the array: a false section jumps past
 * its end, and the end of a list section jumps back to the first node of
 * the body while items remain.
 */

typedef struct {
    ngx_http_retarget_tnode_type_e   type;
    ngx_uint_t                       jump;
    ngx_str_t                        value;     /* text, or the name */
    ngx_str_t                       *parts;     /* the name split at dots */
    ngx_uint_t                       nparts;
} ngx_http_retarget_tnode_t;


struct ngx_http_retarget_tpl_s {
    ngx_http_retarget_tnode_t       *nodes;
    ngx_uint_t                       nnodes;
};


/* a section being rendered */
typedef struct {
    ngx_array_t                     *list;      /* NULL: rendered once */
    ngx_uint_t                       next;      /* the next item of list */
} ngx_http_retarget_tframe_t;


typedef struct {
    ngx_http_retarget_tnode_type_e   type;
    u_char                          *start;     /* at "{{" */
    u_char                          *end;       /* past "}}", or NULL */
    ngx_str_t                        name;
} ngx_http_retarget_ttag_t;


typedef struct {
    ngx_conf_t       *cf;
    ngx_str_t        *source;

    u_char           *start;
    u_char           *end;

    u_char           *counted;     /* newlines are counted up to here */
    ngx_uint_t        line;

    ngx_array_t      *nodes;
    u_char           *text;        /* where static text is copied to */

    /* the open sections: their nodes and tags */
    ngx_uint_t        depth;
    ngx_uint_t        open[NGX_HTTP_RETARGET_TPL_MAX_DEPTH];
    u_char           *open_tag[NGX_HTTP_RETARGET_TPL_MAX_DEPTH];
} ngx_http_retarget_tparse_t;


static ngx_int_t ngx_http_retarget_tpl_parse(ngx_http_retarget_tparse_t *ps);
static ngx_int_t ngx_http_retarget_tpl_tag(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag);
static u_char *ngx_http_retarget_tpl_close(u_char *p, u_char *end,
    ngx_uint_t braces, ngx_uint_t multiline);
static ngx_int_t ngx_http_retarget_tpl_name(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag, u_char *p, u_char *last);
static ngx_uint_t ngx_http_retarget_tpl_standalone(
    ngx_http_retarget_tparse_t *ps, ngx_http_retarget_ttag_t *tag,
    u_char *text, ngx_uint_t bol, u_char **line, u_char **next);
static ngx_int_t ngx_http_retarget_tpl_add_text(
    ngx_http_retarget_tparse_t *ps, u_char *p, u_char *last);
static ngx_int_t ngx_http_retarget_tpl_add_tag(
    ngx_http_retarget_tparse_t *ps, ngx_http_retarget_ttag_t *tag);
static ngx_http_retarget_tnode_t *ngx_http_retarget_tpl_add_node(
    ngx_http_retarget_tparse_t *ps, ngx_http_retarget_ttag_t *tag);
static ngx_uint_t ngx_http_retarget_tpl_line(ngx_http_retarget_tparse_t *ps,
    u_char *pos);
static size_t ngx_http_retarget_tpl_excerpt(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag);
static void ngx_http_retarget_tpl_tag_error(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag, char *what);
static void ngx_cdecl ngx_http_retarget_tpl_error(
    ngx_http_retarget_tparse_t *ps, u_char *pos, const char *fmt, ...);

static size_t ngx_http_retarget_tpl_walk(ngx_http_retarget_tpl_t *tpl,
    ngx_array_t *data, u_char *dst);
static ngx_http_retarget_tfield_t *ngx_http_retarget_tpl_lookup(
    ngx_array_t **ctx, ngx_uint_t nctx, ngx_http_retarget_tnode_t *node);
static ngx_http_retarget_tfield_t *ngx_http_retarget_tpl_field(
    ngx_array_t *obj, ngx_str_t *name);
static ngx_uint_t ngx_http_retarget_tpl_truthy(ngx_http_retarget_tfield_t *f);


ngx_http_retarget_tpl_t *
ngx_http_retarget_tpl_load(ngx_conf_t *cf, ngx_str_t *path)
{
    u_char                   *buf, *fname;
    size_t                    size, len;
    ssize_t                   n;
    ngx_fd_t                  fd;
    ngx_str_t                 name, text;
    ngx_file_info_t           fi;
    ngx_http_retarget_tpl_t  *tpl;

    name = *path;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NULL;
    }

    /* the path from ngx_conf_full_name() is not always null-terminated */

    fname = ngx_pnalloc(cf->pool, name.len + 1);
    if (fname == NULL) {
        return NULL;
    }

    ngx_memcpy(fname, name.data, name.len);
    fname[name.len] = '\0';
    name.data = fname;

    fd = ngx_open_file(fname, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open template \"%s\"", fname);
        return NULL;
    }

    buf = NULL;
    tpl = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", fname);
        goto done;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "template \"%s\" is not a regular file", fname);
        goto done;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_RETARGET_TPL_MAX_SIZE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "template \"%s\" is too large "
                           "(%O bytes, at most %d)",
                           fname, ngx_file_size(&fi),
                           NGX_HTTP_RETARGET_TPL_MAX_SIZE);
        goto done;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size != 0) {
        buf = ngx_alloc(size, cf->log);
        if (buf == NULL) {
            goto done;
        }
    }

    for (len = 0; len < size; len += n) {

        n = ngx_read_fd(fd, buf + len, size - len);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                n = 0;
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               ngx_read_fd_n " \"%s\" failed", fname);
            goto done;
        }

        if (n == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "template \"%s\" was truncated while read",
                               fname);
            goto done;
        }
    }

    text.data = buf;
    text.len = size;

    /* a UTF-8 byte order mark would end up in the middle of the page */

    if (size >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                       "retarget template: \"%s\" starts with a BOM, "
                       "skipped", fname);

        text.data += 3;
        text.len -= 3;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget template: \"%s\" read, %uz bytes",
                   fname, text.len);

    tpl = ngx_http_retarget_tpl_compile(cf, &text, &name);

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", fname);
    }

    if (buf != NULL) {
        ngx_free(buf);
    }

    return tpl;
}


/*
 * Compiles "text" into nodes allocated from cf->pool; the static text and
 * the names are copied, so "text" need not outlive the call.  "source"
 * names the template in error messages.
 */

ngx_http_retarget_tpl_t *
ngx_http_retarget_tpl_compile(ngx_conf_t *cf, ngx_str_t *text,
    ngx_str_t *source)
{
    ngx_http_retarget_tpl_t     *tpl;
    ngx_http_retarget_tparse_t   ps;

    ngx_memzero(&ps, sizeof(ngx_http_retarget_tparse_t));

    ps.cf = cf;
    ps.source = source;
    ps.start = text->data;
    ps.end = text->data + text->len;
    ps.counted = ps.start;
    ps.line = 1;

    ps.nodes = ngx_array_create(cf->pool, 16,
                                sizeof(ngx_http_retarget_tnode_t));
    if (ps.nodes == NULL) {
        return NULL;
    }

    if (text->len != 0) {
        ps.text = ngx_pnalloc(cf->pool, text->len);
        if (ps.text == NULL) {
            return NULL;
        }
    }

    if (ngx_http_retarget_tpl_parse(&ps) != NGX_OK) {
        return NULL;
    }

    tpl = ngx_palloc(cf->pool, sizeof(ngx_http_retarget_tpl_t));
    if (tpl == NULL) {
        return NULL;
    }

    tpl->nodes = ps.nodes->elts;
    tpl->nnodes = ps.nodes->nelts;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget template: %V compiled, %uz bytes, %ui nodes",
                   source, text->len, tpl->nnodes);

    return tpl;
}


static ngx_int_t
ngx_http_retarget_tpl_parse(ngx_http_retarget_tparse_t *ps)
{
    u_char                     *p, *q, *text, *line, *next;
    ngx_uint_t                  bol, standalone;
    ngx_http_retarget_ttag_t    tag;
    ngx_http_retarget_tnode_t  *node;

    /* "bol": the pending text starts at the beginning of a line */

    p = ps->start;
    text = p;
    bol = 1;

    for ( ;; ) {

        for ( ;; ) {
            q = ngx_strlchr(p, ps->end, '{');

            if (q == NULL || q + 1 == ps->end) {
                q = NULL;
                break;
            }

            if (q[1] == '{') {
                break;
            }

            p = q + 2;
        }

        if (q == NULL) {
            if (ngx_http_retarget_tpl_add_text(ps, text, ps->end) != NGX_OK) {
                return NGX_ERROR;
            }

            break;
        }

        ngx_memzero(&tag, sizeof(ngx_http_retarget_ttag_t));
        tag.start = q;

        if (ngx_http_retarget_tpl_tag(ps, &tag) != NGX_OK) {
            return NGX_ERROR;
        }

        line = tag.start;
        next = tag.end;
        standalone = 0;

        if (tag.type != ngx_http_retarget_tn_var
            && tag.type != ngx_http_retarget_tn_raw)
        {
            standalone = ngx_http_retarget_tpl_standalone(ps, &tag, text, bol,
                                                          &line, &next);
        }

        if (ngx_http_retarget_tpl_add_text(ps, text, line) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_retarget_tpl_add_tag(ps, &tag) != NGX_OK) {
            return NGX_ERROR;
        }

        p = next;
        text = next;
        bol = standalone;
    }

    if (ps->depth != 0) {
        node = (ngx_http_retarget_tnode_t *) ps->nodes->elts
               + ps->open[ps->depth - 1];

        ngx_http_retarget_tpl_error(ps, ps->open_tag[ps->depth - 1],
                                    "unclosed section \"{{%c%V}}\"",
                                    (node->type == ngx_http_retarget_tn_section)
                                    ? '#' : '^',
                                    &node->value);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Parses the tag at tag->start ("{{") and sets its type, its name and its
 * end.  Whitespace (spaces and tabs) is allowed around the sigil and the
 * name; only comments may span lines.
 */

static ngx_int_t
ngx_http_retarget_tpl_tag(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag)
{
    u_char  *p, *q;

    p = tag->start + 2;

    if (p < ps->end && *p == '{') {

        q = ngx_http_retarget_tpl_close(p + 1, ps->end, 3, 0);
        if (q == NULL) {
            goto unterminated;
        }

        tag->type = ngx_http_retarget_tn_raw;
        tag->end = q + 3;

        if (ngx_http_retarget_tpl_name(ps, tag, p + 1, q) != NGX_OK) {
            return NGX_ERROR;
        }

        if (tag->name.len != sizeof("data_json") - 1
            || ngx_strncmp(tag->name.data, "data_json", tag->name.len) != 0)
        {
            goto unescaped;
        }

        return NGX_OK;
    }

    while (p < ps->end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p < ps->end && *p == '!') {

        q = ngx_http_retarget_tpl_close(p + 1, ps->end, 2, 1);
        if (q == NULL) {
            goto unterminated;
        }

        tag->type = ngx_http_retarget_tn_comment;
        tag->end = q + 2;

        /*
         * As in Mustache, the first "}}" ends a comment: a tag written in
         * one would end it early and print the rest of it on every page
         */

        if (ngx_strlcasestrn(p + 1, q, (u_char *) "{{", 2 - 1) != NULL) {
            ngx_http_retarget_tpl_tag_error(ps, tag,
                                            "a comment cannot hold \"{{\" "
                                            "(its first \"}}\" ends it), "
                                            "in");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    q = ngx_http_retarget_tpl_close(p, ps->end, 2, 0);
    if (q == NULL) {
        goto unterminated;
    }

    tag->end = q + 2;

    switch (*p) {

    case '#':
        tag->type = ngx_http_retarget_tn_section;
        p++;
        break;

    case '^':
        tag->type = ngx_http_retarget_tn_inverted;
        p++;
        break;

    case '/':
        tag->type = ngx_http_retarget_tn_end;
        p++;
        break;

    case '&':
    case '{':
        goto unescaped;

    case '>':
    case '<':
    case '=':
    case '$':
        ngx_http_retarget_tpl_tag_error(ps, tag, "unsupported tag");
        return NGX_ERROR;

    default:
        tag->type = ngx_http_retarget_tn_var;
        break;
    }

    return ngx_http_retarget_tpl_name(ps, tag, p, q);

unterminated:

    ngx_http_retarget_tpl_tag_error(ps, tag, "unterminated tag");
    return NGX_ERROR;

unescaped:

    ngx_http_retarget_tpl_tag_error(ps, tag,
                                    "unescaped output is only allowed for "
                                    "{{{data_json}}}, not");
    return NGX_ERROR;
}


/*
 * The first run of "braces" closing braces at or after p; unless
 * "multiline", the search stops at the end of the line.
 */

static u_char *
ngx_http_retarget_tpl_close(u_char *p, u_char *end, ngx_uint_t braces,
    ngx_uint_t multiline)
{
    while (p + braces <= end) {

        if (*p == '}') {
            if (p[1] == '}' && (braces == 2 || p[2] == '}')) {
                return p;
            }

        } else if (*p == '\n' && !multiline) {
            return NULL;
        }

        p++;
    }

    return NULL;
}


/*
 * A name is [A-Za-z_][A-Za-z0-9_.]* without empty dot-separated parts,
 * with optional spaces and tabs around it, and fills p..last.
 */

static ngx_int_t
ngx_http_retarget_tpl_name(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag, u_char *p, u_char *last)
{
    u_char  c, *name;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p == last) {
        ngx_http_retarget_tpl_tag_error(ps, tag, "empty tag");
        return NGX_ERROR;
    }

    name = p;

    c = (u_char) (*p | 0x20);

    if ((c < 'a' || c > 'z') && *p != '_') {
        goto invalid;
    }

    for (p++; p < last; p++) {
        c = (u_char) (*p | 0x20);

        if ((c >= 'a' && c <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') {
            continue;
        }

        if (*p == '.' && p[-1] != '.') {
            continue;
        }

        break;
    }

    if (p[-1] == '.') {
        goto invalid;
    }

    tag->name.data = name;
    tag->name.len = p - name;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p == last) {
        return NGX_OK;
    }

invalid:

    ngx_http_retarget_tpl_tag_error(ps, tag, "invalid name in");
    return NGX_ERROR;
}


/*
 * As in Mustache, a section, end or comment tag alone on its line (but
 * for spaces and tabs) takes the whole line with it.  "text" is where the
 * pending static text starts; on success, *line is where that text now
 * ends and *next is where the text after the tag starts.
 */

static ngx_uint_t
ngx_http_retarget_tpl_standalone(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag, u_char *text, ngx_uint_t bol,
    u_char **line, u_char **next)
{
    u_char  *p, *q;

    for (p = tag->start; p > text; p--) {

        if (p[-1] == '\n') {
            break;
        }

        if (p[-1] != ' ' && p[-1] != '\t') {
            return 0;
        }
    }

    if (p == text && !bol) {
        return 0;
    }

    q = tag->end;

    while (q < ps->end && (*q == ' ' || *q == '\t')) {
        q++;
    }

    if (q < ps->end) {

        if (*q == '\n') {
            q++;

        } else if (*q == '\r' && q + 1 < ps->end && q[1] == '\n') {
            q += 2;

        } else {
            return 0;
        }
    }

    *line = p;
    *next = q;

    return 1;
}


static ngx_int_t
ngx_http_retarget_tpl_add_text(ngx_http_retarget_tparse_t *ps, u_char *p,
    u_char *last)
{
    size_t                      len;
    ngx_http_retarget_tnode_t  *node;

    len = last - p;

    if (len == 0) {
        return NGX_OK;
    }

    /*
     * The text is copied contiguously and nothing else is, so text that
     * follows text (around a comment) extends the previous node.
     */

    if (ps->nodes->nelts != 0) {
        node = (ngx_http_retarget_tnode_t *) ps->nodes->elts
               + ps->nodes->nelts - 1;

        if (node->type == ngx_http_retarget_tn_text) {
            node->value.len += len;
            ps->text = ngx_cpymem(ps->text, p, len);
            return NGX_OK;
        }
    }

    node = ngx_array_push(ps->nodes);
    if (node == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(node, sizeof(ngx_http_retarget_tnode_t));

    node->type = ngx_http_retarget_tn_text;
    node->value.data = ps->text;
    node->value.len = len;

    ps->text = ngx_cpymem(ps->text, p, len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_tpl_add_tag(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag)
{
    ngx_uint_t                  n;
    ngx_http_retarget_tnode_t  *node, *open;

    switch (tag->type) {

    case ngx_http_retarget_tn_comment:
        return NGX_OK;

    case ngx_http_retarget_tn_section:
    case ngx_http_retarget_tn_inverted:

        if (ps->depth == NGX_HTTP_RETARGET_TPL_MAX_DEPTH) {
            ngx_http_retarget_tpl_error(ps, tag->start,
                                        "sections nested deeper than %d "
                                        "levels at \"%*s\"",
                                        NGX_HTTP_RETARGET_TPL_MAX_DEPTH,
                                        ngx_http_retarget_tpl_excerpt(ps, tag),
                                        tag->start);
            return NGX_ERROR;
        }

        n = ps->nodes->nelts;

        if (ngx_http_retarget_tpl_add_node(ps, tag) == NULL) {
            return NGX_ERROR;
        }

        ps->open[ps->depth] = n;
        ps->open_tag[ps->depth] = tag->start;
        ps->depth++;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ps->cf->log, 0,
                       "retarget template: %s \"%V\" opened, depth %ui",
                       tag->type == ngx_http_retarget_tn_section
                       ? "section" : "inverted section",
                       &tag->name, ps->depth);

        return NGX_OK;

    case ngx_http_retarget_tn_end:

        if (ps->depth == 0) {
            ngx_http_retarget_tpl_error(ps, tag->start,
                                        "unexpected \"{{/%V}}\"", &tag->name);
            return NGX_ERROR;
        }

        n = ps->open[ps->depth - 1];
        open = (ngx_http_retarget_tnode_t *) ps->nodes->elts + n;

        if (open->value.len != tag->name.len
            || ngx_strncmp(open->value.data, tag->name.data, tag->name.len)
               != 0)
        {
            ngx_http_retarget_tpl_error(ps, tag->start,
                                        "mismatched \"{{/%V}}\", "
                                        "expected \"{{/%V}}\"",
                                        &tag->name, &open->value);
            return NGX_ERROR;
        }

        node = ngx_http_retarget_tpl_add_node(ps, tag);
        if (node == NULL) {
            return NGX_ERROR;
        }

        node->jump = n;

        /* the array may have moved */

        open = (ngx_http_retarget_tnode_t *) ps->nodes->elts + n;
        open->jump = ps->nodes->nelts - 1;

        ps->depth--;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ps->cf->log, 0,
                       "retarget template: section \"%V\" closed, "
                       "nodes %ui-%ui", &tag->name, n, open->jump);

        return NGX_OK;

    default: /* var, raw */

        if (ngx_http_retarget_tpl_add_node(ps, tag) == NULL) {
            return NGX_ERROR;
        }

        return NGX_OK;
    }
}


static ngx_http_retarget_tnode_t *
ngx_http_retarget_tpl_add_node(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag)
{
    u_char                     *p, *last;
    ngx_uint_t                  n;
    ngx_str_t                  *part;
    ngx_http_retarget_tnode_t  *node;

    node = ngx_array_push(ps->nodes);
    if (node == NULL) {
        return NULL;
    }

    ngx_memzero(node, sizeof(ngx_http_retarget_tnode_t));

    node->type = tag->type;

    node->value.len = tag->name.len;
    node->value.data = ngx_pstrdup(ps->cf->pool, &tag->name);
    if (node->value.data == NULL) {
        return NULL;
    }

    last = node->value.data + node->value.len;

    n = 1;

    for (p = node->value.data; p < last; p++) {
        if (*p == '.') {
            n++;
        }
    }

    node->parts = ngx_palloc(ps->cf->pool, n * sizeof(ngx_str_t));
    if (node->parts == NULL) {
        return NULL;
    }

    node->nparts = n;

    part = node->parts;
    part->data = node->value.data;

    for (p = node->value.data; p < last; p++) {
        if (*p == '.') {
            part->len = p - part->data;
            part++;
            part->data = p + 1;
        }
    }

    part->len = last - part->data;

    return node;
}


static ngx_uint_t
ngx_http_retarget_tpl_line(ngx_http_retarget_tparse_t *ps, u_char *pos)
{
    u_char  *p;

    if (pos < ps->counted) {
        ps->counted = ps->start;
        ps->line = 1;
    }

    for (p = ps->counted; p < pos; p++) {
        if (*p == '\n') {
            ps->line++;
        }
    }

    ps->counted = pos;

    return ps->line;
}


/* the length of the tag quoted in error messages: at most one line */

static size_t
ngx_http_retarget_tpl_excerpt(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag)
{
    u_char  *p, *last;

    last = (tag->end != NULL) ? tag->end : ps->end;

    if (last - tag->start > NGX_HTTP_RETARGET_TPL_EXCERPT) {
        last = tag->start + NGX_HTTP_RETARGET_TPL_EXCERPT;
    }

    for (p = tag->start; p < last && *p != CR && *p != LF; p++) {
        /* void */
    }

    return p - tag->start;
}


static void
ngx_http_retarget_tpl_tag_error(ngx_http_retarget_tparse_t *ps,
    ngx_http_retarget_ttag_t *tag, char *what)
{
    ngx_http_retarget_tpl_error(ps, tag->start, "%s \"%*s\"", what,
                                ngx_http_retarget_tpl_excerpt(ps, tag),
                                tag->start);
}


static void ngx_cdecl
ngx_http_retarget_tpl_error(ngx_http_retarget_tparse_t *ps, u_char *pos,
    const char *fmt, ...)
{
    u_char   *p, errstr[NGX_MAX_CONF_ERRSTR];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(errstr, errstr + NGX_MAX_CONF_ERRSTR, fmt, args);
    va_end(args);

    ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                       "%*s in template \"%V\" line %ui",
                       p - errstr, errstr, ps->source,
                       ngx_http_retarget_tpl_line(ps, pos));
}


/*
 * Renders into memory from "pool"; out->len may be 0.  Only allocation
 * failures are errors.
 */

ngx_int_t
ngx_http_retarget_tpl_render(ngx_pool_t *pool, ngx_http_retarget_tpl_t *tpl,
    ngx_array_t *data, ngx_str_t *out)
{
    u_char  *p;
    size_t   len, n;

    len = ngx_http_retarget_tpl_walk(tpl, data, NULL);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "retarget template: rendering %ui nodes, %uz bytes",
                   tpl->nnodes, len);

    if (len == 0) {
        out->len = 0;
        out->data = (u_char *) "";
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    n = ngx_http_retarget_tpl_walk(tpl, data, p);

    if (n != len) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "retarget template: wrote %uz bytes, measured %uz",
                      n, len);
        return NGX_ERROR;
    }

    out->len = len;
    out->data = p;

    return NGX_OK;
}


/*
 * One pass over the nodes: with "dst" NULL it returns the length of the
 * output, else it writes the output to dst and returns its length.  The
 * stacks cannot overflow: the compiler bounds the nesting depth.
 */

static size_t
ngx_http_retarget_tpl_walk(ngx_http_retarget_tpl_t *tpl, ngx_array_t *data,
    u_char *dst)
{
    u_char                      *p;
    size_t                       len;
    ngx_uint_t                   i, nctx, depth;
    ngx_array_t                 *ctx[NGX_HTTP_RETARGET_TPL_MAX_DEPTH + 1];
    ngx_http_retarget_tnode_t   *node;
    ngx_http_retarget_tfield_t  *f;
    ngx_http_retarget_tframe_t  *fr, frames[NGX_HTTP_RETARGET_TPL_MAX_DEPTH];

    p = dst;
    len = 0;
    nctx = 0;
    depth = 0;

    if (data != NULL) {
        ctx[nctx++] = data;
    }

    i = 0;

    while (i < tpl->nnodes) {

        node = &tpl->nodes[i++];

        switch (node->type) {

        case ngx_http_retarget_tn_text:

            if (dst == NULL) {
                len += node->value.len;

            } else {
                p = ngx_cpymem(p, node->value.data, node->value.len);
            }

            break;

        case ngx_http_retarget_tn_var:
        case ngx_http_retarget_tn_raw:

            f = ngx_http_retarget_tpl_lookup(ctx, nctx, node);

            if (f == NULL
                || (f->type != ngx_http_retarget_tv_str
                    && f->type != ngx_http_retarget_tv_num
                    && f->type != ngx_http_retarget_tv_json))
            {
                break;
            }

            if (node->type == ngx_http_retarget_tn_raw
                && f->type == ngx_http_retarget_tv_json)
            {
                if (dst == NULL) {
                    len += f->str.len;

                } else {
                    p = ngx_cpymem(p, f->str.data, f->str.len);
                }

                break;
            }

            if (dst == NULL) {
                len += ngx_http_retarget_escape_html(NULL, f->str.data,
                                                     f->str.len);

            } else {
                p += ngx_http_retarget_escape_html(p, f->str.data,
                                                   f->str.len);
            }

            break;

        case ngx_http_retarget_tn_section:

            f = ngx_http_retarget_tpl_lookup(ctx, nctx, node);

            if (!ngx_http_retarget_tpl_truthy(f)) {
                i = node->jump + 1;
                break;
            }

            fr = &frames[depth++];

            if (f->type == ngx_http_retarget_tv_list
                || f->type == ngx_http_retarget_tv_obj)
            {
                fr->list = f->list;
                fr->next = 1;
                ctx[nctx++] = f->list->elts;

            } else {
                fr->list = NULL;
            }

            break;

        case ngx_http_retarget_tn_inverted:

            f = ngx_http_retarget_tpl_lookup(ctx, nctx, node);

            if (ngx_http_retarget_tpl_truthy(f)) {
                i = node->jump + 1;
                break;
            }

            fr = &frames[depth++];
            fr->list = NULL;

            break;

        default: /* ngx_http_retarget_tn_end */

            fr = &frames[depth - 1];

            if (fr->list != NULL) {

                if (fr->next < fr->list->nelts) {
                    ctx[nctx - 1] = (ngx_array_t *) fr->list->elts
                                    + fr->next++;
                    i = node->jump + 1;
                    break;
                }

                nctx--;
            }

            depth--;

            break;
        }
    }

    return (dst == NULL) ? len : (size_t) (p - dst);
}


/*
 * The first part of a name is looked up from the innermost context
 * outwards; each further part in the first item of the list found so far.
 */

static ngx_http_retarget_tfield_t *
ngx_http_retarget_tpl_lookup(ngx_array_t **ctx, ngx_uint_t nctx,
    ngx_http_retarget_tnode_t *node)
{
    ngx_uint_t                   i;
    ngx_http_retarget_tfield_t  *f;

    f = NULL;

    while (nctx != 0) {
        f = ngx_http_retarget_tpl_field(ctx[--nctx], &node->parts[0]);

        if (f != NULL) {
            break;
        }
    }

    for (i = 1; f != NULL && i < node->nparts; i++) {

        if ((f->type != ngx_http_retarget_tv_list
             && f->type != ngx_http_retarget_tv_obj)
            || f->list == NULL
            || f->list->nelts == 0)
        {
            return NULL;
        }

        f = ngx_http_retarget_tpl_field(f->list->elts, &node->parts[i]);
    }

    return f;
}


static ngx_http_retarget_tfield_t *
ngx_http_retarget_tpl_field(ngx_array_t *obj, ngx_str_t *name)
{
    ngx_uint_t                   i;
    ngx_http_retarget_tfield_t  *fields;

    fields = obj->elts;

    for (i = 0; i < obj->nelts; i++) {
        /* the first byte first: most names differ there */
        if (fields[i].name.len == name->len
            && fields[i].name.data[0] == name->data[0]
            && ngx_strncmp(fields[i].name.data, name->data, name->len) == 0)
        {
            return &fields[i];
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_retarget_tpl_truthy(ngx_http_retarget_tfield_t *f)
{
    if (f == NULL) {
        return 0;
    }

    switch (f->type) {

    case ngx_http_retarget_tv_bool:
        return f->flag ? 1 : 0;

    case ngx_http_retarget_tv_list:
    case ngx_http_retarget_tv_obj:
        return (f->list != NULL && f->list->nelts != 0) ? 1 : 0;

    default: /* str, num, json */
        return (f->str.len != 0) ? 1 : 0;
    }
}


/*
 * The bytes each byte adds when escaped: a table, and runs of bytes that
 * stay as they are copied at once (callgrind, bench (d): 13 K
 * instructions a page for the two passes with a switch per byte).
 */

static u_char  ngx_http_retarget_escape_extra[256] = {
    ['&'] = sizeof("&amp;") - 2,
    ['<'] = sizeof("&lt;") - 2,
    ['>'] = sizeof("&gt;") - 2,
    ['"'] = sizeof("&quot;") - 2,
    ['\''] = sizeof("&#39;") - 2
};


size_t
ngx_http_retarget_escape_html(u_char *dst, u_char *src, size_t size)
{
    u_char  *p, *last, *run;
    size_t   len;

    last = src + size;

    if (dst == NULL) {
        len = size;

        while (src < last) {
            len += ngx_http_retarget_escape_extra[*src++];
        }

        return len;
    }

    p = dst;

    while (src < last) {

        run = src;

        while (src < last && ngx_http_retarget_escape_extra[*src] == 0) {
            src++;
        }

        p = ngx_cpymem(p, run, src - run);

        if (src == last) {
            break;
        }

        switch (*src++) {

        case '&':
            p = ngx_cpymem(p, "&amp;", sizeof("&amp;") - 1);
            break;

        case '<':
            p = ngx_cpymem(p, "&lt;", sizeof("&lt;") - 1);
            break;

        case '>':
            p = ngx_cpymem(p, "&gt;", sizeof("&gt;") - 1);
            break;

        case '"':
            p = ngx_cpymem(p, "&quot;", sizeof("&quot;") - 1);
            break;

        default: /* '\'' */
            p = ngx_cpymem(p, "&#39;", sizeof("&#39;") - 1);
            break;
        }
    }

    return p - dst;
}


/* whether the template prints a variable: what it never shows, the
 * page does not compute */

ngx_uint_t
ngx_http_retarget_tpl_uses(ngx_http_retarget_tpl_t *tpl, char *name)
{
    size_t                      len;
    ngx_uint_t                  i;
    ngx_http_retarget_tnode_t  *node;

    len = ngx_strlen(name);

    for (i = 0; i < tpl->nnodes; i++) {
        node = &tpl->nodes[i];

        if (node->type != ngx_http_retarget_tn_text
            && node->nparts
            && node->parts[0].len == len
            && ngx_strncmp(node->parts[0].data, name, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* appends a field to a template object */

ngx_http_retarget_tfield_t *
ngx_http_retarget_tpl_field_add(ngx_array_t *obj, char *name,
    ngx_http_retarget_tv_type_e type, ngx_str_t *str, ngx_flag_t flag)
{
    ngx_http_retarget_tfield_t  *f;

    f = ngx_array_push(obj);
    if (f == NULL) {
        return NULL;
    }

    ngx_memzero(f, sizeof(ngx_http_retarget_tfield_t));

    f->name.len = ngx_strlen(name);
    f->name.data = (u_char *) name;
    f->type = type;
    f->flag = flag;

    if (str != NULL) {
        f->str = *str;
    }

    return f;
}
