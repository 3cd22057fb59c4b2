
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the template engine (ngx_http_retarget_template.c).
 *
 * The input is used three ways:
 *
 *   - escaped by ngx_http_retarget_escape_html(): the measuring pass
 *     must agree with the writing pass (the output buffer is exactly the
 *     measured size, so AddressSanitizer catches a longer write), the
 *     output must contain no character the escape is there to remove, and
 *     decoding it must give the input back;
 *
 *   - compiled as a template: a failure must be reported, with a line
 *     number inside the template, and a success must not be; the compiled
 *     template must not point into the input (which is freed at once);
 *
 *   - the compiled template rendered with a fixed data object (below) and
 *     with none: rendering must succeed (it fails when the writing pass
 *     disagrees with the measuring one), give the same output twice, never
 *     print a string value unescaped, and give a template without "{{"
 *     back unchanged.
 */


/* nginx's headers first: they define _GNU_SOURCE (memmem) */
#include "fuzz_stubs.h"
#include "ngx_http_retarget_template.h"

#include <stdio.h>
#include <stdlib.h>


#define FUZZ_SOURCE  "fuzz input"


typedef ngx_http_retarget_tfield_t  fuzz_field_t;


/*
 * The string values carry the bytes 0x01-0x05, each right before one of
 * the five characters escape_html() replaces.  When the template itself
 * has none of these bytes, every one of them in the output comes from a
 * value, and must be followed by the entity, not by the raw character.
 */

static const char  *fuzz_entity[] = {
    NULL, "&lt;", "&quot;", "&#39;", "&amp;", "&gt;"
};

#define FUZZ_MARKED  "\x01<b \x02\"x\x02\" \x03'y\x03'\x05>\x04&"


static void fuzz_escapes(const uint8_t *data, size_t size);
static void fuzz_template(const uint8_t *data, size_t size);
static void fuzz_render(ngx_http_retarget_tpl_t *tpl, ngx_array_t *values,
    const uint8_t *data, size_t size, ngx_str_t *out);
static ngx_array_t *fuzz_data(void);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_escapes(data, size);
    fuzz_template(data, size);

    fuzz_reset();

    return 0;
}


static u_char *
fuzz_copy(const uint8_t *data, size_t size)
{
    u_char  *p;

    /* an exact-size heap copy: libFuzzer's buffer may have slack */

    p = malloc(size ? size : 1);
    if (p == NULL) {
        fuzz_fail("out of memory");
    }

    if (size) {
        memcpy(p, data, size);
    }

    return p;
}


static void
fuzz_escapes(const uint8_t *data, size_t size)
{
    u_char  *src, *dst, *dec, *p, *last, *d;
    size_t   n, m, k;

    src = fuzz_copy(data, size);

    /* HTML */

    n = ngx_http_retarget_escape_html(NULL, src, size);
    dst = malloc(n ? n : 1);
    m = ngx_http_retarget_escape_html(dst, src, size);

    if (m != n) {
        fuzz_fail("escape_html: measured %zu, wrote %zu", n, m);
    }

    dec = malloc(m ? m : 1);
    d = dec;
    last = dst + m;

    for (p = dst; p < last; p++) {

        switch (*p) {

        case '<':
        case '>':
        case '"':
        case '\'':
            fuzz_fail("escape_html: raw '%c' at offset %zu", *p,
                      (size_t) (p - dst));

        case '&':
            for (k = 1; k < 6; k++) {
                n = strlen(fuzz_entity[k]);

                if ((size_t) (last - p) >= n
                    && memcmp(p, fuzz_entity[k], n) == 0)
                {
                    break;
                }
            }

            if (k == 6) {
                fuzz_fail("escape_html: bare '&' at offset %zu",
                          (size_t) (p - dst));
            }

            *d++ = "?<\"'&>"[k];
            p += n - 1;
            break;

        default:
            *d++ = *p;
        }
    }

    if ((size_t) (d - dec) != size || memcmp(dec, src, size) != 0) {
        fuzz_fail("escape_html: the output does not decode to the input");
    }

    free(dec);
    free(dst);

    free(src);
}


