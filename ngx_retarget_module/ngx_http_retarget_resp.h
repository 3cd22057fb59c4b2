
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * A command sent to hiredis as RESP formatted here
 */


#ifndef _NGX_HTTP_RETARGET_RESP_H_INCLUDED_
#define _NGX_HTTP_RETARGET_RESP_H_INCLUDED_


#include "ngx_http_retarget_module.h"

#include <hiredis/async.h>


int ngx_http_retarget_resp_command(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, int argc, const char **argv, const size_t *argvlen);


#endif /* _NGX_HTTP_RETARGET_RESP_H_INCLUDED_ */
