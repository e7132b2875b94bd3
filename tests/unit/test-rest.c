/* libsandbox - tests of the REST client shared by the remote backends,
 * against a SoupServer on loopback in this process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-cloud-private.h"
#include "sandbox-rest-private.h"

typedef struct
{
  SoupServer *server;
  char       *url;
  guint       hits;
  GQueue      replies;    /* Reply*: what the next requests get */
  char       *last_auth;
  char       *last_body;
  GPtrArray  *held;       /* SoupServerMessage*: requests to /held, paused */
  guint16     last_port;  /* the client's end of the last request's connection */
} Fixture;

typedef struct
{
  guint       status;
  const char *body;
  const char *retry_after;
} Reply;

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  Fixture *f = user_data;
  Reply *reply;
  SoupMessageBody *request = soup_server_message_get_request_body (msg);
  GSocketAddress *peer = soup_server_message_get_remote_address (msg);

  if (G_IS_INET_SOCKET_ADDRESS (peer))
    f->last_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (peer));

  if (g_str_has_prefix (path, "/held"))
    {
      /* Answered only when the test says (a stream that stays open). */
      soup_server_message_pause (msg);
      g_ptr_array_add (f->held, g_object_ref (msg));
      return;
    }
  reply = g_queue_pop_head (&f->replies);

  f->hits++;
  g_free (f->last_auth);
  f->last_auth = g_strdup (soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                         "Authorization"));
  g_free (f->last_body);
  f->last_body = g_strndup (request->data, request->length);

  if (reply == NULL)
    {
      soup_server_message_set_status (msg, 500, NULL);
      return;
    }
  soup_server_message_set_status (msg, reply->status, NULL);
  if (reply->retry_after != NULL)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "Retry-After", reply->retry_after);
  if (reply->body != NULL)
    soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC,
                                      reply->body, strlen (reply->body));
}