static void
fuzz_template(const uint8_t *data, size_t size)
{
    u_char                   *text_copy, *p, *last;
    size_t                    i;
    ngx_str_t                 text, source, out1, out2;
    ngx_uint_t                lines, line;
    ngx_array_t              *values;
    ngx_http_retarget_tpl_t  *tpl;
    static const char         at[] = " in template \"" FUZZ_SOURCE "\" line ";

    text_copy = fuzz_copy(data, size);

    text.data = text_copy;
    text.len = size;
    ngx_str_set(&source, FUZZ_SOURCE);

    tpl = ngx_http_retarget_tpl_compile(fuzz_conf(), &text, &source);

    /* the compiled template must not point into the text */
    memset(text_copy, 0xa5, size);
    free(text_copy);

    if (tpl == NULL) {
        if (fuzz_nerrors == 0) {
            fuzz_fail("compile failed without an error message");
        }

        /* the message ends in "... in template "<source>" line <n>" */

        last = (u_char *) fuzz_last_error + fuzz_last_error_len;

        for (p = last; p > (u_char *) fuzz_last_error; p--) {
            if (p[-1] < '0' || p[-1] > '9') {
                break;
            }
        }

        if (p == last
            || (size_t) (p - (u_char *) fuzz_last_error) < sizeof(at) - 1
            || memcmp(p - (sizeof(at) - 1), at, sizeof(at) - 1) != 0)
        {
            fuzz_fail("an error message without the place: \"%s\"",
                      fuzz_last_error);
        }

        for (line = 0; p < last; p++) {
            line = line * 10 + (*p - '0');
        }

        lines = 1;

        for (i = 0; i < size; i++) {
            if (data[i] == '\n') {
                lines++;
            }
        }

        if (line == 0 || line > lines) {
            fuzz_fail("error at line %lu of %lu: \"%s\"",
                      (unsigned long) line, (unsigned long) lines,
                      fuzz_last_error);
        }

        return;
    }

    if (fuzz_nerrors != 0) {
        fuzz_fail("compiled, but reported \"%s\"", fuzz_last_error);
    }

    values = fuzz_data();

    fuzz_render(tpl, values, data, size, &out1);
    fuzz_render(tpl, values, data, size, &out2);

    if (out1.len != out2.len || memcmp(out1.data, out2.data, out1.len) != 0) {
        fuzz_fail("two renderings differ");
    }

    fuzz_render(tpl, NULL, data, size, &out1);
}


static void
fuzz_render(ngx_http_retarget_tpl_t *tpl, ngx_array_t *values,
    const uint8_t *data, size_t size, ngx_str_t *out)
{
    u_char      *p, *last;
    size_t       i, n;
    ngx_int_t    rc;
    ngx_uint_t   marked;

    rc = ngx_http_retarget_tpl_render(fuzz_pool(), tpl, values, out);

    if (rc != NGX_OK) {
        fuzz_fail("render failed: \"%s\"", fuzz_last_error);
    }

    if (out->len != 0 && out->data == NULL) {
        fuzz_fail("render: NULL output");
    }

    /* no tag: the text comes out as it went in */

    if (memmem(data, size, "{{", 2) == NULL) {
        if (out->len != size || memcmp(out->data, data, size) != 0) {
            fuzz_fail("a template without tags did not render as itself");
        }

        return;
    }

    /* no string value printed unescaped */

    marked = 0;

    for (i = 0; i < size; i++) {
        if (data[i] >= 0x01 && data[i] <= 0x05) {
            marked = 1;
            break;
        }
    }

    if (marked) {
        return;
    }

    last = out->data + out->len;

    for (p = out->data; p < last; p++) {
        if (*p < 0x01 || *p > 0x05) {
            continue;
        }

        n = strlen(fuzz_entity[*p]);

        if ((size_t) (last - p) <= n
            || memcmp(p + 1, fuzz_entity[*p], n) != 0)
        {
            fuzz_fail("render: a value printed unescaped at offset %zu",
                      (size_t) (p - out->data));
        }
    }
}


