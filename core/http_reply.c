/*
 * http_reply.c — owns how fanoutd writes an HTTP answer, for every module
 * that answers one (the routes in http.c, POST /api/publish, the upgrade
 * gate, event streams): a whole response in one lws_write (http_send,
 * http_error), the end of its transaction (http_finish), and lws's
 * request-head limits with the 414 / 431 answers when a head reaches them.
 * Loop thread only. Each response is built in one malloc'd buffer freed
 * before the call returns; the token limit table is static, set once by
 * http_limits() at context creation.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "http"
#include "buf.h"
#include "conn.h"
#include "http_reply.h"
#include "protocol.h"
#include "refuse.h"

/* A request head: at most HTTP_HEAD_MAX bytes as lws stores it, each
 * header (value) under HTTP_HEADER_MAX, the URL and its query each under
 * HTTP_URL_MAX. */
#define HTTP_HEAD_MAX	16384
#define HTTP_HEADER_MAX 8192
#define HTTP_URL_MAX	8192
/* The URI tokens lws keeps (one per method, and the query). */
static const enum lws_token_indexes uri_tokens[] = {
    WSI_TOKEN_GET_URI,	  WSI_TOKEN_POST_URI, WSI_TOKEN_OPTIONS_URI,
    WSI_TOKEN_HEAD_URI,	  WSI_TOKEN_PUT_URI,  WSI_TOKEN_PATCH_URI,
    WSI_TOKEN_DELETE_URI, WSI_TOKEN_CONNECT,  WSI_TOKEN_HTTP_URI_ARGS,
};
static struct lws_token_limits token_limits;

static int is_uri_token(int t)
{
	for (size_t k = 0; k < sizeof(uri_tokens) / sizeof(uri_tokens[0]); k++)
		if ((int)uri_tokens[k] == t)
			return 1;
	return 0;
}

/*
 * lws 4.1.6 stores a request head in one buffer and closes the connection
 * without a word when it overflows. With a limit per header below the
 * buffer's size lws cuts an oversized header (or URL) at the limit instead
 * and goes on, so a header at its limit is one that was too long: 431 (414
 * for the URL or its query). Only a head whose unknown headers alone fill
 * HTTP_HEAD_MAX is still closed unanswered (see fanoutd(8)).
 */
void http_limits(struct lws_context_creation_info *info)
{
	for (int i = 0; i < WSI_TOKEN_COUNT; i++)
		token_limits.token_limit[i] = is_uri_token(i) ? HTTP_URL_MAX : HTTP_HEADER_MAX;
	info->token_limits = &token_limits;
	info->max_http_header_data2 = HTTP_HEAD_MAX;
}

int http_head_check(struct lws *wsi)
{
	for (int i = 0; i < WSI_TOKEN_COUNT; i++) {
		int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)i);
		if (n >= (is_uri_token(i) ? HTTP_URL_MAX : HTTP_HEADER_MAX))
			return is_uri_token(i) ? 414 : 431;
	}
	return 0;
}

int http_head_refuse(struct lws *wsi, int status)
{
	struct conn *c = conn_of(wsi);
	if (status == 414) {
		refuse(REFUSE_URL, c ? c->ip : "-", "URL longer than %d bytes: 414", HTTP_URL_MAX);
		return http_error(wsi, 414, "URL too long", HTTP_CLOSE);
	}
	refuse(REFUSE_HEADERS, c ? c->ip : "-", "a header longer than %d bytes: 431",
	       HTTP_HEADER_MAX);
	return http_error(wsi, 431, "request header too large", HTTP_CLOSE);
}

int http_send(struct lws *wsi, int status, const char *ctype, const void *body, size_t len,
	      unsigned flags, const char *const *extra)
{
	unsigned char hdr[1024], *p = hdr, *end = hdr + sizeof(hdr) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
					(const unsigned char *)"nosniff", 7, &p, end))
		return -1;
	if ((flags & HTTP_CLOSE) &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					 5, &p, end))
		return -1;
	for (; extra && extra[0]; extra += 2)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)extra[0],
						(const unsigned char *)extra[1],
						(int)strlen(extra[1]), &p, end))
			return -1;
	if (lws_finalize_http_header(wsi, &p, end))
		return -1;
	size_t hlen = (size_t)(p - hdr), n = hlen + ((flags & HTTP_HEAD) ? 0 : len);
	unsigned char *out = malloc(LWS_PRE + n);
	if (!out)
		return -1;
	memcpy(out + LWS_PRE, hdr, hlen);
	if (n > hlen)
		memcpy(out + LWS_PRE + hlen, body, len);
	int w = lws_write(wsi, out + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
	free(out);
	return w < 0 ? -1 : 0;
}

int http_error(struct lws *wsi, int status, const char *message, unsigned flags)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"error\":");
	json_append_string(&b, message, strlen(message), NULL);
	buf_puts(&b, "}\n");
	int rc = b.oom
		     ? -1
		     : http_send(wsi, status, "application/json", buf_data(&b), b.len, flags, NULL);
	buf_free(&b);
	return rc;
}

/*
 * (http.h) Before, a response waited for a WRITEABLE callback while lws
 * already parsed the next pipelined request into the same connection: the
 * first body was overwritten (leaked) and the next response came out
 * without one. lws also parses pipelined input into a finished request's
 * headers while a partly sent response waits, hence the close then.
 */
int http_finish(struct lws *wsi, int sent)
{
	if (sent < 0 || lws_partial_buffered(wsi))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}
