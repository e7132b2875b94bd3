/* libsandbox - the REST client shared by the remote backends
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-rest-private.h"

#define DEFAULT_MAX_RETRIES   4
#define DEFAULT_BASE_DELAY_MS 250
#define DEFAULT_MAX_DELAY_MS  4000
/* A server may ask for more than our cap; we wait, up to this. */
#define RETRY_AFTER_LIMIT_MS  30000
/* The I/O timeout of the session (s); SANDBOX_HTTP_TIMEOUT overrides it. */
#define DEFAULT_TIMEOUT_S     120
/* The largest reply read into memory; SANDBOX_HTTP_MAX_REPLY overrides it. */
#define DEFAULT_MAX_REPLY     (64u * 1024u * 1024u)
#define READ_CHUNK            65536
/* Connections a session opens at the same time, to one host or in all:
 * as many as requests are under way (each command's output is one). */
#define MAX_CONNECTIONS       1024
/* How long a session's kept-alive connections may go unused before the
 * next request closes them and makes a new one (s); a load balancer may
 * drop an idle connection without a word. SANDBOX_HTTP_IDLE_TIMEOUT
 * overrides it. */
#define DEFAULT_IDLE_TIMEOUT_S 60

struct _SandboxRestClient
{
  GObject      parent_instance;

  char        *provider;
  char        *base_url;
  char        *auth_hint;
  char        *user_agent;
  /* One SoupSession per thread-default main context (GMainContext ->
   * SoupSession, both referenced): libsoup runs a message, and keeps its
   * connection, on the context it was sent from, so a kept-alive
   * connection must only be reused from the same context. The synchronous
   * API runs on a small per-thread pool of contexts (sandbox-util.c), so
   * this table stays small and connections are reused across calls. */
  GMutex       lock;
  GHashTable  *sessions;
  GHashTable  *headers;
  guint        max_retries;
  guint        base_delay_ms;
  guint        max_delay_ms;
  guint        idle_timeout_s;
};

/* What a session is used for, kept on it: its requests under way, and
 * since when none is (0: never used, or one is under way). */
typedef struct
{
  gint   in_flight;
  gint64 idle_since;
} SessionUse;

#define SESSION_USE "sandbox-rest-session-use"

G_DEFINE_FINAL_TYPE (SandboxRestClient, _sandbox_rest_client, G_TYPE_OBJECT)

static void
_sandbox_rest_client_finalize (GObject *object)
{
  SandboxRestClient *self = SANDBOX_REST_CLIENT (object);

  g_clear_pointer (&self->provider, g_free);
  g_clear_pointer (&self->base_url, g_free);
  g_clear_pointer (&self->auth_hint, g_free);
  g_clear_pointer (&self->user_agent, g_free);
  g_clear_pointer (&self->sessions, g_hash_table_unref);
  g_mutex_clear (&self->lock);
  g_clear_pointer (&self->headers, g_hash_table_unref);

  G_OBJECT_CLASS (_sandbox_rest_client_parent_class)->finalize (object);
}

static void
_sandbox_rest_client_class_init (SandboxRestClientClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = _sandbox_rest_client_finalize;
}

static void
_sandbox_rest_client_init (SandboxRestClient *self)
{
  self->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_mutex_init (&self->lock);
  self->sessions = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                          (GDestroyNotify) g_main_context_unref, g_object_unref);
  self->max_retries = DEFAULT_MAX_RETRIES;
  self->base_delay_ms = DEFAULT_BASE_DELAY_MS;
  self->max_delay_ms = DEFAULT_MAX_DELAY_MS;
  self->idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S;
}

static guint64 env_uint (const char *name, guint64 fallback);

/* Tests shorten the backoff (SANDBOX_HTTP_RETRY_BASE_MS,
 * SANDBOX_HTTP_RETRY_MAX_MS) to stay fast; Retry-After is still honoured.
 * And the idle timeout of connections (SANDBOX_HTTP_IDLE_TIMEOUT). */
