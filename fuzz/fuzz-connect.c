/* libsandbox - fuzz target: the Connect envelope reader
 * (libsandbox/sandbox-connect-private.h) and the Connect error parsers, on
 * the bytes of a streaming response as envd sends them.
 *
 * Checks: the reader never hands out more payload than it was fed, never a
 * frame longer than its bound, stays failed once failed; a frame it returns
 * survives a round trip through _sandbox_connect_envelope_new(); errors are
 * SANDBOX_ERRORs with a message.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-connect-private.h"
#include "fuzz-common.h"

#define MAX_MESSAGE 4096

static void
check_frame (guint8  flags,
             GBytes *payload)
{
  g_autoptr(GBytes) again = NULL;
  g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (MAX_MESSAGE);
  g_autoptr(GError) error = NULL;
  GBytes *copy = NULL;
  guint8 copy_flags = 0;
  gsize len;
  const guint8 *p = g_bytes_get_data (payload, &len);

  FUZZ_ASSERT (len <= MAX_MESSAGE);
  again = _sandbox_connect_envelope_new (flags, p, len);
  FUZZ_ASSERT (g_bytes_get_size (again) == len + SANDBOX_CONNECT_HEADER_SIZE);
  FUZZ_ASSERT (_sandbox_connect_reader_feed (reader, g_bytes_get_data (again, NULL),
                                             g_bytes_get_size (again), &error));
  FUZZ_ASSERT (_sandbox_connect_reader_next (reader, &copy_flags, &copy));
  FUZZ_ASSERT (copy_flags == flags);
  FUZZ_ASSERT (g_bytes_equal (copy, payload));
  g_bytes_unref (copy);
  FUZZ_ASSERT (_sandbox_connect_reader_finish (reader, &error));

  if (flags & SANDBOX_CONNECT_FLAG_END_STREAM)
    {
      g_autofree char *code = NULL;
      g_autoptr(GError) end_error = NULL;

      if (!_sandbox_connect_parse_end_stream (payload, "fuzz", &code, &end_error))
        FUZZ_ASSERT_ERROR (end_error);
      else
        FUZZ_ASSERT (end_error == NULL);
    }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(SandboxConnectReader) reader = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) whole = g_bytes_new (data, size);
  gsize fed = 0, taken = 0;
  gboolean failed = FALSE;
  guint piece = 0;

  fuzz_init ();
  reader = _sandbox_connect_reader_new (MAX_MESSAGE);
  while (fed < size && !failed)
    {
      gsize want = fuzz_piece (data, size, piece++);
      gsize n = MIN (want, size - fed);
      GBytes *payload;
      guint8 flags;

      if (!_sandbox_connect_reader_feed (reader, data + fed, n, &error))
        {
          FUZZ_ASSERT_ERROR (error);
          FUZZ_ASSERT (error->domain == SANDBOX_ERROR && error->code == SANDBOX_ERROR_PROTOCOL);
          failed = TRUE;
          break;
        }
      fed += n;
      while (_sandbox_connect_reader_next (reader, &flags, &payload))
        {
          taken += g_bytes_get_size (payload) + SANDBOX_CONNECT_HEADER_SIZE;
          FUZZ_ASSERT (taken <= fed);
          FUZZ_ASSERT ((flags & SANDBOX_CONNECT_FLAG_COMPRESSED) == 0);
          check_frame (flags, payload);
          g_bytes_unref (payload);
        }
    }
  if (failed)
    {
      g_autoptr(GError) again = NULL;

      /* A failed reader stays failed. */
      FUZZ_ASSERT (!_sandbox_connect_reader_feed (reader, "\0\0\0\0\0", 5, &again));
      FUZZ_ASSERT_ERROR (again);
    }
  else
    {
      g_clear_error (&error);
      if (_sandbox_connect_reader_finish (reader, &error))
        FUZZ_ASSERT (taken == fed);
      else
        FUZZ_ASSERT_ERROR (error);
    }

  /* The same bytes as the body of a unary error reply. */
  {
    g_autofree char *code = NULL;
    g_autoptr(GError) body_error = _sandbox_connect_error_from_body (whole, "fuzz", &code);

    if (body_error != NULL)
      {
        FUZZ_ASSERT_ERROR (body_error);
        _sandbox_connect_code_to_status (code);
        _sandbox_connect_code_to_error (code);
      }
  }
  return 0;
}
