/* libsandbox - fuzz target: what the E2B backend reads from the API and
 * from envd. The input is taken both as a JSON reply (a sandbox, the list
 * of sandboxes, a process event, a Stat or ListDir answer) and as the
 * Connect stream of process.Process/Start: envelopes whose payloads are
 * JSON events, the last one an end-of-stream frame.
 *
 * Checks: no critical or crash; names from a directory listing are single
 * path components (they become local paths); exit statuses are 0-255 or
 * -1 with a signal; errors are SANDBOX_ERRORs with a message.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "e2b/sandbox-e2b-private.h"
#include "fuzz-common.h"

static SandboxBackend *backend;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  backend = g_object_new (SANDBOX_TYPE_E2B_BACKEND, "api-key", "fuzz",
                          "api-url", "http://127.0.0.1:9", "domain", "e2b.invalid", NULL);
  return 0;
}

static void
check_event (JsonObject *event)
{
  g_auto(SandboxE2bEvent) ev = { 0, };

  switch (_sandbox_e2b_parse_process_event (event, &ev))
    {
    case SANDBOX_E2B_EVENT_END:
      FUZZ_ASSERT ((ev.exit_status >= 0 && ev.exit_status <= 255 && ev.term_signal == 0) ||
                   (ev.exit_status == -1 && ev.term_signal > 0));
      break;
    case SANDBOX_E2B_EVENT_DATA:
    case SANDBOX_E2B_EVENT_START:
    case SANDBOX_E2B_EVENT_OTHER:
    default:
      break;
    }
}

static void
check_sandbox (JsonNode *node)
{
  g_autoptr(SandboxInstance) instance = NULL;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return;
  instance = _sandbox_e2b_instance_new (SANDBOX_E2B_BACKEND (backend), json_node_get_object (node));
  if (instance != NULL)
    FUZZ_ASSERT (sandbox_instance_get_id (instance) != NULL && *sandbox_instance_get_id (instance) != '\0');
}

static void
check_json (const uint8_t *data,
            size_t         size)
{
  g_autoptr(GBytes) body = g_bytes_new (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_parse_json ("E2B", "fuzz", body, &error);
  g_autoptr(GPtrArray) names = NULL;

  if (node == NULL)
    {
      if (error != NULL)
        FUZZ_ASSERT_ERROR (error);
      return;
    }
  check_sandbox (node);
  if (JSON_NODE_HOLDS_ARRAY (node))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (node)); i++)
      check_sandbox (json_array_get_element (json_node_get_array (node), i));
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonNode *event = json_object_get_member (json_node_get_object (node), "event");

      check_event (json_node_get_object (node));
      if (event != NULL && JSON_NODE_HOLDS_OBJECT (event))
        check_event (json_node_get_object (event));
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autoptr(SandboxMetrics) metrics = _sandbox_e2b_parse_metrics (json_node_get_object (node));
      double pct = sandbox_metrics_get_cpu_percent (metrics);

      FUZZ_ASSERT (pct >= -1 && pct <= 100);
    }
  _sandbox_e2b_parse_stat_is_dir (node);
  names = _sandbox_e2b_parse_list_dir (node);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);

      FUZZ_ASSERT (*name != '\0' && strchr (name, '/') == NULL);
      FUZZ_ASSERT (strcmp (name, ".") != 0 && strcmp (name, "..") != 0);
    }
}

/* As exec_pump() reads process.Process/Start. */
static void
check_stream (const uint8_t *data,
              size_t         size)
{
  g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (SANDBOX_CONNECT_DEFAULT_MAX_MESSAGE);
  g_autoptr(GError) error = NULL;
  gsize fed = 0;
  guint piece = 0;

  while (fed < size)
    {
      gsize want = fuzz_piece (data, size, piece++);
      gsize n = MIN (want, size - fed);
      GBytes *payload;
      guint8 flags;

      if (!_sandbox_connect_reader_feed (reader, data + fed, n, &error))
        {
          FUZZ_ASSERT_ERROR (error);
          return;
        }
      fed += n;
      while (_sandbox_connect_reader_next (reader, &flags, &payload))
        {
          g_autoptr(GBytes) owned = payload;
          g_autoptr(JsonNode) event = NULL;

          if (flags & SANDBOX_CONNECT_FLAG_END_STREAM)
            {
              g_autofree char *code = NULL;
              g_autoptr(GError) end_error = NULL;

              if (!_sandbox_connect_parse_end_stream (payload, "fuzz", &code, &end_error))
                FUZZ_ASSERT_ERROR (end_error);
              continue;
            }
          if ((event = _sandbox_e2b_parse_event_frame (payload)) == NULL)
            continue;
          FUZZ_ASSERT (JSON_NODE_HOLDS_OBJECT (event));
          check_event (json_node_get_object (event));
        }
    }
  if (!_sandbox_connect_reader_finish (reader, &error))
    FUZZ_ASSERT_ERROR (error);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  if (backend == NULL)
    LLVMFuzzerInitialize (NULL, NULL);
  check_json (data, size);
  check_stream (data, size);
  return 0;
}