static void
apply_retry_env (SandboxRestClient *self)
{
  self->base_delay_ms = (guint) env_uint ("SANDBOX_HTTP_RETRY_BASE_MS", DEFAULT_BASE_DELAY_MS);
  self->max_delay_ms = MAX (self->base_delay_ms,
                            (guint) env_uint ("SANDBOX_HTTP_RETRY_MAX_MS", DEFAULT_MAX_DELAY_MS));
  self->idle_timeout_s = (guint) env_uint ("SANDBOX_HTTP_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT_S);
}

static guint64
env_uint (const char *name,
          guint64     fallback)
{
  const char *value = g_getenv (name);
  guint64 parsed;

  if (value != NULL && g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT, &parsed, NULL))
    return parsed;
  return fallback;
}

guint
_sandbox_rest_timeout_s (void)
{
  return (guint) env_uint ("SANDBOX_HTTP_TIMEOUT", DEFAULT_TIMEOUT_S);
}

gsize
_sandbox_rest_max_reply (void)
{
  return (gsize) env_uint ("SANDBOX_HTTP_MAX_REPLY", DEFAULT_MAX_REPLY);
}

SandboxRestClient *
_sandbox_rest_client_new (const char *provider,
                          const char *base_url)
{
  SandboxRestClient *self = g_object_new (SANDBOX_TYPE_REST_CLIENT, NULL);

  self->provider = g_strdup (provider);
  /* Without a trailing slash, relative paths would replace the last segment. */
  self->base_url = g_str_has_suffix (base_url, "/") ? g_strdup (base_url)
                                                    : g_strconcat (base_url, "/", NULL);
  self->user_agent = g_strdup_printf ("libsandbox/%s", SANDBOX_VERSION_S);
  apply_retry_env (self);
  /* Warn once per client; each per-context session skips verification below. */
  if (_sandbox_rest_tls_insecure ())
    g_warning ("SANDBOX_TLS_INSECURE=1: TLS certificates of %s are NOT verified; "
               "anyone on the network path can read and change this traffic, API key included. "
               "Unset SANDBOX_TLS_INSECURE outside tests.", provider);
  return self;
}

const char *
_sandbox_rest_client_get_provider (SandboxRestClient *self)
{
  return self->provider;
}

const char *
_sandbox_rest_client_get_base_url (SandboxRestClient *self)
{
  return self->base_url;
}

static void
session_request_queued (SoupSession *session,
                        SoupMessage *msg,
                        SessionUse  *use)
{
  g_atomic_int_inc (&use->in_flight);
}

static void
session_request_unqueued (SoupSession *session,
                          SoupMessage *msg,
                          SessionUse  *use)
{
  if (g_atomic_int_dec_and_test (&use->in_flight))
    use->idle_since = g_get_monotonic_time ();
}

/* Before a request on @session (from its context): when nothing has been
 * under way on it for the idle timeout, its kept-alive connections are
 * closed, so that the request makes a new one. This stands for libsoup's
 * idle timer, which is off (see session_for_context): here nothing can
 * take a connection that is being closed. */
static void
close_idle_connections (SandboxRestClient *self,
                        SoupSession       *session)
{
  SessionUse *use = g_object_get_data (G_OBJECT (session), SESSION_USE);

  if (g_atomic_int_get (&use->in_flight) == 0 && use->idle_since != 0 &&
      g_get_monotonic_time () - use->idle_since >= (gint64) self->idle_timeout_s * G_USEC_PER_SEC)
    {
      use->idle_since = 0;
      /* Nothing is queued: this only closes the idle connections. */
      soup_session_abort (session);
    }
}

/* The session for the calling thread's thread-default main context,
 * created there on first use: every message sent through it, and every
 * connection it keeps alive, belongs to that context. Called before each
 * request: connections unused for the idle timeout are closed first. */
