/* libsandbox - the REST client shared by the remote backends
 *
 * A SoupSession with a base URL and default headers (authentication), JSON
 * in and out, HTTP status -> SANDBOX_ERROR mapping that keeps the
 * provider's own message and names the endpoint, and retries with capped
 * exponential backoff that honours Retry-After.
 *
 * Retries: 429 is retried for every call (a rate-limited request was not
 * processed); 502/503/504 and connection failures only for calls marked
 * SANDBOX_REST_IDEMPOTENT.
 *
 * Not installed, not scanned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "sandbox-private.h"

G_BEGIN_DECLS

typedef enum {
  SANDBOX_REST_NONE       = 0,
  SANDBOX_REST_IDEMPOTENT = 1 << 0,  /* safe to send again after a 5xx or a dropped connection */
  SANDBOX_REST_RAW        = 1 << 1,  /* do not parse the body: _finish returns NULL, use _get_body */
} SandboxRestFlags;

#define SANDBOX_TYPE_REST_CLIENT (_sandbox_rest_client_get_type ())
G_DECLARE_FINAL_TYPE (SandboxRestClient, _sandbox_rest_client, SANDBOX, REST_CLIENT, GObject)

/* @provider names the service in messages ("Daytona", "E2B"). */
SandboxRestClient *_sandbox_rest_client_new            (const char         *provider,
                                                         const char         *base_url);
const char        *_sandbox_rest_client_get_provider   (SandboxRestClient  *self);
const char        *_sandbox_rest_client_get_base_url   (SandboxRestClient  *self);
SoupSession       *_sandbox_rest_client_get_session    (SandboxRestClient  *self);
/* A default header sent with every request; NULL removes it. Values are never logged. */
void               _sandbox_rest_client_set_header     (SandboxRestClient  *self,
                                                         const char         *name,
                                                         const char         *value);
/* Appended to authentication errors: what to check, e.g. "Check DAYTONA_API_KEY ...". */
void               _sandbox_rest_client_set_auth_hint  (SandboxRestClient  *self,
                                                         const char         *hint);
void               _sandbox_rest_client_set_retry      (SandboxRestClient  *self,
                                                         guint               max_retries,
                                                         guint               base_delay_ms,
                                                         guint               max_delay_ms);

/* A message for @path (relative to the base URL, or an absolute URL) with
 * the default headers applied, for streaming requests made by hand. */
SoupMessage       *_sandbox_rest_client_new_message    (SandboxRestClient  *self,
                                                         const char         *method,
                                                         const char         *path);

/* One JSON call. @body may be NULL. On success _finish returns the parsed
 * body (NULL for an empty body, e.g. 204) and @status; on failure a
 * SANDBOX_ERROR (or G_IO_ERROR_CANCELLED). */
void               _sandbox_rest_client_call_async     (SandboxRestClient  *self,
                                                         const char         *method,
                                                         const char         *path,
                                                         JsonNode           *body,
                                                         SandboxRestFlags    flags,
                                                         GCancellable       *cancellable,
                                                         GAsyncReadyCallback callback,
                                                         gpointer            user_data);
JsonNode          *_sandbox_rest_client_call_finish    (SandboxRestClient  *self,
                                                         GAsyncResult       *result,
                                                         guint              *status,
                                                         GError            **error);
/* The raw body of a finished call (after _finish), or NULL. */
GBytes            *_sandbox_rest_call_get_body         (GAsyncResult       *result);
/* The message of the last attempt of a finished call (its response
 * headers), or NULL. */
SoupMessage       *_sandbox_rest_call_get_message      (GAsyncResult       *result);

/* TLS certificate verification is on unless SANDBOX_TLS_INSECURE=1; then
 * every session set up here accepts any certificate (each REST client says
 * so with a g_warning when it is created). Call on every session talking
 * to a provider. */
gboolean           _sandbox_rest_tls_insecure          (void);
void               _sandbox_rest_session_setup_tls     (SoupSession        *session);

/* The I/O timeout (s) of every session talking to a provider: 120, or
 * SANDBOX_HTTP_TIMEOUT (tests use 1 to stay fast). */
guint              _sandbox_rest_timeout_s             (void);
/* The largest reply (bytes) a JSON call reads into memory: 64 MiB, or
 * SANDBOX_HTTP_MAX_REPLY; larger replies fail with SANDBOX_ERROR_PROTOCOL. */
gsize              _sandbox_rest_max_reply             (void);

/* Helpers for requests made by hand. */
GError            *_sandbox_rest_error_new             (const char         *provider,
                                                         const char         *method,
                                                         const char         *endpoint,
                                                         guint               status,
                                                         GBytes             *body,
                                                         const char         *auth_hint);
GError            *_sandbox_rest_transport_error_new   (const char         *provider,
                                                         const char         *method,
                                                         const char         *endpoint,
                                                         const GError       *error);
JsonNode          *_sandbox_rest_parse_json            (const char         *provider,
                                                         const char         *endpoint,
                                                         GBytes             *body,
                                                         GError            **error);
gboolean          _sandbox_rest_status_is_retryable    (guint               status,
                                                         SandboxRestFlags    flags);
/* The client's retry policy for a request made by hand: TRUE when the
 * attempt number @attempt (0 = first), which failed with the transport
 * @error or got @msg's status, should be sent again after *@delay_ms. */
gboolean          _sandbox_rest_client_should_retry    (SandboxRestClient  *self,
                                                         SandboxRestFlags    flags,
                                                         guint               attempt,
                                                         SoupMessage        *msg,
                                                         const GError       *error,
                                                         guint              *delay_ms);
guint             _sandbox_rest_retry_delay_ms         (SoupMessageHeaders *headers,
                                                         guint               attempt,
                                                         guint               base_delay_ms,
                                                         guint               max_delay_ms);

/* Runs @func (@data) on @context, from an idle source, whenever @caller is
 * cancelled, in whatever thread: for work (libsoup objects, a task's end)
 * that belongs to @context, and never inside the "cancelled" emission
 * itself. Returns the handler id; disconnect with g_cancellable_disconnect
 * (@caller, id), which frees @data with @notify once no idle holds it. */
gulong             _sandbox_cancellable_connect_in (GCancellable   *caller,
                                                    GMainContext   *context,
                                                    GSourceFunc     func,
                                                    gpointer        data,
                                                    GDestroyNotify  notify);

G_END_DECLS
