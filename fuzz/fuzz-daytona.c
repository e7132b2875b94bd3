/* libsandbox - fuzz target: what the Daytona backend reads from the API,
 * the toolbox and a sandbox. The input is taken both as a JSON reply (a
 * sandbox, a page of sandboxes, a command's status, a file listing, a
 * file's description) and as the command log stream that is split into
 * stdout and stderr at the 0x01/0x02 markers.
 *
 * Checks: no critical or crash on any reply; listed file names are single
 * path components (they become local paths); the log stream, fed in
 * pieces, gives exactly what a one-pass reference split of the whole
 * stream gives.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "daytona/sandbox-daytona-private.h"
#include "fuzz-common.h"

static SandboxBackend *backend;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  backend = g_object_new (SANDBOX_TYPE_DAYTONA_BACKEND, "api-key", "fuzz",
                          "api-url", "http://127.0.0.1:9/api", NULL);
  return 0;
}

static void
check_sandbox (JsonNode *node)
{
  JsonObject *dto;
  const char *id;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GHashTable) labels = NULL;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return;
  dto = json_node_get_object (node);
  labels = _sandbox_daytona_labels_from_dto (dto);
  FUZZ_ASSERT (labels != NULL);
  if (json_object_get_member (dto, "id") == NULL || !JSON_NODE_HOLDS_VALUE (json_object_get_member (dto, "id")) ||
      json_node_get_value_type (json_object_get_member (dto, "id")) != G_TYPE_STRING)
    return;   /* the backend refuses it (expect_sandbox) */
  id = json_node_get_string (json_object_get_member (dto, "id"));
  instance = _sandbox_daytona_instance_new (SANDBOX_DAYTONA_BACKEND (backend), dto, NULL);
  FUZZ_ASSERT (g_strcmp0 (sandbox_instance_get_id (instance), id) == 0);
  _sandbox_daytona_instance_update (SANDBOX_DAYTONA_INSTANCE (instance), dto);
}

static void
check_json (const uint8_t *data,
            size_t         size)
{
  g_autoptr(GBytes) body = g_bytes_new (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_parse_json ("Daytona", "fuzz", body, &error);
  JsonArray *items;
  const char *next = NULL;
  int code = 0;

  if (node == NULL)
    {
      if (error != NULL)
        FUZZ_ASSERT_ERROR (error);
      return;
    }
  check_sandbox (node);
  items = _sandbox_daytona_parse_list_page (node, &next);
  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++)
    check_sandbox (json_array_get_element (items, i));
  if (_sandbox_daytona_parse_exit_code (node, &code) && !JSON_NODE_HOLDS_OBJECT (node))
    FUZZ_ASSERT (FALSE);   /* only an object has an exitCode */
  _sandbox_daytona_parse_is_dir (node);
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *entries = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (entries); i++)
        {
          const char *name = NULL;
          gboolean is_dir = FALSE;

          if (!_sandbox_daytona_parse_file_entry (json_array_get_element (entries, i), &name, &is_dir))
            continue;
          FUZZ_ASSERT (name != NULL && *name != '\0');
          FUZZ_ASSERT (strchr (name, '/') == NULL);
          FUZZ_ASSERT (strcmp (name, ".") != 0 && strcmp (name, "..") != 0);
        }
    }
}

typedef struct
{
  GByteArray *out[3];
} Split;

static void
collect (int           kind,
         const guint8 *buf,
         gsize         len,
         gpointer      user_data)
{
  Split *split = user_data;

  FUZZ_ASSERT (kind == 1 || kind == 2);
  g_byte_array_append (split->out[kind], buf, len);
}