static SoupSession *
session_for_context (SandboxRestClient *self,
                     GMainContext      *context)
{
  SoupSession *session;

  g_mutex_lock (&self->lock);
  session = g_hash_table_lookup (self->sessions, context);
  if (session == NULL)
    {
      g_autoptr(GMainContext) current = g_main_context_ref_thread_default ();
      /* A session binds to the thread-default context it is made in. */
      gboolean push = current != context;

      if (push)
        g_main_context_push_thread_default (context);
      /* No idle timer of libsoup's: it closes a kept-alive connection
       * from the context's main loop, and a context that was not iterated
       * for longer than the timeout (the pooled context of synchronous
       * calls between two calls, a caller's loop that sat still) ran the
       * expired timer in the same iteration as the next request, which
       * had taken that connection: the request was neither sent nor
       * failed, and its call waited for ever (libsoup 3.2). The next
       * request closes connections idle for that long instead
       * (close_idle_connections); one the server closed in the meantime
       * is seen as closed when a request looks for one.
       *
       * No small limit on connections: libsoup's default of two per host
       * held any further request to the host until one of two open ones
       * ended, and a command's output streams in for as long as the
       * command runs: a third command's start, a terminal's input or a
       * destroy behind two running commands waited for ever. */
      session = soup_session_new_with_options ("user-agent", self->user_agent,
                                               "timeout", _sandbox_rest_timeout_s (),
                                               "idle-timeout", 0,
                                               "max-conns", MAX_CONNECTIONS,
                                               "max-conns-per-host", MAX_CONNECTIONS,
                                               NULL);
      _sandbox_rest_session_setup_tls (session);   /* warned in _new */
      {
        SessionUse *use = g_new0 (SessionUse, 1);

        g_object_set_data_full (G_OBJECT (session), SESSION_USE, use, g_free);
        g_signal_connect (session, "request-queued", G_CALLBACK (session_request_queued), use);
        g_signal_connect (session, "request-unqueued", G_CALLBACK (session_request_unqueued), use);
      }
      if (push)
        g_main_context_pop_thread_default (context);
      g_hash_table_insert (self->sessions, g_main_context_ref (context), session);
    }
  g_mutex_unlock (&self->lock);
  close_idle_connections (self, session);
  return session;
}

SoupSession *
_sandbox_rest_client_get_session (SandboxRestClient *self)
{
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();

  return session_for_context (self, context);
}

void
_sandbox_rest_client_set_header (SandboxRestClient *self,
                                 const char        *name,
                                 const char        *value)
{
  if (value == NULL)
    g_hash_table_remove (self->headers, name);
  else
    g_hash_table_insert (self->headers, g_strdup (name), g_strdup (value));
}

void
_sandbox_rest_client_set_auth_hint (SandboxRestClient *self,
                                    const char        *hint)
{
  g_free (self->auth_hint);
  self->auth_hint = g_strdup (hint);
}

void
_sandbox_rest_client_set_retry (SandboxRestClient *self,
                                guint              max_retries,
                                guint              base_delay_ms,
                                guint              max_delay_ms)
{
  self->max_retries = max_retries;
  self->base_delay_ms = base_delay_ms;
  self->max_delay_ms = MAX (base_delay_ms, max_delay_ms);
}

static char *
resolve_url (SandboxRestClient *self,
             const char        *path)
{
  if (g_str_has_prefix (path, "http://") || g_str_has_prefix (path, "https://"))
    return g_strdup (path);
  while (*path == '/')
    path++;
  return g_strconcat (self->base_url, path, NULL);
}

SoupMessage *
_sandbox_rest_client_new_message (SandboxRestClient *self,
                                  const char        *method,
                                  const char        *path)
{
  g_autofree char *url = resolve_url (self, path);
  SoupMessage *msg = soup_message_new (method, url);
  SoupMessageHeaders *headers;
  GHashTableIter iter;
  gpointer key, value;

  if (msg == NULL)
    return NULL;
  headers = soup_message_get_request_headers (msg);
  g_hash_table_iter_init (&iter, self->headers);
  while (g_hash_table_iter_next (&iter, &key, &value))
    soup_message_headers_replace (headers, key, value);
  return msg;
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

GError *
_sandbox_rest_error_new (const char *provider,
                         const char *method,
                         const char *endpoint,
                         guint       status,
                         GBytes     *body,
                         const char *auth_hint)
{
  return sandbox_error_new_for_http_status (provider, method, endpoint, status, soup_status_get_phrase (status),
                                            body, auth_hint);
}

GError *
_sandbox_rest_transport_error_new (const char   *provider,
                                   const char   *method,
                                   const char   *endpoint,
                                   const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return g_error_copy (error);
  if (error->domain == G_TLS_ERROR)
    return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                        _("TLS certificate verification failed for %s (%s %s): %s. "
                          "Check the API URL; if the server uses a private certificate authority, "
                          "add it to the system’s trusted certificates. To turn verification off "
                          "(insecure, for test servers only) set SANDBOX_TLS_INSECURE=1."),
                        provider, method, endpoint, error->message);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT,
                        _("%s did not answer %s %s in time: %s. Retry later."),
                        provider, method, endpoint, error->message);
  return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                      _("Cannot reach %s for %s %s: %s. Check the API URL and the network."),
                      provider, method, endpoint, error->message);
}

