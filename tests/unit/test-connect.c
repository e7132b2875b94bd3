/* Unit tests of the Connect envelope writer/reader (sandbox-connect.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-connect-private.h"

static GBytes *
frames (void)
{
  g_autoptr(GByteArray) all = g_byte_array_new ();
  const char *messages[] = { "{\"event\":{\"start\":{\"pid\":7}}}", "", "{\"a\":1}" };

  for (guint i = 0; i < G_N_ELEMENTS (messages); i++)
    {
      g_autoptr(GBytes) env = _sandbox_connect_envelope_new (0, messages[i], strlen (messages[i]));
      g_byte_array_append (all, g_bytes_get_data (env, NULL), g_bytes_get_size (env));
    }
  {
    g_autoptr(GBytes) end = _sandbox_connect_envelope_new (SANDBOX_CONNECT_FLAG_END_STREAM, "{}", 2);
    g_byte_array_append (all, g_bytes_get_data (end, NULL), g_bytes_get_size (end));
  }
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

static void
test_envelope_layout (void)
{
  g_autoptr(GBytes) env = _sandbox_connect_envelope_new (SANDBOX_CONNECT_FLAG_END_STREAM, "hello", 5);
  const guint8 *data;
  gsize len;

  data = g_bytes_get_data (env, &len);
  g_assert_cmpuint (len, ==, 10);
  g_assert_cmpuint (data[0], ==, 0x02);
  g_assert_cmpuint (data[1], ==, 0);
  g_assert_cmpuint (data[4], ==, 5);
  g_assert_cmpmem (data + 5, 5, "hello", 5);
}

/* Every way of cutting the same byte sequence yields the same frames. */
static void
test_reader_any_split (void)
{
  g_autoptr(GBytes) all = frames ();
  gsize total;
  const guint8 *data = g_bytes_get_data (all, &total);

  for (gsize step = 1; step <= total; step++)
    {
      g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (0);
      g_autoptr(GError) error = NULL;
      guint count = 0;
      guint8 flags = 0;
      GBytes *payload;

      for (gsize off = 0; off < total; off += step)
        {
          g_assert_true (_sandbox_connect_reader_feed (reader, data + off, MIN (step, total - off), &error));
          g_assert_no_error (error);
          while (_sandbox_connect_reader_next (reader, &flags, &payload))
            {
              if (count == 0)
                g_assert_cmpmem (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload),
                                 "{\"event\":{\"start\":{\"pid\":7}}}", 29);
              if (count == 1)
                g_assert_cmpuint (g_bytes_get_size (payload), ==, 0);
              g_assert_cmpuint (flags, ==, count == 3 ? SANDBOX_CONNECT_FLAG_END_STREAM : 0);
              g_bytes_unref (payload);
              count++;
            }
        }
      g_assert_cmpuint (count, ==, 4);
      g_assert_true (_sandbox_connect_reader_got_end (reader));
      g_assert_true (_sandbox_connect_reader_finish (reader, &error));
      g_assert_no_error (error);
    }
}

static void
test_reader_truncated (void)
{
  g_autoptr(GBytes) all = frames ();
  gsize total;
  const guint8 *data = g_bytes_get_data (all, &total);

  /* Cut anywhere inside a frame: finish reports it. */
  for (gsize cut = 1; cut < total; cut++)
    {
      g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (0);
      g_autoptr(GError) error = NULL;
      GBytes *payload;
      gboolean at_boundary;

      g_assert_true (_sandbox_connect_reader_feed (reader, data, cut, NULL));
      while (_sandbox_connect_reader_next (reader, NULL, &payload))
        g_bytes_unref (payload);
      at_boundary = _sandbox_connect_reader_finish (reader, &error);
      if (!at_boundary)
        g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
      /* The frames end at 34, 39 and 51: only there is the cut clean. */
      g_assert_cmpint (at_boundary, ==, cut == 34 || cut == 39 || cut == 51);
    }
}