static void
check_log_stream (const uint8_t *data,
                  size_t         size)
{
  SandboxDaytonaDemux demux = { 1, { 0, }, 0 };
  Split got = { { NULL, g_byte_array_new (), g_byte_array_new () } };
  Split want = { { NULL, g_byte_array_new (), g_byte_array_new () } };
  gsize fed = 0, start = 0;
  guint piece = 0;
  int kind = 1;

  while (fed < size)
    {
      gsize want = fuzz_piece (data, size, piece++);
      gsize n = MIN (want, size - fed);

      _sandbox_daytona_demux (&demux, data + fed, n, collect, &got);
      FUZZ_ASSERT (demux.npartial <= sizeof demux.partial);
      fed += n;
    }
  _sandbox_daytona_demux_flush (&demux, collect, &got);

  /* The reference: one pass over the whole stream. */
  for (gsize i = 0; i < size;)
    {
      if ((data[i] == 1 || data[i] == 2) && i + 3 <= size && data[i + 1] == data[i] && data[i + 2] == data[i])
        {
          g_byte_array_append (want.out[kind], data + start, i - start);
          kind = data[i];
          i += 3;
          start = i;
        }
      else
        i++;
    }
  g_byte_array_append (want.out[kind], data + start, size - start);

  for (int k = 1; k <= 2; k++)
    {
      FUZZ_ASSERT (got.out[k]->len == want.out[k]->len);
      FUZZ_ASSERT (got.out[k]->len == 0 || memcmp (got.out[k]->data, want.out[k]->data, got.out[k]->len) == 0);
      g_byte_array_unref (got.out[k]);
      g_byte_array_unref (want.out[k]);
    }
}

static void
collect_stdout (int           kind,
                const guint8 *buf,
                gsize         len,
                gpointer      user_data)
{
  FUZZ_ASSERT (kind == 1);
  g_byte_array_append (user_data, buf, len);
}

/* The exit status trailer taken out of stdout: fed in pieces, the same
 * output and status as fed at once; the output never longer than the
 * input, and the same as it when no trailer was seen. */
static void
check_trailer (const uint8_t *data,
               size_t         size)
{
  SandboxDaytonaTrailer pieces, whole;
  g_autoptr(GByteArray) got = g_byte_array_new ();
  g_autoptr(GByteArray) want = g_byte_array_new ();
  gsize fed = 0;
  guint piece = 0;

  _sandbox_daytona_trailer_init (&pieces, "n");
  _sandbox_daytona_trailer_init (&whole, "n");
  while (fed < size)
    {
      /* Not inside MIN (): it would be called twice, piece++ with it. */
      gsize want_n = fuzz_piece (data, size, piece++);
      gsize n = MIN (want_n, size - fed);

      _sandbox_daytona_trailer_feed (&pieces, data + fed, n, collect_stdout, got);
      fed += n;
    }
  _sandbox_daytona_trailer_flush (&pieces, collect_stdout, got);
  _sandbox_daytona_trailer_feed (&whole, data, size, collect_stdout, want);
  _sandbox_daytona_trailer_flush (&whole, collect_stdout, want);
  FUZZ_ASSERT (got->len == want->len && (got->len == 0 || memcmp (got->data, want->data, got->len) == 0));
  FUZZ_ASSERT (pieces.seen == whole.seen && pieces.status == whole.status);
  FUZZ_ASSERT (got->len <= size);
  FUZZ_ASSERT (pieces.seen || got->len == size);
  FUZZ_ASSERT (!pieces.seen || (pieces.status >= 0 && pieces.status <= 999));
  _sandbox_daytona_trailer_clear (&pieces);
  _sandbox_daytona_trailer_clear (&whole);
}

/* The create's state polls (no input): in the first 5 s each wait is at
 * most half the time waited so far and 5 ms, so a sandbox is seen started
 * at most half its start time late; never more than 1 s. */
static void
check_poll_schedule (void)
{
  guint interval = 0;
  gint64 elapsed_ms = 0;

  for (guint i = 0; i < 200; i++)
    {
      guint wait = interval;   /* as create_check () */

      interval = _sandbox_daytona_next_poll_ms (interval, elapsed_ms * 1000);
      FUZZ_ASSERT (interval >= 1 && interval <= 1000);
      if (elapsed_ms + wait <= 5000)
        FUZZ_ASSERT (wait <= elapsed_ms / 2 + 5);
      elapsed_ms += wait;
    }
}

/* The output of the metrics command, whatever the sandbox printed. */
static void
check_metrics (const uint8_t *data,
               size_t         size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(SandboxMetrics) metrics = _sandbox_daytona_parse_metrics (text);

  FUZZ_ASSERT (metrics != NULL);
  FUZZ_ASSERT (sandbox_metrics_get_cpu_seconds (metrics) >= 0 ||
               sandbox_metrics_get_cpu_seconds (metrics) == -1);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  if (backend == NULL)
    LLVMFuzzerInitialize (NULL, NULL);
  check_json (data, size);
  check_log_stream (data, size);
  check_trailer (data, size);
  check_poll_schedule ();
  check_metrics (data, size);
  return 0;
}
