/* libsandbox - error domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "sandbox-private.h"

/* What an error message keeps of a provider's words (bytes). */
#define MESSAGE_EXCERPT_MAX 300

/**
 * sandbox_error_quark:
 *
 * Gets the libsandbox error domain.
 *
 * Returns: the quark of %SANDBOX_ERROR
 *
 * Since: 0.1
 */
G_DEFINE_QUARK (sandbox-error-quark, sandbox_error)

/* At most MESSAGE_EXCERPT_MAX bytes of a provider's words, for a message
 * a terminal may show: ASCII controls (newlines, tabs, ESC) become spaces,
 * and what remains is shown as _sandbox_display_text() shows a name (C1
 * controls such as U+009B, a one-character CSI, and bidirectional
 * formatting characters escaped; they reached the terminal as they came). */
static char *
excerpt (const char *text,
         gsize       len)
{
  GString *out = g_string_new (NULL);
  g_autofree char *plain = NULL;
  const char *end;

  for (gsize i = 0; i < len && out->len < MESSAGE_EXCERPT_MAX; i++)
    g_string_append_c (out, g_ascii_isprint (text[i]) || (guchar) text[i] >= 0x80 ? text[i] : ' ');
  /* Cut at the limit, not within a character. */
  if (len > MESSAGE_EXCERPT_MAX && !g_utf8_validate (out->str, out->len, &end) &&
      out->len - (gsize) (end - out->str) < 4)
    g_string_truncate (out, (gsize) (end - out->str));
  if (!g_utf8_validate (out->str, out->len, NULL))
    {
      g_string_free (out, TRUE);
      return g_strdup (_("(a body that is not text)"));
    }
  if (len > MESSAGE_EXCERPT_MAX)
    g_string_append (out, "…");
  plain = g_strstrip (g_string_free (out, FALSE));
  return _sandbox_display_text (plain);
}

/* The provider's own words: "message" (string or array), else "error",
 * else the body itself. */
static char *
provider_message (GBytes *body)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  const char *data;
  gsize len;
  JsonNode *root;

  if (body == NULL || g_bytes_get_size (body) == 0)
    return NULL;
  data = g_bytes_get_data (body, &len);

  if (json_parser_load_from_data (parser, data, (gssize) len, NULL) &&
      (root = json_parser_get_root (parser)) != NULL &&
      JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *object = json_node_get_object (root);
      const char *keys[] = { "message", "error", "detail" };

      for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
        {
          JsonNode *node = json_object_get_member (object, keys[i]);

          if (node == NULL)
            continue;
          if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
            {
              const char *s = json_node_get_string (node);
              return excerpt (s, strlen (s));
            }
          if (JSON_NODE_HOLDS_ARRAY (node))
            {
              JsonArray *array = json_node_get_array (node);
              g_autoptr(GString) joined = g_string_new (NULL);

              for (guint j = 0; j < json_array_get_length (array); j++)
                {
                  JsonNode *element = json_array_get_element (array, j);

                  if (JSON_NODE_HOLDS_VALUE (element) &&
                      json_node_get_value_type (element) == G_TYPE_STRING)
                    {
                      if (joined->len > 0)
                        g_string_append (joined, ", ");
                      g_string_append (joined, json_node_get_string (element));
                    }
                }
              if (joined->len > 0)
                return excerpt (joined->str, joined->len);
            }
        }
    }

  return excerpt (data, len);
}

/**
 * sandbox_error_new_for_http_status:
 * @provider: the service, as messages name it ("Daytona")
 * @method: the request's HTTP method ("POST")
 * @endpoint: the request's path or URL, as messages show it
 * @status: the HTTP status of the answer
 * @reason: (nullable): the status's reason phrase ("Too Many Requests"),
 *   shown when the body says nothing
 * @body: (nullable): the body of the answer
 * @auth_hint: (nullable): what to check after a 401 or 403, such as
 *   "Check MINE_API_KEY"; %NULL says to check the API key
 *
 * Makes the error of a failed HTTP answer from a provider's API, as the
 * built-in remote backends report theirs, for a backend that makes its
 * own requests (in C, or a Python or JavaScript subclass of
 * [class@Sandbox.Backend]).
 *
 * The code follows the status: 401 and 403
 * %SANDBOX_ERROR_AUTHENTICATION, 404 and 410 %SANDBOX_ERROR_NOT_FOUND, 402
 * %SANDBOX_ERROR_QUOTA, 408 and 504 %SANDBOX_ERROR_TIMEOUT, 429
 * %SANDBOX_ERROR_RATE_LIMITED, 400, 409, 413 and 422
 * %SANDBOX_ERROR_INVALID_ARGUMENT, other 5xx %SANDBOX_ERROR_UNAVAILABLE,
 * anything else %SANDBOX_ERROR_FAILED. The message names the provider, the
 * status and the request, quotes what the provider said (the "message",
 * "error" or "detail" member of a JSON body, else the body itself: at most
 * 300 bytes, control characters and terminal escapes made harmless), and
 * says what to do next, translated.
 *
 * Returns: (transfer full): a new #GError in the %SANDBOX_ERROR domain
 *
 * Since: 0.2
 */
GError *
sandbox_error_new_for_http_status (const char *provider,
                                   const char *method,
                                   const char *endpoint,
                                   guint       status,
                                   const char *reason,
                                   GBytes     *body,
                                   const char *auth_hint)
{
  g_autofree char *said = provider_message (body);
  g_autofree char *what = NULL;
  SandboxError code;
  const char *next;

  g_return_val_if_fail (provider != NULL, NULL);
  g_return_val_if_fail (method != NULL, NULL);
  g_return_val_if_fail (endpoint != NULL, NULL);

  if (said == NULL || *said == '\0')
    {
      g_free (said);
      said = g_strdup (reason ? reason : "");
    }
  what = g_strdup_printf (_("%s answered HTTP %u to %s %s: %s."), provider, status, method, endpoint, said);

  switch (status)
    {
    case 401:
    case 403:
      code = SANDBOX_ERROR_AUTHENTICATION;
      next = auth_hint ? auth_hint : _("Check the API key.");
      break;
    case 404:
    case 410:
      code = SANDBOX_ERROR_NOT_FOUND;
      next = _("The sandbox or file does not exist (any more); list the live ones with “sandboxctl ls”.");
      break;
    case 402:
      code = SANDBOX_ERROR_QUOTA;
      next = _("A quota of the account is used up; free resources or raise the quota with the provider.");
      break;
    case 408:
    case 504:
      code = SANDBOX_ERROR_TIMEOUT;
      next = _("The provider took too long; try again, or raise the timeout.");
      break;
    case 429:
      code = SANDBOX_ERROR_RATE_LIMITED;
      next = _("Too many requests: slow down or retry later (libsandbox already retried with backoff).");
      break;
    case 400:
    case 409:
    case 413:
    case 422:
      code = SANDBOX_ERROR_INVALID_ARGUMENT;
      next = _("The request was refused as given; check the spec or command.");
      break;
    default:
      if (status >= 500)
        {
          code = SANDBOX_ERROR_UNAVAILABLE;
          next = _("The provider is failing; retry later and check its status page.");
        }
      else
        {
          code = SANDBOX_ERROR_FAILED;
          next = "";
        }
      break;
    }

  return g_error_new (SANDBOX_ERROR, code, "%s %s", what, next);
}