static void
setup (Fixture       *f,
       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  GSList *uris;

  f->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (f->server, NULL, handler, f, NULL);
  g_assert_true (soup_server_listen_local (f->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->server);
  f->url = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  g_queue_init (&f->replies);
  f->held = g_ptr_array_new_with_free_func (g_object_unref);
}

static void
teardown (Fixture       *f,
          gconstpointer  data)
{
  g_queue_clear (&f->replies);
  g_clear_pointer (&f->held, g_ptr_array_unref);
  /* Let the server see its connections close, so none is left behind
   * (make check-valgrind). */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  g_free (f->url);
  g_free (f->last_auth);
  g_free (f->last_body);
}

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static JsonNode *
call (Fixture          *f,
      const char       *method,
      const char       *path,
      JsonNode         *body,
      SandboxRestFlags  flags,
      guint            *status,
      GError          **error)
{
  g_autoptr(SandboxRestClient) client = _sandbox_rest_client_new ("Provider", f->url);
  g_autoptr(GAsyncResult) result = NULL;

  _sandbox_rest_client_set_header (client, "Authorization", "Bearer secret-key");
  _sandbox_rest_client_set_auth_hint (client, "Check PROVIDER_API_KEY.");
  _sandbox_rest_client_set_retry (client, 3, 10, 40);
  _sandbox_rest_client_call_async (client, method, path, body, flags, NULL, call_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return _sandbox_rest_client_call_finish (client, result, status, error);
}

static void
test_json_round_trip (Fixture       *f,
                      gconstpointer  data)
{
  Reply ok = { 201, "{\"id\": \"s1\", \"state\": \"started\"}", NULL };
  g_autoptr(JsonNode) body = json_from_string ("{\"image\": \"debian\"}", NULL);
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  guint status = 0;

  g_queue_push_tail (&f->replies, &ok);
  node = call (f, "POST", "/sandbox", body, SANDBOX_REST_NONE, &status, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (status, ==, 201);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "id"), ==, "s1");
  g_assert_cmpstr (f->last_auth, ==, "Bearer secret-key");
  g_assert_cmpstr (f->last_body, ==, "{\"image\":\"debian\"}");
}

static void
test_empty_body (Fixture       *f,
                 gconstpointer  data)
{
  Reply gone = { 204, NULL, NULL };
  g_autoptr(GError) error = NULL;
  guint status = 0;

  g_queue_push_tail (&f->replies, &gone);
  g_assert_null (call (f, "DELETE", "/sandbox/s1", NULL, SANDBOX_REST_IDEMPOTENT, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (status, ==, 204);
}

static void
test_status_mapping (Fixture       *f,
                     gconstpointer  data)
{
  const struct { guint status; int code; } cases[] = {
    { 401, SANDBOX_ERROR_AUTHENTICATION },
    { 403, SANDBOX_ERROR_AUTHENTICATION },
    { 404, SANDBOX_ERROR_NOT_FOUND },
    { 400, SANDBOX_ERROR_INVALID_ARGUMENT },
    { 409, SANDBOX_ERROR_INVALID_ARGUMENT },
    { 408, SANDBOX_ERROR_TIMEOUT },
    { 500, SANDBOX_ERROR_UNAVAILABLE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Reply reply = { cases[i].status, "{\"statusCode\": 0, \"message\": \"the provider's words\"}", NULL };
      g_autoptr(GError) error = NULL;

      g_queue_push_tail (&f->replies, &reply);
      g_assert_null (call (f, "GET", "/sandbox/x", NULL, SANDBOX_REST_NONE, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, cases[i].code);
      /* The message keeps the provider's words and names the endpoint. */
      g_assert_nonnull (strstr (error->message, "the provider's words"));
      g_assert_nonnull (strstr (error->message, "GET /sandbox/x"));
      g_assert_null (strstr (error->message, "secret-key"));
      if (cases[i].status == 401)
        g_assert_nonnull (strstr (error->message, "PROVIDER_API_KEY"));
    }
}

static void
test_message_array (Fixture       *f,
                    gconstpointer  data)
{
  Reply reply = { 400, "{\"message\": [\"cpu must be positive\", \"memory too big\"]}", NULL };
  g_autoptr(GError) error = NULL;

  g_queue_push_tail (&f->replies, &reply);
  g_assert_null (call (f, "POST", "/sandbox", NULL, SANDBOX_REST_NONE, NULL, &error));
  g_assert_nonnull (strstr (error->message, "cpu must be positive, memory too big"));
}

static void
test_malformed_json (Fixture       *f,
                     gconstpointer  data)
{
  Reply reply = { 200, "{\"id\": \"s1\", ", NULL };
  g_autoptr(GError) error = NULL;

  g_queue_push_tail (&f->replies, &reply);
  g_assert_null (call (f, "GET", "/sandbox/s1", NULL, SANDBOX_REST_IDEMPOTENT, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "/sandbox/s1"));
}

static void
test_retry_idempotent (Fixture       *f,
                       gconstpointer  data)
{
  Reply busy = { 503, "{\"message\": \"busy\"}", NULL };
  Reply bad_gateway = { 502, NULL, NULL };
  Reply ok = { 200, "{\"ok\": true}", NULL };
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;

  g_queue_push_tail (&f->replies, &busy);
  g_queue_push_tail (&f->replies, &bad_gateway);
  g_queue_push_tail (&f->replies, &ok);
  node = call (f, "GET", "/sandbox", NULL, SANDBOX_REST_IDEMPOTENT, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (node);
  g_assert_cmpuint (f->hits, ==, 3);
}

static void
test_no_retry_unsafe (Fixture       *f,
                      gconstpointer  data)
{
  Reply busy = { 503, "{\"message\": \"busy\"}", NULL };
  Reply ok = { 200, "{}", NULL };
  g_autoptr(GError) error = NULL;

  /* A create that got a 503 may have happened: not sent again. */
  g_queue_push_tail (&f->replies, &busy);
  g_queue_push_tail (&f->replies, &ok);
  g_assert_null (call (f, "POST", "/sandbox", NULL, SANDBOX_REST_NONE, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f->hits, ==, 1);
}

static void
test_retry_after (Fixture       *f,
                  gconstpointer  data)
{
  Reply limited = { 429, "{\"message\": \"slow down\"}", "1" };
  Reply ok = { 200, "{}", NULL };
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();

  /* 429 is retried even for a create, after the delay the server asked for. */
  g_queue_push_tail (&f->replies, &limited);
  g_queue_push_tail (&f->replies, &ok);
  node = call (f, "POST", "/sandbox", NULL, SANDBOX_REST_NONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->hits, ==, 2);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 900 * G_TIME_SPAN_MILLISECOND);
}

static void
test_retries_run_out (Fixture       *f,
                      gconstpointer  data)
{
  Reply limited = { 429, "{\"message\": \"slow down\"}", "0" };
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < 4; i++)
    g_queue_push_tail (&f->replies, &limited);
  g_assert_null (call (f, "GET", "/sandbox", NULL, SANDBOX_REST_IDEMPOTENT, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_RATE_LIMITED);
  g_assert_cmpuint (f->hits, ==, 4);   /* the first try and 3 retries */
}

static void
test_retry_delay (void)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

  /* Exponential, capped, with jitter. */
  g_assert_cmpuint (_sandbox_rest_retry_delay_ms (NULL, 0, 100, 1000), >=, 80);
  g_assert_cmpuint (_sandbox_rest_retry_delay_ms (NULL, 0, 100, 1000), <=, 120);
  g_assert_cmpuint (_sandbox_rest_retry_delay_ms (NULL, 2, 100, 1000), >=, 320);
  g_assert_cmpuint (_sandbox_rest_retry_delay_ms (NULL, 2, 100, 1000), <=, 480);
  g_assert_cmpuint (_sandbox_rest_retry_delay_ms (NULL, 10, 100, 1000), <=, 1200);
  /* Daytona's per-throttler header counts too; the longest wins. */
  soup_message_headers_append (headers, "Retry-After-short", "2");
  soup_message_headers_append (headers, "Retry-After-long", "5");
  g_assert_cmpuint (_sandbox_rest_retry_delay_ms (headers, 0, 100, 1000), ==, 5000);
}

static void
test_unreachable (void)
{
  g_autoptr(SandboxRestClient) client = _sandbox_rest_client_new ("Provider", "http://127.0.0.1:1/api");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  _sandbox_rest_client_set_retry (client, 1, 10, 10);
  _sandbox_rest_client_call_async (client, "GET", "sandbox", NULL, SANDBOX_REST_IDEMPOTENT,
                                   NULL, call_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_null (_sandbox_rest_client_call_finish (client, result, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "GET sandbox"));
}

static void
test_cancel (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(SandboxRestClient) client = _sandbox_rest_client_new ("Provider", f->url);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Reply limited = { 429, "{}", "30" };

  /* Cancelled while waiting 30 s to retry: ends at once. */
  g_queue_push_tail (&f->replies, &limited);
  _sandbox_rest_client_call_async (client, "GET", "sandbox", NULL, SANDBOX_REST_IDEMPOTENT,
                                   cancellable, call_done, &result);
  while (f->hits == 0)
    g_main_context_iteration (NULL, TRUE);
  g_cancellable_cancel (cancellable);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_null (_sandbox_rest_client_call_finish (client, result, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* A client's calls on a main context of their own, as a synchronous call
 * makes them (sandbox-util.c): the context is the thread-default one while
 * each call is started and while it is iterated, in turns with the
 * server's (the default one), until the call ends or @seconds pass. */
typedef struct
{
  Fixture           *f;
  SandboxRestClient *client;
  GMainContext      *context;
} OwnContext;

static void
own_context_start (OwnContext    *own,
                   const char    *path,
                   GAsyncResult **result)
{
  g_main_context_push_thread_default (own->context);
  _sandbox_rest_client_call_async (own->client, "GET", path, NULL, SANDBOX_REST_IDEMPOTENT,
                                   NULL, call_done, result);
  g_main_context_pop_thread_default (own->context);
}

static gboolean
own_context_wait (OwnContext    *own,
                  GAsyncResult **result,
                  double         seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (*result == NULL && g_get_monotonic_time () < deadline)
    {
      gboolean busy;

      /* Thread-default while iterated: libsoup runs a message only on the
       * context it was sent from. */
      g_main_context_push_thread_default (own->context);
      busy = g_main_context_iteration (own->context, FALSE);
      g_main_context_pop_thread_default (own->context);
      busy |= g_main_context_iteration (NULL, FALSE);
      if (!busy)
        g_usleep (1000);
    }
  return *result != NULL;
}

/* A call made after the context sat unused for longer than the session's
 * idle timeout (a synchronous call, a minute after the one before, as a
 * step's sandbox is destroyed after the step ran to its time limit). With
 * libsoup's idle timer on (it was 60 s), the first iteration then ran both
 * the timer and the new request: the request took the kept-alive
 * connection and the timer closed it under the request, which was never
 * sent nor failed, and the call waited for ever. */
static void
test_call_after_idle (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(SandboxRestClient) client = _sandbox_rest_client_new ("Provider", f->url);
  g_autoptr(GMainContext) context = g_main_context_new ();
  OwnContext own = { f, client, context };
  Reply first = { 200, "{\"n\": 1}", NULL };
  Reply second = { 200, "{\"n\": 2}", NULL };
  g_autoptr(GAsyncResult) result1 = NULL;
  g_autoptr(GAsyncResult) result2 = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  SoupSession *session;
  guint idle = 0;

  g_queue_push_tail (&f->replies, &first);
  g_queue_push_tail (&f->replies, &second);
  own_context_start (&own, "sandbox", &result1);
  g_assert_true (own_context_wait (&own, &result1, 30));
  node = _sandbox_rest_client_call_finish (client, result1, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&node, json_node_unref);

  /* Longer than the idle timeout, with neither context iterated. */
  g_main_context_push_thread_default (context);
  session = _sandbox_rest_client_get_session (client);
  g_main_context_pop_thread_default (context);
  g_object_get (session, "idle-timeout", &idle, NULL);
  g_test_message ("idle timeout of the session: %u s", idle);
  g_usleep ((idle + 1) * G_USEC_PER_SEC);

  own_context_start (&own, "sandbox", &result2);
  g_assert_true (own_context_wait (&own, &result2, 10));
  node = _sandbox_rest_client_call_finish (client, result2, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "n"), ==, 2);
}

static guint16
own_context_get (OwnContext *own,
                 Reply      *reply)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;

  g_queue_push_tail (&own->f->replies, reply);
  own_context_start (own, "sandbox", &result);
  g_assert_true (own_context_wait (own, &result, 10));
  node = _sandbox_rest_client_call_finish (own->client, result, NULL, &error);
  g_assert_no_error (error);
  return own->f->last_port;
}

/* In place of libsoup's idle timer: a connection is reused by the next
 * request within the idle timeout (SANDBOX_HTTP_IDLE_TIMEOUT, 1 s here),
 * and replaced by a new one after it (a load balancer may have dropped it
 * without a word); the call after the idle time completes. */
static void
test_idle_connections_renewed (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(SandboxRestClient) client = NULL;
  g_autoptr(GMainContext) context = g_main_context_new ();
  OwnContext own = { f, NULL, context };
  Reply ok = { 200, "{}", NULL };
  guint16 first, again, later;

  g_setenv ("SANDBOX_HTTP_IDLE_TIMEOUT", "1", TRUE);
  client = _sandbox_rest_client_new ("Provider", f->url);
  g_unsetenv ("SANDBOX_HTTP_IDLE_TIMEOUT");
  own.client = client;
  first = own_context_get (&own, &ok);
  again = own_context_get (&own, &ok);
  g_assert_cmpuint (again, ==, first);
  g_usleep (1500 * G_TIME_SPAN_MILLISECOND);
  later = own_context_get (&own, &ok);
  g_assert_cmpuint (later, !=, first);
  g_assert_cmpuint (own_context_get (&own, &ok), ==, later);
  /* The closed connection's end runs down on the client's context. */
  g_main_context_push_thread_default (context);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_pop_thread_default (context);
}

/* Requests that stay open (a command's output streaming in) do not hold
 * back a short one to the same host on the same context: libsoup's two
 * connections per host made it wait for one of them to end, so a third
 * command's start, a terminal's input or a destroy behind two running
 * commands could wait for ever. */
static void
test_call_beside_streams (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(SandboxRestClient) client = _sandbox_rest_client_new ("Provider", f->url);
  g_autoptr(GMainContext) context = g_main_context_new ();
  OwnContext own = { f, client, context };
  Reply quick = { 200, "{\"quick\": true}", NULL };
  GAsyncResult *held[4] = { NULL };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    own_context_start (&own, "held", &held[i]);
  /* All of them reach the server (and stay open there). */
  {
    gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

    while (f->held->len < G_N_ELEMENTS (held) && g_get_monotonic_time () < deadline)
      own_context_wait (&own, &result, 0.01);
  }
  g_assert_cmpuint (f->held->len, ==, G_N_ELEMENTS (held));

  g_queue_push_tail (&f->replies, &quick);
  own_context_start (&own, "sandbox", &result);
  g_assert_true (own_context_wait (&own, &result, 10));
  node = _sandbox_rest_client_call_finish (client, result, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (node), "quick"));

  for (guint i = 0; i < f->held->len; i++)
    {
      SoupServerMessage *msg = g_ptr_array_index (f->held, i);

      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, "{}", 2);
      soup_server_message_unpause (msg);
    }
  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    {
      g_autoptr(JsonNode) done = NULL;

      g_assert_true (own_context_wait (&own, &held[i], 10));
      done = _sandbox_rest_client_call_finish (client, held[i], NULL, &error);
      g_assert_no_error (error);
      g_clear_object (&held[i]);
    }
  g_ptr_array_set_size (f->held, 0);
  /* What is left of the exchanges runs down on the client's context. */
  g_main_context_push_thread_default (context);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_pop_thread_default (context);
}

/* The shell line of a provider whose exec call takes one string: a POSIX
 * shell gives back every word and variable as it was, whatever it holds. */
static void
test_cloud_shell_line (void)
{
  const char * const words[] = { "printf", "[%s]", "a b", "it's", "$HOME", "`id`", "x\ny", "", "--", NULL };
  g_autoptr(GHashTable) env = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GString) line = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  int status = 0;
  const char *argv[] = { "/bin/sh", "-c", NULL, NULL };

  g_hash_table_insert (env, (char *) "V1", (char *) "it's $V2 `x`");
  /* Nothing is added for no variables, and a first word takes no space. */
  _sandbox_cloud_shell_append_env (line, NULL);
  _sandbox_cloud_shell_append_words (line, (const char * const []) { "env", NULL });
  g_assert_cmpstr (line->str, ==, "'env'");
  g_string_truncate (line, 0);
  g_string_append (line, "env -i");
  _sandbox_cloud_shell_append_env (line, env);
  g_string_append (line, " sh -c 'printf \"<%s>\" \"$V1\"'; ");
  _sandbox_cloud_shell_append_words (line, words);
  argv[2] = line->str;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL,
                               &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_cmpstr (out, ==, "<it's $V2 `x`>[a b][it's][$HOME][`id`][x\ny][][--]");
}

int
main (int argc, char **argv)
{
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, setup, func, teardown)
  ADD ("/rest/json-round-trip", test_json_round_trip);
  ADD ("/rest/empty-body", test_empty_body);
  ADD ("/rest/status-mapping", test_status_mapping);
  ADD ("/rest/message-array", test_message_array);
  ADD ("/rest/malformed-json", test_malformed_json);
  ADD ("/rest/retry-idempotent", test_retry_idempotent);
  ADD ("/rest/no-retry-unsafe", test_no_retry_unsafe);
  ADD ("/rest/retry-after", test_retry_after);
  ADD ("/rest/retries-run-out", test_retries_run_out);
  ADD ("/rest/cancel", test_cancel);
  ADD ("/rest/call-after-idle", test_call_after_idle);
  ADD ("/rest/idle-connections-renewed", test_idle_connections_renewed);
  ADD ("/rest/call-beside-streams", test_call_beside_streams);
#undef ADD
  g_test_add_func ("/rest/retry-delay", test_retry_delay);
  g_test_add_func ("/rest/unreachable", test_unreachable);
  g_test_add_func ("/cloud/shell-line", test_cloud_shell_line);

  return g_test_run ();
}