JsonNode *
_sandbox_rest_parse_json (const char  *provider,
                          const char  *endpoint,
                          GBytes      *body,
                          GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local_error = NULL;
  const char *data;
  gsize len;

  if (body == NULL || g_bytes_get_size (body) == 0)
    return NULL;
  data = g_bytes_get_data (body, &len);
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error) ||
      json_parser_get_root (parser) == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("%s sent a reply to %s that is not valid JSON (%s). This is a problem "
                     "on the provider's side or a proxy in between; retry later."),
                   provider, endpoint, local_error ? local_error->message : _("empty document"));
      return NULL;
    }
  return json_node_ref (json_parser_get_root (parser));
}

/* ------------------------------------------------------------------ */
/* Retries                                                             */

gboolean
_sandbox_rest_status_is_retryable (guint            status,
                                   SandboxRestFlags flags)
{
  if (status == 429)
    return TRUE;
  if (flags & SANDBOX_REST_IDEMPOTENT)
    return status == 502 || status == 503 || status == 504;
  return FALSE;
}

static gint64
parse_retry_after (const char *value)
{
  g_autoptr(GDateTime) when = NULL;
  char *end = NULL;
  gint64 seconds;

  if (value == NULL)
    return -1;
  seconds = g_ascii_strtoll (value, &end, 10);
  if (end != value && *end == '\0' && seconds >= 0)
    return seconds * 1000;
  when = soup_date_time_new_from_http_string (value);
  if (when != NULL)
    {
      g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
      return MAX (0, g_date_time_difference (when, now) / 1000);
    }
  return -1;
}

guint
_sandbox_rest_retry_delay_ms (SoupMessageHeaders *headers,
                              guint               attempt,
                              guint               base_delay_ms,
                              guint               max_delay_ms)
{
  gint64 asked = -1;
  guint64 delay;

  if (headers != NULL)
    {
      SoupMessageHeadersIter iter;
      const char *name, *value;

      /* Retry-After, or Daytona's per-throttler Retry-After-<name>: the longest. */
      soup_message_headers_iter_init (&iter, headers);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        if (g_ascii_strncasecmp (name, "Retry-After", 11) == 0)
          asked = MAX (asked, parse_retry_after (value));
    }
  if (asked >= 0)
    return (guint) MIN (asked, RETRY_AFTER_LIMIT_MS);

  delay = (guint64) base_delay_ms << MIN (attempt, 16u);
  delay = MIN (delay, max_delay_ms);
  /* +-20% jitter, so that many clients do not retry in step. */
  return (guint) (delay * g_random_double_range (0.8, 1.2));
}

/* The retry policy of the client, for requests made by hand: should an
 * attempt that failed with @error (transport) or got @status be sent again,
 * and after how long? */
gboolean
_sandbox_rest_client_should_retry (SandboxRestClient *self,
                                   SandboxRestFlags   flags,
                                   guint              attempt,
                                   SoupMessage       *msg,
                                   const GError      *error,
                                   guint             *delay_ms)
{
  SoupMessageHeaders *headers = NULL;

  if (attempt >= self->max_retries)
    return FALSE;
  if (error != NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || !(flags & SANDBOX_REST_IDEMPOTENT))
        return FALSE;
    }
  else if (msg == NULL || !_sandbox_rest_status_is_retryable (soup_message_get_status (msg), flags))
    return FALSE;
  else
    headers = soup_message_get_response_headers (msg);
  if (delay_ms != NULL)
    *delay_ms = _sandbox_rest_retry_delay_ms (headers, attempt, self->base_delay_ms, self->max_delay_ms);
  g_debug ("%s: retrying a request made by hand (attempt %u of %u)", self->provider, attempt + 1,
           self->max_retries);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

