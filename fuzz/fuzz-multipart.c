/* libsandbox - fuzz target: multipart, both ways, as the Daytona backend
 * uses it.
 *
 * Reading: the input is a bulk-download reply (first line: the boundary,
 * then the body), read part by part with SoupMultipartInputStream and
 * _sandbox_daytona_parse_part_headers(), as got_part() does.
 *
 * Writing: the input is a remote path; the head that
 * _sandbox_daytona_multipart_file_head() writes for it, plus file bytes,
 * must read back as exactly two parts, the .path part holding the path and
 * the .file part holding the bytes with only the headers we wrote (a path
 * with quotes or line breaks must not end the header or add one).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "daytona/sandbox-daytona-private.h"
#include "fuzz-common.h"

#define BOUNDARY "fuzz-2b4d0c1e-8f3a-4c5d-9e6f-7a8b9c0d1e2f"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  return 0;
}

typedef struct
{
  char    *name;
  char    *filename;
  char    *type;
  guint    nheaders;
  GBytes  *body;
} Part;

static void
part_free (Part *part)
{
  g_free (part->name);
  g_free (part->filename);
  g_free (part->type);
  g_clear_pointer (&part->body, g_bytes_unref);
  g_free (part);
}

static void
count_header (const char *name,
              const char *value,
              gpointer    user_data)
{
  (*(guint *) user_data)++;
}

/* All the parts of @body (NULL if the stream fails), read as got_part() does. */
static GPtrArray *
read_parts (const char *boundary,
            GBytes     *body)
{
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", "http://127.0.0.1:9/files/bulk-download");
  g_autoptr(GHashTable) params = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (body);
  g_autoptr(SoupMultipartInputStream) multipart = NULL;
  g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func ((GDestroyNotify) part_free);
  gboolean failed = FALSE;

  g_hash_table_insert (params, "boundary", (gpointer) boundary);
  soup_message_headers_set_content_type (soup_message_get_response_headers (msg), "multipart/form-data", params);
  multipart = soup_multipart_input_stream_new (msg, in);
  for (guint i = 0; i < 64 && !failed; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GInputStream) part_in = soup_multipart_input_stream_next_part (multipart, NULL, &error);
      g_autoptr(GOutputStream) out = NULL;
      SoupMessageHeaders *headers;
      Part *part;

      if (part_in == NULL)
        {
          failed = error != NULL;
          break;
        }
      part = g_new0 (Part, 1);
      g_ptr_array_add (parts, part);
      headers = soup_multipart_input_stream_get_headers (multipart);
      _sandbox_daytona_parse_part_headers (headers, &part->name, &part->filename);
      if (headers != NULL)
        {
          part->type = g_strdup (soup_message_headers_get_content_type (headers, NULL));
          soup_message_headers_foreach (headers, count_header, &part->nheaders);
        }
      out = g_memory_output_stream_new_resizable ();
      if (g_output_stream_splice (out, part_in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error) < 0)
        failed = TRUE;
      else
        part->body = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
    }
  return failed ? NULL : g_steal_pointer (&parts);
}

static void
check_reply (const uint8_t *data,
             size_t         size)
{
  const uint8_t *eol = memchr (data, '\n', size);
  g_autofree char *boundary = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GPtrArray) parts = NULL;

  if (eol == NULL || eol == data)
    return;
  boundary = g_strndup ((const char *) data, eol - data);
  if (strlen (boundary) != (gsize) (eol - data) || !g_utf8_validate (boundary, -1, NULL))
    return;
  /* A boundary is printable ASCII (RFC 2046); libsoup encodes any other
   * parameter value so that it is no "boundary" any more, which the backend
   * refuses before it makes a multipart stream (see got_part's caller). */
  for (const char *c = boundary; *c != '\0'; c++)
    if (*c < 0x20 || *c > 0x7e)
      return;
  body = g_bytes_new (eol + 1, size - (eol + 1 - data));
  parts = read_parts (boundary, body);
  for (guint i = 0; parts != NULL && i < parts->len; i++)
    {
      Part *part = g_ptr_array_index (parts, i);

      if (g_strcmp0 (part->name, "error") == 0)
        {
          gsize len;
          const guint8 *p = g_bytes_get_data (part->body, &len);
          g_autoptr(GError) error = _sandbox_daytona_part_error (part->filename ? part->filename : "?", p, len);

          FUZZ_ASSERT_ERROR (error);
        }
    }
}

static void
check_round_trip (const uint8_t *data,
                  size_t         size)
{
  g_autofree char *remote = g_strndup ((const char *) data, size);
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GPtrArray) parts = NULL;
  static const char contents[] = "file\r\n--contents\r\n";
  Part *path_part, *file_part;

  /* What is written: a path (a C string, valid UTF-8 to go in JSON and
   * headers), never holding the boundary, which is random per request. */
  if (strlen (remote) != size || !g_utf8_validate (remote, -1, NULL) || strstr (remote, BOUNDARY) != NULL)
    return;
  _sandbox_daytona_multipart_file_head (text, BOUNDARY, 0, remote);
  g_string_append (text, contents);
  g_string_append_printf (text, "\r\n--%s--\r\n", BOUNDARY);
  body = g_bytes_new (text->str, text->len);
  parts = read_parts (BOUNDARY, body);

  FUZZ_ASSERT (parts != NULL);
  FUZZ_ASSERT (parts->len == 2);
  path_part = g_ptr_array_index (parts, 0);
  file_part = g_ptr_array_index (parts, 1);
  FUZZ_ASSERT (g_strcmp0 (path_part->name, "files[0].path") == 0);
  FUZZ_ASSERT (g_bytes_get_size (path_part->body) == size);
  FUZZ_ASSERT (size == 0 || memcmp (g_bytes_get_data (path_part->body, NULL), remote, size) == 0);
  FUZZ_ASSERT (g_strcmp0 (file_part->name, "files[0].file") == 0);
  FUZZ_ASSERT (file_part->nheaders == 2);
  FUZZ_ASSERT (g_strcmp0 (file_part->type, "application/octet-stream") == 0);
  FUZZ_ASSERT (file_part->filename != NULL);
  FUZZ_ASSERT (strpbrk (file_part->filename, "\r\n\"") == NULL);
  FUZZ_ASSERT (g_bytes_get_size (file_part->body) == sizeof contents - 1);
  FUZZ_ASSERT (memcmp (g_bytes_get_data (file_part->body, NULL), contents, sizeof contents - 1) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  fuzz_init ();
  check_reply (data, size);
  check_round_trip (data, size);
  return 0;
}
