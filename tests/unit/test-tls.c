/* libsandbox - TLS certificate verification of the REST client (issue 8 §6)
 *
 * An https SoupServer on loopback with a self-signed certificate
 * (tests/unit/test-tls-selfsigned.pem, valid until 2125, CN/SAN 127.0.0.1):
 * the REST client refuses it with a SANDBOX_ERROR naming TLS and the option
 * that turns verification off; with SANDBOX_TLS_INSECURE=1 the same call
 * works and a warning says verification is off.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-rest-private.h"

static void
handle_ping (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  (*(guint *) user_data)++;
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, "{\"ok\":true}", 11);
}

typedef struct
{
  SoupServer *server;
  char       *url;
  guint       hits;
} Fixture;

static void
fixture_set_up (Fixture       *fx,
                gconstpointer  data)
{
  g_autofree char *pem = g_test_build_filename (G_TEST_DIST, "tests", "unit", "test-tls-selfsigned.pem", NULL);
  g_autoptr(GTlsCertificate) cert = NULL;
  g_autoptr(GError) error = NULL;
  GSList *uris;

  cert = g_tls_certificate_new_from_file (pem, &error);
  g_assert_no_error (error);
  fx->server = soup_server_new ("tls-certificate", cert, NULL);
  soup_server_add_handler (fx->server, "/ping", handle_ping, &fx->hits, NULL);
  soup_server_listen_local (fx->server, 0, SOUP_SERVER_LISTEN_HTTPS | SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (fx->server);
  g_assert_nonnull (uris);
  g_assert_cmpstr (g_uri_get_scheme (uris->data), ==, "https");
  fx->url = g_strdup_printf ("https://127.0.0.1:%d/", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
}

static void
fixture_tear_down (Fixture       *fx,
                   gconstpointer  data)
{
  g_unsetenv ("SANDBOX_TLS_INSECURE");
  soup_server_disconnect (fx->server);
  g_clear_object (&fx->server);
  g_free (fx->url);
}

static void
got_result (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static JsonNode *
ping (SandboxRestClient *client,
      GError           **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  guint status = 0;

  _sandbox_rest_client_call_async (client, "GET", "ping", NULL, SANDBOX_REST_IDEMPOTENT,
                                   NULL, got_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return _sandbox_rest_client_call_finish (client, result, &status, error);
}

static void
test_verified_by_default (Fixture       *fx,
                          gconstpointer  data)
{
  g_autoptr(SandboxRestClient) client = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;

  /* Anything but exactly "1" leaves verification on. */
  g_setenv ("SANDBOX_TLS_INSECURE", "yes", TRUE);
  client = _sandbox_rest_client_new ("Test provider", fx->url);
  node = ping (client, &error);
  g_assert_null (node);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "TLS certificate"));
  g_assert_nonnull (strstr (error->message, "Test provider"));
  g_assert_nonnull (strstr (error->message, "SANDBOX_TLS_INSECURE=1"));
  /* The handshake failed: the request never reached the handler, and a
   * bad certificate is not retried. */
  g_assert_cmpuint (fx->hits, ==, 0);
}

static void
test_insecure_option (Fixture       *fx,
                      gconstpointer  data)
{
  g_autoptr(SandboxRestClient) client = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;

  g_setenv ("SANDBOX_TLS_INSECURE", "1", TRUE);
  g_test_expect_message ("Sandbox", G_LOG_LEVEL_WARNING,
                         "SANDBOX_TLS_INSECURE=1: TLS certificates of Test provider are NOT verified*");
  client = _sandbox_rest_client_new ("Test provider", fx->url);
  g_test_assert_expected_messages ();
  node = ping (client, &error);
  g_assert_no_error (error);
  g_assert_nonnull (node);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (node), "ok"));
  g_assert_cmpuint (fx->hits, ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      g_test_skip ("no TLS backend (install glib-networking)");
      return g_test_run ();
    }
  g_test_add ("/rest/tls/verified-by-default", Fixture, NULL,
              fixture_set_up, test_verified_by_default, fixture_tear_down);
  g_test_add ("/rest/tls/insecure-option", Fixture, NULL,
              fixture_set_up, test_insecure_option, fixture_tear_down);

  return g_test_run ();
}