typedef struct
{
  char             *method;
  char             *path;
  GBytes           *request;
  SandboxRestFlags  flags;
  guint             attempt;
  guint             status;
  GBytes           *response;
  SoupMessage      *msg;
  GInputStream     *stream;   /* the reply being read */
  GByteArray       *buffer;   /* what was read of it */
  GCancellable     *caller;   /* the caller's cancellable, or NULL */
  gulong            caller_id;
  GCancellable     *inner;    /* what libsoup sees: cancelled on the call's context */
} CallData;

static void
call_data_free (CallData *data)
{
  g_free (data->method);
  g_free (data->path);
  g_clear_pointer (&data->request, g_bytes_unref);
  g_clear_pointer (&data->response, g_bytes_unref);
  g_clear_object (&data->msg);
  g_clear_object (&data->stream);
  g_clear_pointer (&data->buffer, g_byte_array_unref);
  if (data->caller_id != 0)
    g_cancellable_disconnect (data->caller, data->caller_id);
  g_clear_object (&data->caller);
  g_clear_object (&data->inner);
  g_free (data);
}

typedef struct
{
  GMainContext   *context;
  GSourceFunc     func;
  gpointer        data;
  GDestroyNotify  notify;
} CancelProxy;

static void
cancel_proxy_clear (gpointer mem)
{
  CancelProxy *proxy = mem;

  g_main_context_unref (proxy->context);
  if (proxy->notify != NULL)
    proxy->notify (proxy->data);
}

static void
cancel_proxy_unref (gpointer proxy)
{
  g_atomic_rc_box_release_full (proxy, cancel_proxy_clear);
}

static gboolean
cancel_proxy_run (gpointer user_data)
{
  CancelProxy *proxy = user_data;

  return proxy->func (proxy->data);
}

static void
cancel_proxy_cancelled (GCancellable *caller,
                        gpointer      user_data)
{
  CancelProxy *proxy = user_data;
  g_autoptr(GSource) idle = g_idle_source_new ();

  /* Always a source, never g_main_context_invoke(): that would run @func
   * right here when this thread owns the context (g_cancellable_cancel()
   * from the loop's own thread), inside the "cancelled" emission, where
   * disconnecting from @caller deadlocks. */
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (idle, cancel_proxy_run, g_atomic_rc_box_acquire (proxy), cancel_proxy_unref);
  g_source_set_static_name (idle, "[libsandbox] cancel");
  g_source_attach (idle, proxy->context);
}

gulong
_sandbox_cancellable_connect_in (GCancellable   *caller,
                                 GMainContext   *context,
                                 GSourceFunc     func,
                                 gpointer        data,
                                 GDestroyNotify  notify)
{
  CancelProxy *proxy = g_atomic_rc_box_new0 (CancelProxy);

  proxy->context = g_main_context_ref (context ? context : g_main_context_default ());
  proxy->func = func;
  proxy->data = data;
  proxy->notify = notify;
  /* Runs at once when @caller is already cancelled. */
  return g_cancellable_connect (caller, G_CALLBACK (cancel_proxy_cancelled), proxy, cancel_proxy_unref);
}

static gboolean
cancel_inner_cb (gpointer user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
  return G_SOURCE_REMOVE;
}

static void call_send (GTask *task);

static gboolean
call_retry_cb (gpointer user_data)
{
  GTask *task = user_data;

  call_send (task);
  return G_SOURCE_REMOVE;
}

static void
call_retry_later (GTask *task,
                  guint  delay_ms)
{
  SandboxRestClient *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);
  GSource *source = g_timeout_source_new (delay_ms);

  g_debug ("%s %s %s: retrying in %u ms (attempt %u of %u)",
           self->provider, data->method, data->path, delay_ms, data->attempt + 1, self->max_retries);
  data->attempt++;
  g_source_set_callback (source, call_retry_cb, task, NULL);
  g_source_set_static_name (source, "[libsandbox] REST retry");
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