static void
test_reader_oversized (void)
{
  g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (16);
  g_autoptr(GError) error = NULL;
  const guint8 header[] = { 0, 0, 0, 0, 17 };

  g_assert_false (_sandbox_connect_reader_feed (reader, header, sizeof header, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_clear_error (&error);
  /* Stays failed. */
  g_assert_false (_sandbox_connect_reader_feed (reader, "x", 1, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_assert_false (_sandbox_connect_reader_next (reader, NULL, NULL));
}

static void
test_reader_bad_flags (void)
{
  const guint8 compressed[] = { 0x01, 0, 0, 0, 0 };
  const guint8 unknown[] = { 0x80, 0, 0, 0, 0 };
  const guint8 *cases[] = { compressed, unknown };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (0);
      g_autoptr(GError) error = NULL;

      g_assert_false (_sandbox_connect_reader_feed (reader, cases[i], 5, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
    }
}

static void
test_reader_data_after_end (void)
{
  g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (0);
  g_autoptr(GBytes) end = _sandbox_connect_envelope_new (SANDBOX_CONNECT_FLAG_END_STREAM, "{}", 2);
  g_autoptr(GError) error = NULL;
  GBytes *payload;

  g_assert_true (_sandbox_connect_reader_feed (reader, g_bytes_get_data (end, NULL), 7, NULL));
  g_assert_true (_sandbox_connect_reader_next (reader, NULL, &payload));
  g_bytes_unref (payload);
  g_assert_false (_sandbox_connect_reader_feed (reader, "\0", 1, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
}

static void
test_end_stream_errors (void)
{
  struct { const char *json; gboolean ok; int code; } cases[] = {
    { "{}", TRUE, 0 },
    { "{\"metadata\":{}}", TRUE, 0 },
    { "{\"error\":{\"code\":\"deadline_exceeded\",\"message\":\"late\"}}", FALSE, SANDBOX_ERROR_TIMEOUT },
    { "{\"error\":{\"code\":\"not_found\",\"message\":\"gone\"}}", FALSE, SANDBOX_ERROR_NOT_FOUND },
    { "{\"error\":{\"code\":\"unauthenticated\"}}", FALSE, SANDBOX_ERROR_AUTHENTICATION },
    { "{\"error\":{\"code\":\"no_such_code\"}}", FALSE, SANDBOX_ERROR_PROTOCOL },
    { "{\"error\":{}}", FALSE, SANDBOX_ERROR_PROTOCOL },
    { "[1]", FALSE, SANDBOX_ERROR_PROTOCOL },
    { "", FALSE, SANDBOX_ERROR_PROTOCOL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) payload = g_bytes_new_static (cases[i].json, strlen (cases[i].json));
      g_autoptr(GError) error = NULL;
      g_autofree char *code = NULL;
      gboolean ok = _sandbox_connect_parse_end_stream (payload, "test", &code, &error);

      g_assert_cmpint (ok, ==, cases[i].ok);
      if (!ok)
        g_assert_error (error, SANDBOX_ERROR, cases[i].code);
    }
  /* The server's words reach a terminal: shown escaped (an OSC title, a
   * C1 CSI and a right-to-left override came through as they were). */
  {
    static const char json[] =
      "{\"error\":{\"code\":\"not_found\\u001b[2J\",\"message\":\"\\u001b]0;T\\u0007 \\u009b2J \\u202ex\"}}";
    g_autoptr(GBytes) payload = g_bytes_new_static (json, strlen (json));
    g_autoptr(GError) error = NULL;

    g_assert_false (_sandbox_connect_parse_end_stream (payload, "test", NULL, &error));
    g_assert_nonnull (error);
    g_test_message ("%s", error->message);
    for (const char *p = error->message; *p != '\0'; p = g_utf8_next_char (p))
      {
        gunichar c = g_utf8_get_char (p);

        g_assert_false (c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0x202e);
      }
    g_assert_nonnull (strstr (error->message, "\\x1b]0;T\\x07 \\x9b2J \\u202ex"));
  }
  g_assert_cmpuint (_sandbox_connect_code_to_status ("not_found"), ==, 404);
  g_assert_cmpuint (_sandbox_connect_code_to_status ("unauthenticated"), ==, 401);
  g_assert_cmpuint (_sandbox_connect_code_to_status ("bogus"), ==, 500);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/connect/envelope-layout", test_envelope_layout);
  g_test_add_func ("/connect/reader/any-split", test_reader_any_split);
  g_test_add_func ("/connect/reader/truncated", test_reader_truncated);
  g_test_add_func ("/connect/reader/oversized", test_reader_oversized);
  g_test_add_func ("/connect/reader/bad-flags", test_reader_bad_flags);
  g_test_add_func ("/connect/reader/data-after-end", test_reader_data_after_end);
  g_test_add_func ("/connect/end-stream-errors", test_end_stream_errors);

  return g_test_run ();
}
