/* libsandbox - Connect protocol framing (envelopes) and error codes
 *
 * The Connect protocol (connectrpc.com) frames every message of a
 * streaming call as an envelope: one flags byte, a 4-byte big-endian
 * length, then the payload. Flag 0x01 marks a compressed payload (never
 * used here), flag 0x02 the end-of-stream frame whose JSON payload carries
 * the error of the call, if any.
 *
 * The reader is incremental: feed it bytes as they arrive, take complete
 * frames out; at the end of the body it tells a clean end from a truncated
 * frame. It never allocates more than max_message bytes for one frame.
 *
 * Shared by the e2b backend and the E2B emulator; a fuzz target reads it.
 * Not installed, not scanned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

#include "sandbox-private.h"

G_BEGIN_DECLS

#define SANDBOX_CONNECT_FLAG_COMPRESSED  0x01
#define SANDBOX_CONNECT_FLAG_END_STREAM  0x02
#define SANDBOX_CONNECT_HEADER_SIZE      5
/* Default bound for one frame: envd sends chunks of at most 32 KiB. */
#define SANDBOX_CONNECT_DEFAULT_MAX_MESSAGE (4u * 1024u * 1024u)

typedef struct _SandboxConnectReader SandboxConnectReader;

/* Writing */
GBytes               *_sandbox_connect_envelope_new      (guint8         flags,
                                                          const void    *payload,
                                                          gsize          len);
GBytes               *_sandbox_connect_envelope_new_json (guint8         flags,
                                                          JsonNode      *node);

/* Reading */
SandboxConnectReader *_sandbox_connect_reader_new        (gsize          max_message);
void                  _sandbox_connect_reader_free       (SandboxConnectReader *reader);
/* Appends bytes. Fails (SANDBOX_ERROR_PROTOCOL) once a frame header is
 * invalid: compressed, unknown flags, or longer than max_message; the
 * reader then stays failed. */
gboolean              _sandbox_connect_reader_feed       (SandboxConnectReader *reader,
                                                          const void    *data,
                                                          gsize          len,
                                                          GError       **error);
/* Takes the next complete frame out, if there is one. */
gboolean              _sandbox_connect_reader_next       (SandboxConnectReader *reader,
                                                          guint8        *flags,
                                                          GBytes       **payload);
/* Whether an end-of-stream frame has been taken out. */
gboolean              _sandbox_connect_reader_got_end    (SandboxConnectReader *reader);
/* At the end of the body: fails with SANDBOX_ERROR_PROTOCOL if bytes of an
 * incomplete frame are left (a truncated stream). */
gboolean              _sandbox_connect_reader_finish     (SandboxConnectReader *reader,
                                                          GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SandboxConnectReader, _sandbox_connect_reader_free)

/* Errors */
/* HTTP status of a Connect code ("not_found" -> 404); 500 for unknown codes. */
guint                 _sandbox_connect_code_to_status    (const char    *code);
/* The SANDBOX_ERROR code a Connect code maps to. */
int                   _sandbox_connect_code_to_error     (const char    *code);
/* Parses an end-of-stream payload. TRUE when it carries no error;
 * otherwise sets @error (mapped code, the server's message, @what) and, if
 * asked, @code to the Connect code string. A payload that is not a JSON
 * object is a PROTOCOL error. */
gboolean              _sandbox_connect_parse_end_stream  (GBytes        *payload,
                                                          const char    *what,
                                                          char         **code,
                                                          GError       **error);
/* A unary error body {"code":"…","message":"…"} -> GError, or NULL if the
 * body is not a Connect error. */
GError               *_sandbox_connect_error_from_body   (GBytes        *body,
                                                          const char    *what,
                                                          char         **code);

G_END_DECLS