static void
call_done (GTask  *task,
           GBytes *body,
           GError *error)
{
  SandboxRestClient *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);
  JsonNode *node = NULL;

  if (body == NULL)
    {
      gboolean retry = (data->flags & SANDBOX_REST_IDEMPOTENT) &&
                       !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
                       error->domain != G_TLS_ERROR &&   /* a bad certificate stays bad */
                       data->attempt < self->max_retries;

      if (retry)
        {
          call_retry_later (task, _sandbox_rest_retry_delay_ms (NULL, data->attempt,
                                                                self->base_delay_ms,
                                                                self->max_delay_ms));
          return;
        }
      g_task_return_error (task, _sandbox_rest_transport_error_new (self->provider, data->method,
                                                                    data->path, error));
      g_object_unref (task);
      return;
    }

  data->status = soup_message_get_status (data->msg);
  g_clear_pointer (&data->response, g_bytes_unref);   /* a retried call's earlier answer */
  data->response = g_bytes_ref (body);

  if (!SOUP_STATUS_IS_SUCCESSFUL (data->status))
    {
      if (_sandbox_rest_status_is_retryable (data->status, data->flags) &&
          data->attempt < self->max_retries &&
          !g_cancellable_is_cancelled (g_task_get_cancellable (task)))
        {
          call_retry_later (task, _sandbox_rest_retry_delay_ms (soup_message_get_response_headers (data->msg),
                                                                data->attempt,
                                                                self->base_delay_ms,
                                                                self->max_delay_ms));
          return;
        }
      g_task_return_error (task, _sandbox_rest_error_new (self->provider, data->method, data->path,
                                                          data->status, body, self->auth_hint));
      g_object_unref (task);
      return;
    }

  if (!(data->flags & SANDBOX_REST_RAW))
    {
      node = _sandbox_rest_parse_json (self->provider, data->path, body, &error);
      if (error != NULL)
        {
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
    }

  g_task_return_pointer (task, node, (GDestroyNotify) json_node_unref);
  g_object_unref (task);
}

static void call_read (GTask *task);

static void
call_closed (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  CallData *data = g_task_get_task_data (task);
  g_autoptr(GBytes) body = NULL;

  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  g_clear_object (&data->stream);
  body = g_byte_array_free_to_bytes (g_steal_pointer (&data->buffer));
  call_done (task, body, NULL);
}

static void
call_got (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  SandboxRestClient *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  gsize max = _sandbox_rest_max_reply ();

  if (bytes == NULL)
    {
      g_clear_object (&data->stream);
      g_clear_pointer (&data->buffer, g_byte_array_unref);
      call_done (task, NULL, error);
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    {
      /* Closed here, so that libsoup finishes the message in this context
       * and may reuse the connection. */
      g_input_stream_close_async (data->stream, G_PRIORITY_DEFAULT, NULL, call_closed, task);
      return;
    }
  if (data->buffer->len + g_bytes_get_size (bytes) > max)
    {
      g_clear_object (&data->stream);
      g_clear_pointer (&data->buffer, g_byte_array_unref);
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               /* No G_GSIZE_FORMAT: a macro inside a msgid cuts it short. */
                               _("%s sent a reply to %s %s larger than %lu bytes, "
                                 "which is no answer libsandbox expects; retry later, and report it "
                                 "to %s if it persists (SANDBOX_HTTP_MAX_REPLY raises the limit)."),
                               self->provider, data->method, data->path, (unsigned long) max,
                               self->provider);
      g_object_unref (task);
      return;
    }
  g_byte_array_append (data->buffer, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  call_read (task);
}

static void
call_read (GTask *task)
{
  CallData *data = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (data->stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                   data->inner, call_got, task);
}

static void
call_sent (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  CallData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GInputStream *stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  goffset length;

  if (stream == NULL)
    {
      call_done (task, NULL, error);
      return;
    }
  data->stream = stream;
  length = soup_message_headers_get_content_length (soup_message_get_response_headers (data->msg));
  data->buffer = g_byte_array_sized_new ((guint) CLAMP (length, 0, READ_CHUNK));
  call_read (task);
}

static void
call_send (GTask *task)
{
  SandboxRestClient *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  g_clear_object (&data->msg);
  data->msg = _sandbox_rest_client_new_message (self, data->method, data->path);
  if (data->msg == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                               _("“%s” is not a valid %s API URL; check its setting."),
                               self->base_url, self->provider);
      g_object_unref (task);
      return;
    }
  soup_message_headers_replace (soup_message_get_request_headers (data->msg),
                                "Accept", "application/json");
  if (data->request != NULL)
    soup_message_set_request_body_from_bytes (data->msg, "application/json", data->request);

  /* The task's context: where the call was made and where retries run. */
  soup_session_send_async (session_for_context (self, g_task_get_context (task)), data->msg,
                           G_PRIORITY_DEFAULT, data->inner, call_sent, task);
}