/*
 * The data object, rebuilt for each input (fuzz_reset() frees it):
 *
 *   text       string, FUZZ_MARKED
 *   name       string "<Notebook & Pen>"
 *   yes, optin true
 *   no         false
 *   empty      string ""
 *   data_json  JSON {"items":[{"sku":"A1"}],"n":2}, for {{{data_json}}}
 *   items      list of 3 objects; each has "name" and "first" (true in
 *              the first only) and a list "tags" of objects with "tag";
 *              the second has an empty "tags", the third a string
 *              "data_json" ({{{data_json}}} must escape it)
 *   none       empty list
 *   count      number "12"
 *   gift       optional object, with a string "code", FUZZ_MARKED
 *   nogift     optional object, none
 *
 * Every list item defines "items" and "tags" as false: without that a
 * section nested in itself ({{#items}}{{#items}}...) would find the outer
 * list again at each level, and 32 levels of 3 items never finish.
 */

static fuzz_field_t *
fuzz_field(ngx_array_t *obj, const char *name, ngx_http_retarget_tv_type_e type)
{
    fuzz_field_t  *f;

    f = ngx_array_push(obj);
    ngx_memzero(f, sizeof(fuzz_field_t));

    f->name.data = (u_char *) name;
    f->name.len = strlen(name);
    f->type = type;

    return f;
}


static void
fuzz_str(ngx_array_t *obj, const char *name, const char *value)
{
    fuzz_field_t  *f;

    f = fuzz_field(obj, name, ngx_http_retarget_tv_str);
    f->str.data = (u_char *) value;
    f->str.len = strlen(value);
}


static void
fuzz_bool(ngx_array_t *obj, const char *name, ngx_flag_t value)
{
    fuzz_field(obj, name, ngx_http_retarget_tv_bool)->flag = value;
}


static ngx_array_t *
fuzz_list(ngx_array_t *obj, const char *name)
{
    fuzz_field_t  *f;

    f = fuzz_field(obj, name, ngx_http_retarget_tv_list);
    f->list = ngx_array_create(fuzz_pool(), 1, sizeof(ngx_array_t));

    return f->list;
}


static ngx_array_t *
fuzz_obj(ngx_array_t *obj, const char *name)
{
    fuzz_field_t  *f;

    f = fuzz_field(obj, name, ngx_http_retarget_tv_obj);
    f->list = ngx_array_create(fuzz_pool(), 1, sizeof(ngx_array_t));

    return f->list;
}


static ngx_array_t *
fuzz_item(ngx_array_t *list)
{
    ngx_array_t  *obj;

    obj = ngx_array_push(list);

    if (ngx_array_init(obj, fuzz_pool(), 2, sizeof(fuzz_field_t)) != NGX_OK) {
        fuzz_fail("out of memory");
    }

    fuzz_bool(obj, "items", 0);
    fuzz_bool(obj, "tags", 0);

    return obj;
}


static ngx_array_t *
fuzz_data(void)
{
    fuzz_field_t  *f;
    ngx_array_t   *data, *items, *tags, *item;

    data = ngx_array_create(fuzz_pool(), 2, sizeof(fuzz_field_t));

    fuzz_str(data, "text", FUZZ_MARKED);
    fuzz_str(data, "name", "<Notebook & Pen>");
    fuzz_bool(data, "yes", 1);
    fuzz_bool(data, "optin", 1);
    fuzz_bool(data, "no", 0);
    fuzz_str(data, "empty", "");

    f = fuzz_field(data, "data_json", ngx_http_retarget_tv_json);
    ngx_str_set(&f->str, "{\"items\":[{\"sku\":\"A1\"}],\"n\":2}");

    items = fuzz_list(data, "items");

    item = fuzz_item(items);
    fuzz_str(item, "name", "first " FUZZ_MARKED);
    fuzz_bool(item, "first", 1);
    tags = fuzz_list(item, "tags");
    fuzz_str(fuzz_item(tags), "tag", "new " FUZZ_MARKED);
    fuzz_str(fuzz_item(tags), "tag", "sale");

    item = fuzz_item(items);
    fuzz_str(item, "name", "second");
    fuzz_bool(item, "first", 0);
    fuzz_list(item, "tags");

    item = fuzz_item(items);
    fuzz_str(item, "name", "");
    fuzz_str(item, "data_json", FUZZ_MARKED);

    fuzz_list(data, "none");

    f = fuzz_field(data, "count", ngx_http_retarget_tv_num);
    ngx_str_set(&f->str, "12");

    item = fuzz_item(fuzz_obj(data, "gift"));
    fuzz_str(item, "code", "gift " FUZZ_MARKED);

    fuzz_field(data, "nogift", ngx_http_retarget_tv_obj);

    return data;
}
