/* libsandbox - what every fuzz target shares
 *
 * Each target defines LLVMFuzzerTestOneInput(); built with
 * --enable-fuzzing it links libFuzzer, otherwise fuzz/replay.c gives it a
 * main() that runs the committed corpus once (make check).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A failed check: report it and abort, which the fuzzer records as a crash. */
#define FUZZ_ASSERT(cond) \
  G_STMT_START { \
    if (G_UNLIKELY (!(cond))) \
      { \
        fprintf (stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort (); \
      } \
  } G_STMT_END

/* Criticals and warnings (g_return_if_fail on data from the network) are
 * bugs: abort (which libFuzzer records with the input), debug output off. */
static inline void
fuzz_log (const char     *domain,
          GLogLevelFlags  level,
          const char     *message,
          gpointer        user_data)
{
  /* libsoup 3.2's multipart reader asserts that a part's header line ends
   * in a line feed, which a server decides: a critical in libsoup, not
   * ours; next_part() then reports no more parts, which the backend
   * handles (docs/security.md). */
  if (g_strcmp0 (domain, "libsoup") == 0 && strstr (message, "got_lf") != NULL)
    return;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      fprintf (stderr, "%s-%s: %s\n", domain ? domain : "?",
               (level & G_LOG_LEVEL_WARNING) ? "WARNING" : "CRITICAL", message);
      abort ();
    }
}

static inline GLogWriterOutput
fuzz_log_writer (GLogLevelFlags   level,
                 const GLogField *fields,
                 gsize            n_fields,
                 gpointer         user_data)
{
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      const char *domain = NULL, *message = NULL;

      for (gsize i = 0; i < n_fields; i++)
        if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
          domain = fields[i].value;
        else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
          message = fields[i].value;
      fuzz_log (domain, level, message ? message : "?", NULL);
    }
  return G_LOG_WRITER_HANDLED;
}

static inline void
fuzz_init (void)
{
  static gboolean done;

  if (done)
    return;
  done = TRUE;
  g_setenv ("GIO_USE_VFS", "local", TRUE);
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_unsetenv ("G_MESSAGES_DEBUG");
  g_log_set_default_handler (fuzz_log, NULL);
  g_log_set_writer_func (fuzz_log_writer, NULL, NULL);
}

/* An error from a parser must be one of ours and say something. */
#define FUZZ_ASSERT_ERROR(error) \
  G_STMT_START { \
    FUZZ_ASSERT ((error) != NULL); \
    FUZZ_ASSERT ((error)->domain == SANDBOX_ERROR || (error)->domain == G_IO_ERROR); \
    FUZZ_ASSERT ((error)->message != NULL && (error)->message[0] != '\0'); \
  } G_STMT_END

/* Feeding in pieces: the size of piece @i, 1..64, from the input's first byte. */
static inline gsize
fuzz_piece (const uint8_t *data,
            size_t         size,
            guint          i)
{
  guint seed = size > 0 ? data[0] : 0;

  return 1 + ((seed * 31u + i * 7u) % 64u);
}