void
_sandbox_rest_client_call_async (SandboxRestClient   *self,
                                 const char          *method,
                                 const char          *path,
                                 JsonNode            *body,
                                 SandboxRestFlags     flags,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  GTask *task;
  CallData *data;

  g_return_if_fail (SANDBOX_IS_REST_CLIENT (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, _sandbox_rest_client_call_async);
  data = g_new0 (CallData, 1);
  data->method = g_strdup (method);
  data->path = g_strdup (path);
  data->flags = flags;
  if (body != NULL)
    {
      char *json = json_to_string (body, FALSE);
      data->request = g_bytes_new_take (json, strlen (json));
    }
  g_task_set_task_data (task, data, (GDestroyNotify) call_data_free);
  if (cancellable != NULL)
    {
      /* The caller may cancel from any thread; libsoup's session and
       * streams belong to the call's context and must only be touched
       * there. So libsoup gets a cancellable of our own, cancelled on that
       * context (at once when already cancelled; call_send then returns). */
      data->inner = g_cancellable_new ();
      data->caller = g_object_ref (cancellable);
      data->caller_id = _sandbox_cancellable_connect_in (cancellable, g_task_get_context (task),
                                                         cancel_inner_cb, g_object_ref (data->inner),
                                                         g_object_unref);
    }

  call_send (task);   /* takes the reference */
}

JsonNode *
_sandbox_rest_client_call_finish (SandboxRestClient  *self,
                                  GAsyncResult       *result,
                                  guint              *status,
                                  GError            **error)
{
  CallData *data;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == _sandbox_rest_client_call_async, NULL);

  data = g_task_get_task_data (G_TASK (result));
  if (status != NULL)
    *status = data->status;
  return g_task_propagate_pointer (G_TASK (result), error);
}

SoupMessage *
_sandbox_rest_call_get_message (GAsyncResult *result)
{
  CallData *data = g_task_get_task_data (G_TASK (result));

  return data->msg;
}

GBytes *
_sandbox_rest_call_get_body (GAsyncResult *result)
{
  CallData *data = g_task_get_task_data (G_TASK (result));

  return data->response;
}

/* ------------------------------------------------------------------ */
/* TLS: certificates are always verified (libsoup's default, with the  */
/* system's trust store); only SANDBOX_TLS_INSECURE=1 turns it off.    */

gboolean
_sandbox_rest_tls_insecure (void)
{
  return g_strcmp0 (g_getenv ("SANDBOX_TLS_INSECURE"), "1") == 0;
}

static gboolean
accept_any_certificate (SoupMessage          *msg,
                        GTlsCertificate      *certificate,
                        GTlsCertificateFlags  errors,
                        gpointer              user_data)
{
  return TRUE;
}

static void
insecure_request_queued (SoupSession *session,
                         SoupMessage *msg,
                         gpointer     user_data)
{
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
}

void
_sandbox_rest_session_setup_tls (SoupSession *session)
{
  if (!_sandbox_rest_tls_insecure ())
    return;
  g_signal_connect (session, "request-queued", G_CALLBACK (insecure_request_queued), NULL);
}
