/* libsandbox - Connect protocol framing (envelopes) and error codes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-connect-private.h"

struct _SandboxConnectReader
{
  GByteArray *buffer;       /* bytes not yet returned as frames */
  gsize       max_message;
  gboolean    failed;
  gboolean    got_end;
};

GBytes *
_sandbox_connect_envelope_new (guint8      flags,
                               const void *payload,
                               gsize       len)
{
  guint8 *data;

  g_return_val_if_fail (len <= G_MAXUINT32, NULL);

  data = g_malloc (SANDBOX_CONNECT_HEADER_SIZE + len);
  data[0] = flags;
  data[1] = (len >> 24) & 0xff;
  data[2] = (len >> 16) & 0xff;
  data[3] = (len >> 8) & 0xff;
  data[4] = len & 0xff;
  if (len > 0)
    memcpy (data + SANDBOX_CONNECT_HEADER_SIZE, payload, len);
  return g_bytes_new_take (data, SANDBOX_CONNECT_HEADER_SIZE + len);
}

GBytes *
_sandbox_connect_envelope_new_json (guint8    flags,
                                    JsonNode *node)
{
  g_autofree char *text = json_to_string (node, FALSE);

  return _sandbox_connect_envelope_new (flags, text, strlen (text));
}

SandboxConnectReader *
_sandbox_connect_reader_new (gsize max_message)
{
  SandboxConnectReader *reader = g_new0 (SandboxConnectReader, 1);

  reader->buffer = g_byte_array_new ();
  reader->max_message = max_message > 0 ? max_message : SANDBOX_CONNECT_DEFAULT_MAX_MESSAGE;
  return reader;
}

void
_sandbox_connect_reader_free (SandboxConnectReader *reader)
{
  if (reader == NULL)
    return;
  g_byte_array_unref (reader->buffer);
  g_free (reader);
}

static guint32
frame_length (const guint8 *header)
{
  return ((guint32) header[1] << 24) | ((guint32) header[2] << 16) |
         ((guint32) header[3] << 8) | (guint32) header[4];
}

/* Validates the header at the start of the buffer, if complete. */
static gboolean
check_header (SandboxConnectReader  *reader,
              GError               **error)
{
  const guint8 *header = reader->buffer->data;
  guint32 len;

  if (reader->buffer->len < SANDBOX_CONNECT_HEADER_SIZE)
    return TRUE;

  len = frame_length (header);
  if (header[0] & SANDBOX_CONNECT_FLAG_COMPRESSED)
    {
      reader->failed = TRUE;
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The server sent a compressed Connect frame although no compression "
                     "was negotiated; this is a server bug, report it to the provider."));
      return FALSE;
    }
  if (header[0] & ~(SANDBOX_CONNECT_FLAG_COMPRESSED | SANDBOX_CONNECT_FLAG_END_STREAM))
    {
      reader->failed = TRUE;
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The server sent a Connect frame with unknown flags 0x%02x; the stream "
                     "is not a Connect stream. Check the sandbox URL."), header[0]);
      return FALSE;
    }
  if (len > reader->max_message)
    {
      reader->failed = TRUE;
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   /* Not G_GSIZE_FORMAT: a macro inside a msgid cuts it short. */
                   _("The server announced a Connect frame of %u bytes, more than the %lu "
                     "bytes allowed; the stream is corrupt or not a Connect stream."),
                   len, (unsigned long) reader->max_message);
      return FALSE;
    }
  return TRUE;
}

gboolean
_sandbox_connect_reader_feed (SandboxConnectReader  *reader,
                              const void            *data,
                              gsize                  len,
                              GError               **error)
{
  g_return_val_if_fail (reader != NULL, FALSE);

  if (reader->failed)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The Connect stream was already found invalid."));
      return FALSE;
    }
  if (reader->got_end && len > 0)
    {
      reader->failed = TRUE;
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The server sent data after the end of the Connect stream."));
      return FALSE;
    }
  if (len > 0)
    g_byte_array_append (reader->buffer, data, (guint) len);
  return check_header (reader, error);
}

gboolean
_sandbox_connect_reader_next (SandboxConnectReader  *reader,
                              guint8                *flags,
                              GBytes               **payload)
{
  guint32 len;

  g_return_val_if_fail (reader != NULL, FALSE);

  if (reader->failed || reader->buffer->len < SANDBOX_CONNECT_HEADER_SIZE)
    return FALSE;
  len = frame_length (reader->buffer->data);
  if (len > reader->max_message ||
      reader->buffer->len - SANDBOX_CONNECT_HEADER_SIZE < len)
    return FALSE;

  if (flags != NULL)
    *flags = reader->buffer->data[0];
  if (reader->buffer->data[0] & SANDBOX_CONNECT_FLAG_END_STREAM)
    reader->got_end = TRUE;
  if (payload != NULL)
    *payload = g_bytes_new (reader->buffer->data + SANDBOX_CONNECT_HEADER_SIZE, len);
  g_byte_array_remove_range (reader->buffer, 0, SANDBOX_CONNECT_HEADER_SIZE + len);
  /* The next header, if already here, is checked now. */
  if (!check_header (reader, NULL))
    reader->failed = TRUE;
  return TRUE;
}

