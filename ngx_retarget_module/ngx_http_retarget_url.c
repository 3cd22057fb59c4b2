
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Where the module will send a visitor: the one check of a same-site
 * path, shared by the control endpoints' redirects, the banner's links
 * and images, the campaign's link= and the events' url values.
 */


#include "ngx_http_retarget_url.h"


/*
 * A path on this site: "/" followed by anything but a second "/" or a
 * "\" (browsers read both as the start of another host), with no control
 * character (header injection) anywhere.
 */

ngx_int_t
ngx_http_retarget_same_site_path(ngx_str_t *path)
{
    u_char  *p, *last;

    if (path->len == 0 || path->data[0] != '/') {
        return 0;
    }

    if (path->len > 1 && (path->data[1] == '/' || path->data[1] == '\\')) {
        return 0;
    }

    last = path->data + path->len;

    for (p = path->data; p < last; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') {
            return 0;
        }
    }

    return 1;
}