gboolean
_sandbox_connect_reader_got_end (SandboxConnectReader *reader)
{
  return reader->got_end;
}

gboolean
_sandbox_connect_reader_finish (SandboxConnectReader  *reader,
                                GError               **error)
{
  if (reader->failed)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The Connect stream is invalid (bad frame header)."));
      return FALSE;
    }
  if (reader->buffer->len > 0)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The Connect stream was cut off in the middle of a frame (%u bytes "
                     "left over); the connection dropped or a proxy truncated the body. "
                     "Retry the operation."), reader->buffer->len);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */

static const struct {
  const char *code;
  guint       status;
  int         error;
} codes[] = {
  { "canceled",            499, SANDBOX_ERROR_FAILED },
  { "unknown",             500, SANDBOX_ERROR_FAILED },
  { "invalid_argument",    400, SANDBOX_ERROR_INVALID_ARGUMENT },
  { "deadline_exceeded",   504, SANDBOX_ERROR_TIMEOUT },
  { "not_found",           404, SANDBOX_ERROR_NOT_FOUND },
  { "already_exists",      409, SANDBOX_ERROR_INVALID_ARGUMENT },
  { "permission_denied",   403, SANDBOX_ERROR_AUTHENTICATION },
  { "resource_exhausted",  429, SANDBOX_ERROR_RATE_LIMITED },
  { "failed_precondition", 400, SANDBOX_ERROR_INVALID_ARGUMENT },
  { "aborted",             409, SANDBOX_ERROR_FAILED },
  { "out_of_range",        400, SANDBOX_ERROR_INVALID_ARGUMENT },
  { "unimplemented",       501, SANDBOX_ERROR_NOT_SUPPORTED },
  { "internal",            500, SANDBOX_ERROR_FAILED },
  { "unavailable",         503, SANDBOX_ERROR_UNAVAILABLE },
  { "data_loss",           500, SANDBOX_ERROR_FAILED },
  { "unauthenticated",     401, SANDBOX_ERROR_AUTHENTICATION },
};

guint
_sandbox_connect_code_to_status (const char *code)
{
  for (guint i = 0; code != NULL && i < G_N_ELEMENTS (codes); i++)
    if (strcmp (codes[i].code, code) == 0)
      return codes[i].status;
  return 500;
}

int
_sandbox_connect_code_to_error (const char *code)
{
  for (guint i = 0; code != NULL && i < G_N_ELEMENTS (codes); i++)
    if (strcmp (codes[i].code, code) == 0)
      return codes[i].error;
  return SANDBOX_ERROR_PROTOCOL;
}

static GError *
error_from_object (JsonObject  *object,
                   const char  *what,
                   char       **code_out)
{
  const char *code = NULL, *message = NULL;
  g_autofree char *shown_code = NULL, *shown_message = NULL;
  JsonNode *node;

  node = json_object_get_member (object, "code");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    code = json_node_get_string (node);
  node = json_object_get_member (object, "message");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    message = json_node_get_string (node);
  if (code == NULL)
    return NULL;
  if (code_out != NULL)
    *code_out = g_strdup (code);
  /* The server's words (a remote sandbox's, E2B's envd): shown escaped. */
  shown_code = _sandbox_display_text (code);
  shown_message = message != NULL ? _sandbox_display_text (message) : NULL;
  return g_error_new (SANDBOX_ERROR, _sandbox_connect_code_to_error (code),
                      _("%s failed with Connect error “%s”: %s"),
                      what, shown_code, shown_message ? shown_message : _("(no message)"));
}

static JsonNode *
parse_object (GBytes *payload)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len;
  const char *data = g_bytes_get_data (payload, &len);
  JsonNode *root;

  if (len == 0 || !json_parser_load_from_data (parser, data, (gssize) len, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_node_copy (root);
}

gboolean
_sandbox_connect_parse_end_stream (GBytes      *payload,
                                   const char  *what,
                                   char       **code,
                                   GError     **error)
{
  g_autoptr(JsonNode) root = parse_object (payload);
  JsonNode *err;
  GError *mapped;

  if (root == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("%s: the end of the Connect stream is not a JSON object; the server "
                     "is not speaking the Connect protocol."), what);
      return FALSE;
    }
  err = json_object_get_member (json_node_get_object (root), "error");
  if (err == NULL || JSON_NODE_HOLDS_NULL (err))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (err) ||
      (mapped = error_from_object (json_node_get_object (err), what, code)) == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("%s: the Connect stream ended with an error without a code."), what);
      return FALSE;
    }
  g_propagate_error (error, mapped);
  return FALSE;
}

GError *
_sandbox_connect_error_from_body (GBytes      *body,
                                  const char  *what,
                                  char       **code)
{
  g_autoptr(JsonNode) root = body ? parse_object (body) : NULL;

  if (root == NULL)
    return NULL;
  return error_from_object (json_node_get_object (root), what, code);
}
