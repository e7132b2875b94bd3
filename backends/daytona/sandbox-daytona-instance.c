/* libsandbox - one Daytona sandbox: exec, files, destroy
 *
 * Toolbox calls go to {toolboxProxyUrl}/{sandboxId}/... with the API's
 * headers. Exec: a session per command, the command started with runAsync,
 * its output followed live over the log WebSocket (stdout and stderr told
 * apart by the 0x01/0x02 x3 markers), then the exit code from the command's
 * status. Files: bulk-upload with a multipart body streamed from the local
 * files; a single file downloaded raw with GET files/download, several
 * with bulk-download, parsed as a multipart stream straight into them.
 * Facts: shared/specs/daytona-api.md §3.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "sandbox-daytona-private.h"

struct _SandboxDaytonaInstance
{
  SandboxInstance    parent_instance;

  SandboxRestClient *client;
  char              *toolbox;    /* {toolboxProxyUrl}/{id} */
  char              *workdir;    /* default cwd of commands, or NULL */
};

G_DEFINE_FINAL_TYPE (SandboxDaytonaInstance, sandbox_daytona_instance, SANDBOX_TYPE_INSTANCE)

SandboxInstance *
_sandbox_daytona_instance_new (SandboxDaytonaBackend *backend,
                               JsonObject            *dto,
                               const char            *workdir)
{
  SandboxDaytonaInstance *self;
  const char *id = _sandbox_json_get_string (dto, "id");
  const char *proxy = _sandbox_json_get_string (dto, "toolboxProxyUrl");
  SandboxRestClient *client = _sandbox_daytona_backend_get_client (backend);

  self = g_object_new (SANDBOX_TYPE_DAYTONA_INSTANCE, "id", id, "backend", backend, NULL);
  self->client = g_object_ref (client);
  self->workdir = g_strdup (workdir);
  if (proxy != NULL && *proxy != '\0')
    self->toolbox = g_strdup_printf ("%s%s%s", proxy, g_str_has_suffix (proxy, "/") ? "" : "/", id);
  else  /* servers before v0.148: the API's deprecated toolbox proxy */
    self->toolbox = g_strdup_printf ("%stoolbox/%s/toolbox",
                                     _sandbox_rest_client_get_base_url (client), id);
  _sandbox_daytona_instance_update (self, dto);
  return SANDBOX_INSTANCE (self);
}

void
_sandbox_daytona_instance_update (SandboxDaytonaInstance *self,
                                  JsonObject             *dto)
{
  g_autoptr(GHashTable) labels = _sandbox_daytona_labels_from_dto (dto);

  sandbox_instance_set_labels (SANDBOX_INSTANCE (self), labels);
  sandbox_instance_set_state (SANDBOX_INSTANCE (self),
                              _sandbox_daytona_state_from_string (_sandbox_json_get_string (dto, "state")));
}

static char *
toolbox_url (SandboxDaytonaInstance *self,
             const char             *format,
             ...) G_GNUC_PRINTF (2, 3);

static char *
toolbox_url (SandboxDaytonaInstance *self,
             const char             *format,
             ...)
{
  g_autofree char *rest = NULL;
  va_list args;

  va_start (args, format);
  rest = g_strdup_vprintf (format, args);
  va_end (args);
  return g_strconcat (self->toolbox, rest, NULL);
}

/* The toolbox's mkdir -p of @path (mode 0755, as mkdir's under umask 022). */
char *
_sandbox_daytona_instance_folder_url (SandboxDaytonaInstance *self,
                                      const char             *path)
{
  g_autofree char *quoted = _sandbox_daytona_quote_path (path);

  return toolbox_url (self, "/files/folder?path=%s&mode=0755", quoted);
}

/* ------------------------------------------------------------------ */
/* Exec                                                                */

typedef struct
{
  SandboxDaytonaInstance  *self;
  char                    *session;
  char                    *session_url;
  char                    *cmd_id;
  char                    *script;
  SandboxOutput           *output;
  SandboxDaytonaDemux      demux;
  SandboxDaytonaTrailer    trailer;
  SoupWebsocketConnection *ws;
  GSource                 *timeout;
  GCancellable            *cancellable;
  gulong                   cancel_id;
  gboolean                 timed_out;
  gboolean                 cancelled;
  gboolean                 finished;
  gboolean                 streamed;      /* output came over the WebSocket */
  gboolean                 gone_checked;  /* asked whether the sandbox still runs */
  gint64                   start;
  int                      exit_code;
  int                      exit_status;   /* as exec_finish () got it */
  SandboxExecResult       *outcome;
  GError                  *outcome_error;
} ExecData;

static void
exec_data_free (ExecData *data)
{
  g_free (data->session);
  g_free (data->session_url);
  g_free (data->cmd_id);
  g_free (data->script);
  _sandbox_daytona_trailer_clear (&data->trailer);
  g_clear_object (&data->output);
  g_clear_object (&data->ws);   /* handlers went in exec_finish */
  g_clear_object (&data->outcome);
  g_clear_error (&data->outcome_error);
  g_free (data);
}

static void
write_output (int           kind,
              const guint8 *buf,
              gsize         len,
              gpointer      user_data)
{
  ExecData *data = user_data;

  /* Never blocks: a WebSocket cannot be paused, the bytes wait there. */
  if (len > 0)
    _sandbox_output_write (data->output, kind == 2, buf, len);
}

/* What the log stream carries: stdout without the script's trailer. */
static void
emit_output (int           kind,
             const guint8 *buf,
             gsize         len,
             gpointer      user_data)
{
  ExecData *data = user_data;

  if (kind == 2)
    write_output (kind, buf, len, data);
  else
    _sandbox_daytona_trailer_feed (&data->trailer, buf, len, write_output, data);
}

void
_sandbox_daytona_trailer_init (SandboxDaytonaTrailer *trailer,
                               const char            *nonce)
{
  trailer->prefix = g_strdup_printf ("\036%s:", nonce);
  trailer->held = g_byte_array_new ();
  trailer->seen = FALSE;
  trailer->status = 0;
}

void
_sandbox_daytona_trailer_clear (SandboxDaytonaTrailer *trailer)
{
  g_clear_pointer (&trailer->prefix, g_free);
  g_clear_pointer (&trailer->held, g_byte_array_unref);
}

/* At most three digits: a shell's $? is 0-255. */
#define TRAILER_MAX_DIGITS 3

void
_sandbox_daytona_trailer_feed (SandboxDaytonaTrailer *trailer,
                               const guint8          *chunk,
                               gsize                  chunk_len,
                               SandboxDaytonaEmit     emit,
                               gpointer               user_data)
{
  g_autoptr(GByteArray) all = g_byte_array_sized_new (trailer->held->len + chunk_len);
  gsize plen = strlen (trailer->prefix);
  const guint8 *buf;
  gsize len, i = 0, start = 0;

  g_byte_array_append (all, trailer->held->data, trailer->held->len);
  g_byte_array_append (all, chunk, chunk_len);
  g_byte_array_set_size (trailer->held, 0);
  buf = all->data;
  len = all->len;
  if (len == 0)
    return; /* nothing held and an empty chunk: all->data may be NULL */

  while (i < len)
    {
      const guint8 *mark = memchr (buf + i, '\036', len - i);
      gsize p, q, avail, digits = 0;

      if (mark == NULL)
        break;
      p = mark - buf;
      avail = len - p;
      if (avail < plen)
        {
          if (memcmp (buf + p, trailer->prefix, avail) == 0)
            {
              /* Perhaps the start of the trailer: kept for the next bytes. */
              emit (1, buf + start, p - start, user_data);
              g_byte_array_append (trailer->held, buf + p, avail);
              return;
            }
          i = p + 1;
          continue;
        }
      if (memcmp (buf + p, trailer->prefix, plen) != 0)
        {
          i = p + 1;
          continue;
        }
      for (q = p + plen; q < len && g_ascii_isdigit (buf[q]) && digits <= TRAILER_MAX_DIGITS; q++)
        digits++;
      if (q == len && digits <= TRAILER_MAX_DIGITS)
        {
          emit (1, buf + start, p - start, user_data);
          g_byte_array_append (trailer->held, buf + p, len - p);
          return;
        }
      if (digits >= 1 && digits <= TRAILER_MAX_DIGITS && buf[q] == '\036')
        {
          emit (1, buf + start, p - start, user_data);
          trailer->status = (int) g_ascii_strtoll ((const char *) buf + p + plen, NULL, 10);
          trailer->seen = TRUE;
          i = start = q + 1;
          continue;
        }
      i = p + 1;
    }
  emit (1, buf + start, len - start, user_data);
}

/* At the end of the stream: what was held was output after all. */
void
_sandbox_daytona_trailer_flush (SandboxDaytonaTrailer *trailer,
                                SandboxDaytonaEmit     emit,
                                gpointer               user_data)
{
  if (trailer->held->len > 0)
    emit (1, trailer->held->data, trailer->held->len, user_data);
  g_byte_array_set_size (trailer->held, 0);
}

/* Splits a chunk of the log stream at the 3-byte stdout/stderr markers;
 * a marker cut by the end of a frame is kept for the next one. */
void
_sandbox_daytona_demux (SandboxDaytonaDemux *demux,
                        const guint8        *chunk,
                        gsize                chunk_len,
                        SandboxDaytonaEmit   emit,
                        gpointer             user_data)
{
  g_autoptr(GByteArray) all = g_byte_array_sized_new (demux->npartial + chunk_len);
  const guint8 *buf;
  gsize len, i = 0, start = 0;

  g_byte_array_append (all, demux->partial, demux->npartial);
  g_byte_array_append (all, chunk, chunk_len);
  demux->npartial = 0;
  buf = all->data;
  len = all->len;

  while (i < len)
    {
      guint8 c = buf[i];

      if (c == 0x01 || c == 0x02)
        {
          if (i + 3 <= len)
            {
              if (buf[i + 1] == c && buf[i + 2] == c)
                {
                  emit (demux->kind, buf + start, i - start, user_data);
                  demux->kind = c;
                  i += 3;
                  start = i;
                  continue;
                }
            }
          else
            {
              gboolean maybe = TRUE;

              for (gsize j = i; j < len; j++)
                maybe = maybe && buf[j] == c;
              if (maybe)
                {
                  emit (demux->kind, buf + start, i - start, user_data);
                  demux->npartial = len - i;
                  memcpy (demux->partial, buf + i, demux->npartial);
                  return;
                }
            }
        }
      i++;
    }
  emit (demux->kind, buf + start, len - start, user_data);
}

/* At the end of the stream: a cut marker was output after all. */
void
_sandbox_daytona_demux_flush (SandboxDaytonaDemux *demux,
                              SandboxDaytonaEmit   emit,
                              gpointer             user_data)
{
  if (demux->npartial > 0)
    emit (demux->kind, demux->partial, demux->npartial, user_data);
  demux->npartial = 0;
}

static void
exec_return (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);

  if (data->outcome_error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->outcome_error));
  else
    _sandbox_task_return_object (task, data->outcome);
  g_object_unref (task);   /* the reference the running command held */
}

/* Everything the command wrote has been written (or could not be). */
static void
exec_output_flushed (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  GTask *task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!_sandbox_output_flush_finish (data->output, result, &error) && data->outcome_error == NULL)
    data->outcome_error = error;
  else
    g_clear_error (&error);
  if (data->outcome_error == NULL)
    data->outcome = _sandbox_output_steal_result (data->output, data->timed_out ? -1 : data->exit_status,
                                                  data->timed_out ? SIGKILL : 0, data->timed_out,
                                                  data->start);
  exec_return (task);
}

/* The command is gone: wait for its output to be written, without
 * blocking (the caller may read its stream slowly), unless cancelled. */
static void
exec_wait_output (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);

  if (data->cancelled || data->outcome_error != NULL)
    _sandbox_output_cancel (data->output);
  _sandbox_output_flush_async (data->output, data->cancellable, exec_output_flushed, task);
}

static void
exec_session_deleted (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, NULL);

  exec_wait_output (user_data);
}

/* An exec or a terminal command ends: its time-out and cancellable stop
 * firing, and its websocket stops calling back (DATA is what its handlers
 * were connected with) and is closed if still open. */
static void
stop_waiting (GSource                 **timeout,
              GCancellable             *cancellable,
              gulong                   *cancel_id,
              SoupWebsocketConnection  *ws,
              gpointer                  data)
{
  if (*timeout != NULL)
    {
      g_source_destroy (*timeout);
      g_clear_pointer (timeout, g_source_unref);
    }
  if (cancellable != NULL && *cancel_id != 0)
    {
      g_cancellable_disconnect (cancellable, *cancel_id);
      *cancel_id = 0;
    }
  if (ws != NULL)
    {
      g_signal_handlers_disconnect_by_data (ws, data);
      if (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
    }
}

/* Completes the command (once): deletes its session, which also kills what
 * still runs, then returns and drops the running command's reference. The
 * delete is waited for: the command is really gone when exec returns, and
 * a synchronous call's main context is not iterated after it returns, so a
 * request left in flight there would not be sent. */
static void
exec_finish (GTask  *task,
             int     exit_status,
             GError *error)
{
  ExecData *data = g_task_get_task_data (task);

  if (data->finished)
    {
      g_clear_error (&error);
      return;
    }
  data->finished = TRUE;
  stop_waiting (&data->timeout, data->cancellable, &data->cancel_id, data->ws, task);
  _sandbox_daytona_demux_flush (&data->demux, emit_output, data);
  _sandbox_daytona_trailer_flush (&data->trailer, write_output, data);

  if (data->cancelled)
    {
      g_clear_error (&error);
      data->outcome_error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                         _("The command was cancelled and killed"));
    }
  else if (error != NULL)
    data->outcome_error = error;
  data->exit_status = exit_status;

  if (data->session_url != NULL)
    _sandbox_rest_client_call_async (data->self->client, "DELETE", data->session_url, NULL,
                                     SANDBOX_REST_IDEMPOTENT, NULL, exec_session_deleted, task);
  else
    exec_wait_output (task);
}

static void exec_poll_status (GTask *task);

/* The exit code of a GET .../command/{id} reply; FALSE while the command
 * runs (no exitCode, or null). A code that is no integer in int's range
 * reads as 255 rather than being cast. */
gboolean
_sandbox_daytona_parse_exit_code (JsonNode *node,
                                  int      *exit_code)
{
  JsonNode *code = NULL;

  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    code = json_object_get_member (json_node_get_object (node), "exitCode");
  if (code == NULL || JSON_NODE_HOLDS_NULL (code))
    return FALSE;
  if (JSON_NODE_HOLDS_VALUE (code) && json_node_get_value_type (code) == G_TYPE_INT64 &&
      json_node_get_int (code) >= G_MININT && json_node_get_int (code) <= G_MAXINT)
    *exit_code = (int) json_node_get_int (code);
  else
    *exit_code = 255;
  return TRUE;
}

static void
exec_got_logs (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);

  if (data->finished)
    {
      g_clear_error (&error);
      return;
    }
  if (error == NULL && node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      const char *out = _sandbox_json_get_string (json_node_get_object (node), "stdout");
      const char *err = _sandbox_json_get_string (json_node_get_object (node), "stderr");

      if (out != NULL)
        emit_output (1, (const guint8 *) out, strlen (out), data);
      if (err != NULL)
        emit_output (2, (const guint8 *) err, strlen (err), data);
    }
  exec_finish (task, data->exit_code, error);
}

/* After a status poll failed: a sandbox that stopped or is gone explains it. */
static void
exec_gone_checked (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  exec_finish (task, -1, _sandbox_cloud_check_gone_finish (result));
}

static void
exec_got_status (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);

  if (data->finished)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL && !data->gone_checked && !data->cancelled && !data->timed_out &&
      (status == 400 || status == 404 || status == 409 || status >= 500))
    {
      /* The toolbox refuses while a sandbox stops; ask the API why. */
      data->gone_checked = TRUE;
      _sandbox_cloud_check_gone_async (data->self->client, &_sandbox_daytona_api, SANDBOX_INSTANCE (data->self),
                                       error, exec_gone_checked, g_object_ref (task));
      return;
    }
  if (error != NULL)
    {
      exec_finish (task, -1, error);
      return;
    }
  if (!_sandbox_daytona_parse_exit_code (node, &data->exit_code))
    {
      /* Still running: the stream closed early, or there was none. */
      _sandbox_cloud_task_later (task, data->streamed ? 100 : 200, exec_poll_status,
                                 "[libsandbox] daytona exec poll");
      return;
    }
  if (!data->streamed)
    {
      /* No live stream: fetch the whole log now. */
      g_autofree char *url = g_strdup_printf ("%s/command/%s/logs", data->session_url, data->cmd_id);

      _sandbox_rest_client_call_async (data->self->client, "GET", url, NULL, SANDBOX_REST_IDEMPOTENT,
                                       NULL, exec_got_logs, g_object_ref (task));
      return;
    }
  exec_finish (task, data->exit_code, NULL);
}

/* Does not take @task. */
static void
exec_poll_status (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);
  g_autofree char *url = g_strdup_printf ("%s/command/%s", data->session_url, data->cmd_id);

  if (data->finished)
    return;
  _sandbox_rest_client_call_async (data->self->client, "GET", url, NULL, SANDBOX_REST_IDEMPOTENT,
                                   NULL, exec_got_status, g_object_ref (task));
}

static void
ws_message (SoupWebsocketConnection *ws,
            SoupWebsocketDataType    type,
            GBytes                  *message,
            GTask                   *task)
{
  ExecData *data = g_task_get_task_data (task);
  gsize len;
  const guint8 *buf = g_bytes_get_data (message, &len);

  if (!data->finished)
    _sandbox_daytona_demux (&data->demux, buf, len, emit_output, data);
}

static void
ws_closed (SoupWebsocketConnection *ws,
           GTask                   *task)
{
  ExecData *data = g_task_get_task_data (task);

  g_signal_handlers_disconnect_by_data (ws, task);
  if (data->finished)
    return;
  /* The script's trailer came: the command has ended with that status,
   * no need to ask for it. Else (a stream cut early) its status says. */
  _sandbox_daytona_demux_flush (&data->demux, emit_output, data);
  if (data->trailer.seen)
    {
      data->exit_code = data->trailer.status;
      exec_finish (task, data->exit_code, NULL);
      return;
    }
  exec_poll_status (task);
}

static void
ws_connected (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  SoupWebsocketConnection *ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);

  if (data->finished)
    {
      if (ws != NULL)
        {
          soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
          g_object_unref (ws);
        }
      return;
    }
  if (ws == NULL)
    {
      g_debug ("Daytona log stream unavailable (%s): polling instead", error->message);
      exec_poll_status (task);
      return;
    }
  data->ws = ws;
  data->streamed = TRUE;
  /* No reference: the running command's one outlives the handlers, which
   * exec_finish disconnects. */
  g_signal_connect (ws, "message", G_CALLBACK (ws_message), task);
  g_signal_connect (ws, "closed", G_CALLBACK (ws_closed), task);
}

static void
exec_started (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  const char *cmd_id = NULL;
  g_autofree char *url = NULL;
  g_autoptr(SoupMessage) msg = NULL;

  if (data->finished)
    {
      g_clear_error (&error);
      return;
    }
  if (error == NULL)
    {
      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        cmd_id = _sandbox_json_get_string (json_node_get_object (node), "cmdId");
      if (cmd_id == NULL)
        error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                             _("Daytona's reply to POST %s/exec has no “cmdId”."), data->session_url);
    }
  if (error != NULL)
    {
      exec_finish (task, -1, error);
      return;
    }
  data->cmd_id = g_strdup (cmd_id);

  url = g_strdup_printf ("%s/command/%s/logs?follow=true", data->session_url, data->cmd_id);
  /* libsoup upgrades an http(s) URL itself (ws(s) on the wire). */
  msg = _sandbox_rest_client_new_message (data->self->client, "GET", url);
  if (msg == NULL)
    {
      exec_poll_status (task);
      return;
    }
  soup_session_websocket_connect_async (_sandbox_rest_client_get_session (data->self->client), msg,
                                        NULL, NULL, G_PRIORITY_DEFAULT, NULL, ws_connected,
                                        g_object_ref (task));
}

static GError *stopped_error (SandboxInstance *instance, GError *error);

static void
session_created (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  g_autoptr(JsonBuilder) b = NULL;
  g_autoptr(JsonNode) body = NULL;
  g_autofree char *url = NULL;

  if (data->finished)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL)
    {
      g_clear_pointer (&data->session_url, g_free);  /* nothing to delete */
      exec_finish (task, -1, stopped_error (SANDBOX_INSTANCE (data->self), error));
      return;
    }
  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "command");
  json_builder_add_string_value (b, data->script);
  json_builder_set_member_name (b, "runAsync");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  url = g_strdup_printf ("%s/exec", data->session_url);
  _sandbox_rest_client_call_async (data->self->client, "POST", url, body, SANDBOX_REST_NONE, NULL,
                                   exec_started, g_object_ref (task));
}

static gboolean
exec_timed_out (gpointer user_data)
{
  g_autoptr(GTask) task = g_object_ref (user_data);
  ExecData *data = g_task_get_task_data (task);

  g_debug ("Command in Daytona sandbox ran out of time; deleting its session");
  data->timed_out = TRUE;
  exec_finish (task, -1, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
exec_cancel_idle (gpointer user_data)
{
  GTask *task = user_data;
  ExecData *data = g_task_get_task_data (task);

  if (!data->finished)
    {
      data->cancelled = TRUE;
      exec_finish (task, -1, NULL);
    }
  return G_SOURCE_REMOVE;
}

/* The session's shell runs the script (the daemon sources it). A command
 * of it that dies of a signal other than SIGINT or SIGPIPE makes that
 * shell print a job status line on its stderr, which is the command's:
 * "cmd.sh: line 1: 4 Killed  env 'TOKEN=…' …", the whole command line
 * with the values of its environment (secrets passed with --env NAME
 * among them) in the command's output, and in a Metaflow task's logs when
 * its step was killed (out of memory). The script runs in a group whose
 * stderr is /dev/null, where the shell's own messages go; the command's
 * (and cd's) stderr is the group's, through fd 9, which the command does
 * not keep. */
static char *
build_script (SandboxDaytonaInstance *self,
              SandboxCommand         *command,
              const char             *nonce)
{
  const char * const *argv = sandbox_command_get_argv (command);
  const char *cwd = sandbox_command_get_cwd (command) ? sandbox_command_get_cwd (command) : self->workdir;
  GHashTable *env = sandbox_command_get_env (command);
  GBytes *input = sandbox_command_get_stdin (command);
  g_autoptr(GString) script = g_string_new (NULL);

  if (cwd != NULL)
    {
      g_autofree char *q = g_shell_quote (cwd);
      g_string_append_printf (script, "cd %s 2>&9 && ", q);
    }
  if (env != NULL && g_hash_table_size (env) > 0)
    {
      g_string_append (script, "env");
      _sandbox_cloud_shell_append_env (script, env);
      g_string_append_c (script, ' ');
    }
  _sandbox_cloud_shell_append_words (script, argv);
  g_string_append (script, " 2>&9 9>&-; } 9>&2 2>/dev/null");
  g_string_prepend (script, "{ ");
  if (input != NULL)
    {
      gsize len;
      const guint8 *buf = g_bytes_get_data (input, &len);
      g_autofree char *b64 = g_base64_encode (buf, len);

      g_string_prepend (script, " | base64 -d | ");
      g_string_prepend (script, b64);
      g_string_prepend (script, "printf %s ");
    }
  else
    g_string_append (script, " < /dev/null");
  /* The status, in the log stream (SandboxDaytonaTrailer) and as the
   * script's own (what the command's status request answers). */
  g_string_append_printf (script, "; __lsx=$?; printf '\\036%s:%%d\\036' \"$__lsx\"; (exit \"$__lsx\")", nonce);
  return g_string_free (g_steal_pointer (&script), FALSE);
}

/* The toolbox proxy's answer for a sandbox that is not started (stopped,
 * perhaps by another process): "failed to resolve container IP … Is the
 * Sandbox started?". Takes @error; returns it, or the same remedy as
 * refuse_if_stopped with the instance marked STOPPED. */
static GError *
stopped_error (SandboxInstance *instance,
               GError          *error)
{
  const char *id = sandbox_instance_get_id (instance);

  if (error->domain != SANDBOX_ERROR || strstr (error->message, "Is the Sandbox started") == NULL)
    return error;
  g_error_free (error);
  sandbox_instance_set_state (instance, SANDBOX_INSTANCE_STATE_STOPPED);
  return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                      _("The Daytona sandbox %s is stopped (paused): start it first "
                        "(sandboxctl resume %s, or sandbox_instance_resume())."), id, id);
}

/* A stopped sandbox's toolbox does not answer: say so instead. */
static gboolean
refuse_if_stopped (SandboxInstance *instance,
                   GTask           *task)
{
  const char *id = sandbox_instance_get_id (instance);

  if (sandbox_instance_get_state (instance) != SANDBOX_INSTANCE_STATE_STOPPED)
    return FALSE;
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                           _("The Daytona sandbox %s is stopped (paused): start it first "
                             "(sandboxctl resume %s, or sandbox_instance_resume())."), id, id);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* A command on a terminal: the toolbox's PTY session                  */

/* Daytona's PTY session is a login shell on a terminal, not a command of
 * our choosing. So the command is typed into it: a session created with
 * lazyStart (its shell starts when we connect, so nothing it prints is
 * lost), its WebSocket (GET …/process/pty/ID/connect), and once the
 * daemon says "connected", one line: a marker the shell prints, then
 * `exec` of the command, so that the session's end is the command's. What
 * the terminal showed before the marker (prompt, the typed line's echo)
 * is dropped. Input goes over the WebSocket; a resize is POST …/resize,
 * Ctrl-C (and Ctrl-\, Ctrl-Z) are the keys, SIGKILL/SIGTERM/SIGHUP a
 * DELETE of the session (the daemon kills its processes). These
 * operations are queued from any thread and run in order on the exec's
 * context, one HTTP call at a time, so a resize is applied before the
 * keys typed after it. */

typedef enum
{
  TTY_OP_INPUT,
  TTY_OP_RESIZE,
  TTY_OP_KILL,
} TtyOpKind;

typedef struct
{
  TtyOpKind  kind;
  GBytes    *bytes;
  guint      rows, cols;
} TtyOp;

typedef struct
{
  gatomicrefcount          ref;
  GMutex                   lock;
  GQueue                   ops;        /* TtyOp; under lock */
  gboolean                 accepting;  /* under lock: the command takes input and signals */
  gboolean                 scheduled;  /* under lock: a pump is due on the context */

  /* Only used in the exec's context: */
  GTask                   *task;       /* held while the command runs */
  SandboxDaytonaInstance  *self;
  GMainContext            *context;
  SandboxCommand          *command;
  gulong                   handlers[3];
  char                    *id;
  char                    *url;        /* {toolbox}/process/pty/{id} */
  char                    *marker;
  SandboxOutput           *output;
  SoupWebsocketConnection *ws;
  GByteArray              *head;       /* what the terminal showed before the marker */
  gboolean                 created;    /* the session exists: delete it at the end */
  gboolean                 typed;
  gboolean                 started;    /* the marker was seen */
  gboolean                 calling;    /* an HTTP call of an op is on its way */
  gboolean                 killed;     /* we deleted the session (SIGKILL/TERM/HUP) */
  gboolean                 gone_checked;
  gboolean                 have_exit;
  int                      exit_code;
  char                    *exit_reason;
  GSource                 *timeout;
  GCancellable            *cancellable;
  gulong                   cancel_id;
  gboolean                 timed_out;
  gboolean                 cancelled;
  gboolean                 finished;
  gint64                   start;
  GError                  *error;
  SandboxExecResult       *outcome;
} DaytonaTty;

static void
tty_op_free (TtyOp *op)
{
  g_clear_pointer (&op->bytes, g_bytes_unref);
  g_free (op);
}

static DaytonaTty *
tty_ref (DaytonaTty *tty)
{
  g_atomic_ref_count_inc (&tty->ref);
  return tty;
}

static void
tty_unref (gpointer data)
{
  DaytonaTty *tty = data;

  if (!g_atomic_ref_count_dec (&tty->ref))
    return;
  g_queue_clear_full (&tty->ops, (GDestroyNotify) tty_op_free);
  g_mutex_clear (&tty->lock);
  g_clear_object (&tty->self);
  g_clear_pointer (&tty->context, g_main_context_unref);
  g_clear_object (&tty->command);
  g_free (tty->id);
  g_free (tty->url);
  g_free (tty->marker);
  g_clear_object (&tty->output);
  g_clear_object (&tty->ws);
  g_byte_array_unref (tty->head);
  g_free (tty->exit_reason);
  g_clear_error (&tty->error);
  g_clear_object (&tty->outcome);
  g_free (tty);
}

static void
tty_unref_closure (gpointer data, GClosure *closure)
{
  tty_unref (data);
}

static void tty_pump (DaytonaTty *tty);

static gboolean
tty_pump_cb (gpointer data)
{
  DaytonaTty *tty = data;

  g_mutex_lock (&tty->lock);
  tty->scheduled = FALSE;
  g_mutex_unlock (&tty->lock);
  tty_pump (tty);
  return G_SOURCE_REMOVE;
}

/* Any thread: queues OP (taken) for the exec's context; FALSE when the
 * command does not run (any more). */
static gboolean
tty_queue (DaytonaTty *tty,
           TtyOp      *op)
{
  gboolean ok;

  g_mutex_lock (&tty->lock);
  ok = tty->accepting;
  if (ok)
    {
      g_queue_push_tail (&tty->ops, op);
      if (!tty->scheduled)
        {
          g_autoptr(GSource) source = g_idle_source_new ();

          tty->scheduled = TRUE;
          g_source_set_callback (source, tty_pump_cb, tty_ref (tty), tty_unref);
          g_source_set_static_name (source, "[libsandbox] daytona pty");
          g_source_attach (source, tty->context);
        }
    }
  g_mutex_unlock (&tty->lock);
  if (!ok)
    tty_op_free (op);
  return ok;
}

static void
tty_on_resize (SandboxCommand *command,
               guint           rows,
               guint           cols,
               DaytonaTty     *tty)
{
  TtyOp *op = g_new0 (TtyOp, 1);

  op->kind = TTY_OP_RESIZE;
  op->rows = rows;
  op->cols = cols;
  tty_queue (tty, op);
}

static gboolean
tty_on_input (SandboxCommand *command,
              GBytes         *bytes,
              DaytonaTty     *tty)
{
  TtyOp *op = g_new0 (TtyOp, 1);

  op->kind = TTY_OP_INPUT;
  op->bytes = g_bytes_ref (bytes);
  return tty_queue (tty, op);
}

/* The daemon has no signal call: the keys of the terminal's line
 * discipline make SIGINT, SIGQUIT and SIGTSTP; deleting the session
 * kills (SIGKILL) what runs in it. */
static gboolean
tty_on_signal (SandboxCommand *command,
               int             signum,
               DaytonaTty     *tty)
{
  const char *key = _sandbox_cloud_tty_signal_key (signum);
  TtyOp *op;

  if (key == NULL && signum != SIGKILL && signum != SIGTERM && signum != SIGHUP)
    return FALSE;
  op = g_new0 (TtyOp, 1);
  if (key != NULL)
    {
      op->kind = TTY_OP_INPUT;
      op->bytes = g_bytes_new_static (key, 1);
    }
  else
    op->kind = TTY_OP_KILL;
  return tty_queue (tty, op);
}

static void
tty_return (DaytonaTty *tty)
{
  GTask *task = g_steal_pointer (&tty->task);

  if (tty->error != NULL)
    g_task_return_error (task, g_steal_pointer (&tty->error));
  else
    _sandbox_task_return_object (task, tty->outcome);
  g_object_unref (task);
  tty_unref (tty);   /* the running command's */
}

static void
tty_output_flushed (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  DaytonaTty *tty = user_data;
  GError *error = NULL;
  int exit_status = tty->exit_code, term_signal = 0;

  if (!_sandbox_output_flush_finish (tty->output, result, &error) && tty->error == NULL)
    tty->error = error;
  else
    g_clear_error (&error);
  /* The daemon reports a shell killed by signal N as 128 + N, with a
   * reason ("Ctrl+C", "SIGKILL", "signal N"); "non-zero exit" is an exit. */
  if (tty->exit_code > 128 && tty->exit_reason != NULL &&
      strcmp (tty->exit_reason, "non-zero exit") != 0)
    {
      term_signal = tty->exit_code - 128;
      exit_status = -1;
    }
  if (tty->timed_out)
    {
      exit_status = -1;
      term_signal = SIGKILL;
    }
  if (tty->error == NULL)
    tty->outcome = _sandbox_output_steal_result (tty->output, exit_status, term_signal, tty->timed_out,
                                                 tty->start);
  tty_return (tty);
}

static void
tty_wait_output (DaytonaTty *tty)
{
  if (tty->cancelled || tty->error != NULL)
    _sandbox_output_cancel (tty->output);
  _sandbox_output_flush_async (tty->output, tty->cancellable, tty_output_flushed, tty);
}

static void
tty_deleted (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, NULL);

  tty_wait_output (user_data);
}

/* Ends the command (once): no more input or signals, the WebSocket closed,
 * the session deleted unless it ended by itself (which also kills what
 * still runs), then the result once the output has been written. Takes
 * @error. */
static void
tty_finish (DaytonaTty *tty,
            GError     *error)
{
  if (tty->finished)
    {
      g_clear_error (&error);
      return;
    }
  tty->finished = TRUE;
  g_mutex_lock (&tty->lock);
  tty->accepting = FALSE;
  g_mutex_unlock (&tty->lock);
  for (guint i = 0; i < G_N_ELEMENTS (tty->handlers); i++)
    g_clear_signal_handler (&tty->handlers[i], tty->command);
  stop_waiting (&tty->timeout, tty->cancellable, &tty->cancel_id, tty->ws, tty);
  if (!tty->started && tty->head->len > 0 && error == NULL && !tty->cancelled)
    /* It ended before the marker (the shell could not run the line):
     * what it showed is all there is. */
    _sandbox_output_write (tty->output, FALSE, tty->head->data, tty->head->len);

  if (tty->cancelled)
    {
      g_clear_error (&error);
      tty->error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                _("The command was cancelled and killed"));
    }
  else if (error != NULL)
    tty->error = error;

  if (tty->created && (!tty->have_exit || tty->timed_out || tty->cancelled))
    _sandbox_rest_client_call_async (tty->self->client, "DELETE", tty->url, NULL,
                                     SANDBOX_REST_IDEMPOTENT, NULL, tty_deleted, tty);
  else
    tty_wait_output (tty);
}

static void
tty_op_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  DaytonaTty *tty = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);

  if (error != NULL)
    g_debug ("Daytona PTY %s: %s", tty->id, error->message);
  tty->calling = FALSE;
  tty_pump (tty);
  tty_unref (tty);
}

/* On the exec's context: runs the queued operations, in order, once the
 * command runs; an HTTP call holds back those after it until it is answered. */
static void
tty_pump (DaytonaTty *tty)
{
  while (!tty->finished && tty->started && !tty->calling)
    {
      TtyOp *op;

      g_mutex_lock (&tty->lock);
      op = g_queue_pop_head (&tty->ops);
      g_mutex_unlock (&tty->lock);
      if (op == NULL)
        return;
      if (op->kind == TTY_OP_INPUT)
        {
          gsize len;
          const void *p = g_bytes_get_data (op->bytes, &len);

          /* In frames of at most 32 KiB: the daemon reads messages of up to
           * 64 KiB only. */
          for (gsize off = 0; off < len; off += 32 * 1024)
            if (soup_websocket_connection_get_state (tty->ws) == SOUP_WEBSOCKET_STATE_OPEN)
              soup_websocket_connection_send_binary (tty->ws, (const guint8 *) p + off,
                                                     MIN (32 * 1024, len - off));
        }
      else if (op->kind == TTY_OP_RESIZE)
        {
          g_autoptr(JsonBuilder) b = json_builder_new ();
          g_autoptr(JsonNode) body = NULL;
          g_autofree char *url = g_strdup_printf ("%s/resize", tty->url);

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "cols");
          json_builder_add_int_value (b, CLAMP (op->cols, 1, 1000));
          json_builder_set_member_name (b, "rows");
          json_builder_add_int_value (b, CLAMP (op->rows, 1, 1000));
          json_builder_end_object (b);
          body = json_builder_get_root (b);
          tty->calling = TRUE;
          /* An absolute size: safe to send again after a dropped connection. */
          _sandbox_rest_client_call_async (tty->self->client, "POST", url, body, SANDBOX_REST_IDEMPOTENT,
                                           NULL, tty_op_done, tty_ref (tty));
        }
      else
        {
          tty->calling = TRUE;
          tty->killed = TRUE;
          _sandbox_rest_client_call_async (tty->self->client, "DELETE", tty->url, NULL,
                                           SANDBOX_REST_IDEMPOTENT, NULL, tty_op_done, tty_ref (tty));
        }
      tty_op_free (op);
    }
}

/* The exit of the session, from the "exited" control message or the
 * close frame's reason: {"exitCode": N, "exitReason": "…"}. */
static gboolean
tty_take_exit (DaytonaTty *tty,
               const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *object;
  JsonNode *code;

  if (text == NULL || !json_parser_load_from_data (parser, text, -1, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return FALSE;
  object = json_node_get_object (root);
  code = json_object_get_member (object, "exitCode");
  if (code == NULL || !JSON_NODE_HOLDS_VALUE (code) || json_node_get_value_type (code) != G_TYPE_INT64)
    return FALSE;
  tty->have_exit = TRUE;
  /* Not cast: 2^32 + 147 would read as 147 (a code out of range is 255). */
  tty->exit_code = json_node_get_int (code) >= 0 && json_node_get_int (code) <= 255
                   ? (int) json_node_get_int (code) : 255;
  g_free (tty->exit_reason);
  tty->exit_reason = g_strdup (_sandbox_json_get_string (object, "exitReason"));
  return TRUE;
}

static void
tty_type_command (DaytonaTty *tty)
{
  const char * const *argv = sandbox_command_get_argv (tty->command);
  const char *cwd = sandbox_command_get_cwd (tty->command) ? sandbox_command_get_cwd (tty->command)
                                                              : tty->self->workdir;
  GHashTable *env = sandbox_command_get_env (tty->command);
  g_autoptr(GString) line = g_string_new (NULL);
  g_autofree char *half = g_strndup (tty->marker, 12);

  /* The marker in two halves: the echo of the line does not hold it whole. */
  g_string_append_printf (line, " printf '%%s%%s\\n' %s %s;", half, tty->marker + 12);
  if (cwd != NULL)
    {
      g_autofree char *q = g_shell_quote (cwd);
      g_string_append_printf (line, " cd %s || exit 1;", q);
    }
  g_string_append (line, " exec env");
  _sandbox_cloud_shell_append_env (line, env);
  g_string_append (line, " --");
  _sandbox_cloud_shell_append_words (line, argv);
  /* An interactive shell survives a failed exec. */
  g_string_append (line, "; exit 127\n");
  tty->typed = TRUE;
  soup_websocket_connection_send_binary (tty->ws, line->str, line->len);
}

static void
tty_ws_message (SoupWebsocketConnection *ws,
                SoupWebsocketDataType    type,
                GBytes                  *message,
                DaytonaTty              *tty)
{
  gsize len;
  const guint8 *buf = g_bytes_get_data (message, &len);

  if (tty->finished)
    return;
  if (type == SOUP_WEBSOCKET_DATA_TEXT && len > 0 && buf[0] == '{')
    {
      g_autofree char *text = g_strndup ((const char *) buf, len);
      g_autoptr(JsonParser) parser = json_parser_new ();
      JsonNode *root;

      if (json_parser_load_from_data (parser, text, -1, NULL) &&
          (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root) &&
          g_strcmp0 (_sandbox_json_get_string (json_node_get_object (root), "type"), "control") == 0)
        {
          JsonObject *control = json_node_get_object (root);
          const char *status = _sandbox_json_get_string (control, "status");

          if (g_strcmp0 (status, "connected") == 0 && !tty->typed)
            tty_type_command (tty);
          else if (g_strcmp0 (status, "exited") == 0)
            tty_take_exit (tty, text);
          else if (g_strcmp0 (status, "error") == 0)
            {
              g_autofree char *said = _sandbox_display_text (_sandbox_json_get_string (control, "error"));

              tty_finish (tty, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                                            _("The Daytona sandbox %s refused the terminal: %s. Check that "
                                              "the sandbox is started, or run the command without a "
                                              "terminal (no “tty”, no “-t”)."),
                                            sandbox_instance_get_id (SANDBOX_INSTANCE (tty->self)), said));
            }
          return;
        }
    }
  if (tty->started)
    {
      _sandbox_output_write (tty->output, FALSE, buf, len);
      return;
    }
  g_byte_array_append (tty->head, buf, len);
  {
    const char *found = g_strstr_len ((const char *) tty->head->data, tty->head->len, tty->marker);
    const char *nl;

    if (found == NULL)
      return;
    nl = memchr (found, '\n', tty->head->len - (found - (const char *) tty->head->data));
    if (nl == NULL)
      return;
    nl++;
    tty->started = TRUE;
    _sandbox_output_write (tty->output, FALSE, (const guint8 *) nl,
                           tty->head->len - (nl - (const char *) tty->head->data));
    g_byte_array_set_size (tty->head, 0);
    tty_pump (tty);
  }
}

/* A killed shell we did not kill, or a cut stream: a sandbox that stopped
 * (auto-stop: the library's time-out) or is gone explains it. */
static void
tty_gone_checked (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  DaytonaTty *tty = user_data;
  GError *error = _sandbox_cloud_check_gone_finish (result);

  if (tty->have_exit && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    g_clear_error (&error);   /* still there: the exit stands */
  tty_finish (tty, error);
  tty_unref (tty);
}

static void
tty_ws_closed (SoupWebsocketConnection *ws,
               DaytonaTty              *tty)
{
  GError *error = NULL;

  if (!tty->have_exit)
    tty_take_exit (tty, soup_websocket_connection_get_close_data (ws));
  if (!tty->have_exit && soup_websocket_connection_get_close_code (ws) == SOUP_WEBSOCKET_CLOSE_NORMAL &&
      soup_websocket_connection_get_close_data (ws) == NULL)
    {
      /* As the SDK: a normal close without data is a clean exit. */
      tty->have_exit = TRUE;
      tty->exit_code = 0;
    }
  if (!tty->have_exit)
    {
      const char *id = sandbox_instance_get_id (SANDBOX_INSTANCE (tty->self));
      const char *said = soup_websocket_connection_get_close_data (ws);
      /* The toolbox's words (a process of the sandbox): shown escaped. */
      g_autofree char *shown = said != NULL ? _sandbox_display_text (said) : NULL;

      error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                           _("The terminal's connection to the Daytona sandbox %s was cut before the "
                             "command ended (WebSocket close %u%s%s). The sandbox may have stopped: "
                             "check it with “sandboxctl list”, then run the command again."),
                           id, soup_websocket_connection_get_close_code (ws),
                           shown ? ": " : "", shown ? shown : "");
    }
  else if (tty->exit_code == 128 + SIGKILL && !tty->killed && !tty->timed_out && !tty->cancelled)
    error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "killed, the sandbox still runs");
  if (error != NULL && !tty->gone_checked)
    {
      g_signal_handlers_disconnect_by_data (ws, tty);
      tty->gone_checked = TRUE;
      _sandbox_cloud_check_gone_async (tty->self->client, &_sandbox_daytona_api,
                                       SANDBOX_INSTANCE (tty->self), error, tty_gone_checked,
                                       tty_ref (tty));
      return;
    }
  tty_finish (tty, error);
}

static void
tty_ws_connected (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  DaytonaTty *tty = user_data;
  g_autoptr(GError) error = NULL;
  SoupWebsocketConnection *ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);

  if (tty->finished)
    {
      if (ws != NULL)
        {
          soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
          g_object_unref (ws);
        }
      tty_unref (tty);
      return;
    }
  if (ws == NULL)
    {
      const char *id = sandbox_instance_get_id (SANDBOX_INSTANCE (tty->self));

      tty_finish (tty, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                                    _("The Daytona toolbox of sandbox %s refused the terminal's "
                                      "WebSocket (%s). Its daemon may predate PTY sessions or a proxy "
                                      "may block WebSockets: run the command without a terminal (no "
                                      "“tty”, no “-t”), or recreate the sandbox from a current snapshot."),
                                    id, error->message));
      tty_unref (tty);
      return;
    }
  tty->ws = ws;
  soup_websocket_connection_set_keepalive_interval (ws, 20);
  soup_websocket_connection_set_max_incoming_payload_size (ws, 0);
  g_signal_connect (ws, "message", G_CALLBACK (tty_ws_message), tty);
  g_signal_connect (ws, "closed", G_CALLBACK (tty_ws_closed), tty);
  tty_unref (tty);
}

static void
tty_created (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  DaytonaTty *tty = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  static const char *protocols[] = { "X-Daytona-Pty-Exit-Control", NULL };
  g_autofree char *url = NULL;
  g_autoptr(SoupMessage) msg = NULL;

  if (tty->finished)
    {
      g_clear_error (&error);
      tty_unref (tty);
      return;
    }
  if (error != NULL)
    {
      if (error->domain == SANDBOX_ERROR && strstr (error->message, "404") != NULL)
        g_prefix_error (&error, _("The Daytona toolbox has no PTY sessions (its daemon predates them): "
                                  "run the command without a terminal (no “tty”, no “-t”). "));
      tty_finish (tty, stopped_error (SANDBOX_INSTANCE (tty->self), error));
      tty_unref (tty);
      return;
    }
  tty->created = TRUE;
  url = g_strdup_printf ("%s/connect", tty->url);
  msg = _sandbox_rest_client_new_message (tty->self->client, "GET", url);
  if (msg == NULL)
    {
      tty_finish (tty, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                                    _("Cannot make a WebSocket request for %s: check the Daytona "
                                      "toolbox URL."), url));
      tty_unref (tty);
      return;
    }
  soup_session_websocket_connect_async (_sandbox_rest_client_get_session (tty->self->client), msg,
                                        NULL, (char **) protocols, G_PRIORITY_DEFAULT, NULL,
                                        tty_ws_connected, tty);
}

static gboolean
tty_timed_out (gpointer user_data)
{
  DaytonaTty *tty = user_data;

  g_debug ("Command on a terminal in Daytona sandbox ran out of time; deleting its PTY session");
  tty->timed_out = TRUE;
  tty_finish (tty, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
tty_cancel_idle (gpointer user_data)
{
  DaytonaTty *tty = user_data;

  if (!tty->finished)
    {
      tty->cancelled = TRUE;
      tty_finish (tty, NULL);
    }
  return G_SOURCE_REMOVE;
}

static void
tty_exec (SandboxDaytonaInstance *self,
          SandboxCommand         *command,
          GCancellable           *cancellable,
          GTask                  *task)
{
  DaytonaTty *tty = g_new0 (DaytonaTty, 1);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;
  g_autofree char *random = g_uuid_string_random ();
  g_autofree char *nonce = g_uuid_string_random ();
  g_autofree char *url = NULL;
  guint rows = 0, cols = 0;

  g_atomic_ref_count_init (&tty->ref);   /* the running command's */
  g_mutex_init (&tty->lock);
  g_queue_init (&tty->ops);
  tty->task = g_object_ref (task);
  tty->self = g_object_ref (self);
  tty->context = g_main_context_ref (g_task_get_context (task));
  tty->command = g_object_ref (command);
  tty->id = g_strdup_printf ("libsandbox-%s", random);
  tty->url = toolbox_url (self, "/process/pty/%s", tty->id);
  g_strdelimit (nonce, "-", '_');
  tty->marker = g_strdup_printf ("__libsandbox_%s__", nonce);
  tty->output = _sandbox_output_new (command);
  tty->head = g_byte_array_new ();
  tty->start = g_get_monotonic_time ();
  tty->accepting = TRUE;
  if (sandbox_command_get_stdin (command) != NULL)
    {
      /* The command's stdin bytes: typed first, once it runs. */
      TtyOp *op = g_new0 (TtyOp, 1);

      op->kind = TTY_OP_INPUT;
      op->bytes = g_bytes_ref (sandbox_command_get_stdin (command));
      g_queue_push_tail (&tty->ops, op);
    }
  tty->handlers[0] = g_signal_connect_data (command, "resize-tty", G_CALLBACK (tty_on_resize),
                                            tty_ref (tty), tty_unref_closure, 0);
  tty->handlers[1] = g_signal_connect_data (command, "send-input", G_CALLBACK (tty_on_input),
                                            tty_ref (tty), tty_unref_closure, 0);
  tty->handlers[2] = g_signal_connect_data (command, "send-signal", G_CALLBACK (tty_on_signal),
                                            tty_ref (tty), tty_unref_closure, 0);

  if (sandbox_command_get_timeout_ms (command) > 0)
    {
      tty->timeout = g_timeout_source_new (sandbox_command_get_timeout_ms (command));
      g_source_set_callback (tty->timeout, tty_timed_out, tty, NULL);
      g_source_set_static_name (tty->timeout, "[libsandbox] daytona pty timeout");
      g_source_attach (tty->timeout, tty->context);
    }
  if (cancellable != NULL)
    {
      tty->cancellable = cancellable;
      tty->cancel_id = _sandbox_cancellable_connect_in (cancellable, tty->context, tty_cancel_idle,
                                                        tty_ref (tty), tty_unref);
    }

  sandbox_command_get_tty_size (command, &rows, &cols);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, tty->id);
  json_builder_set_member_name (b, "cols");
  json_builder_add_int_value (b, cols > 0 ? CLAMP (cols, 1, 1000) : 80);
  json_builder_set_member_name (b, "rows");
  json_builder_add_int_value (b, rows > 0 ? CLAMP (rows, 1, 1000) : 24);
  /* Its shell starts when we connect: nothing it shows is lost. */
  json_builder_set_member_name (b, "lazyStart");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  url = toolbox_url (self, "/process/pty");
  _sandbox_rest_client_call_async (self->client, "POST", url, body, SANDBOX_REST_NONE, NULL,
                                   tty_created, tty_ref (tty));
}

static void
sandbox_daytona_instance_exec (SandboxInstance *instance,
                               SandboxCommand  *command,
                               GCancellable    *cancellable,
                               GTask           *task)
{
  SandboxDaytonaInstance *self = SANDBOX_DAYTONA_INSTANCE (instance);
  ExecData *data = g_new0 (ExecData, 1);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;
  g_autofree char *url = NULL;
  g_autofree char *random = g_uuid_string_random ();

  if (g_task_return_error_if_cancelled (task) || refuse_if_stopped (instance, task))
    {
      g_free (data);
      return;
    }
  if (sandbox_command_get_tty (command))
    {
      g_free (data);
      tty_exec (self, command, cancellable, task);
      return;
    }
  data->self = self;
  data->start = g_get_monotonic_time ();
  data->session = g_strdup_printf ("libsandbox-%s", random);
  data->session_url = toolbox_url (self, "/process/session/%s", data->session);
  {
    g_autofree char *nonce = g_uuid_string_random ();

    g_strdelimit (nonce, "-", 'x');
    data->script = build_script (self, command, nonce);
    _sandbox_daytona_trailer_init (&data->trailer, nonce);
  }
  data->output = _sandbox_output_new (command);
  data->demux.kind = 1;
  g_task_set_task_data (task, data, (GDestroyNotify) exec_data_free);
  g_object_ref (task);   /* held by the running command, dropped by exec_finish */

  if (sandbox_command_get_timeout_ms (command) > 0)
    {
      data->timeout = g_timeout_source_new (sandbox_command_get_timeout_ms (command));
      g_source_set_callback (data->timeout, exec_timed_out, task, NULL);
      g_source_set_static_name (data->timeout, "[libsandbox] daytona exec timeout");
      g_source_attach (data->timeout, g_task_get_context (task));
    }
  if (cancellable != NULL)
    {
      data->cancellable = cancellable;
      /* Finished in the task's context; disconnected by exec_finish (). */
      data->cancel_id = _sandbox_cancellable_connect_in (cancellable, g_task_get_context (task),
                                                         exec_cancel_idle, g_object_ref (task),
                                                         g_object_unref);
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sessionId");
  json_builder_add_string_value (b, data->session);
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  url = toolbox_url (self, "/process/session");
  _sandbox_rest_client_call_async (self->client, "POST", url, body, SANDBOX_REST_NONE, NULL,
                                   session_created, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* Upload: a multipart body streamed from the local files              */

/* A GInputStream over a list of segments: literal bytes, or a local file
 * opened when the reader gets to it. File reads run in GIO's worker
 * threads, a megabyte at a time: libsoup sends the body through
 * g_output_stream_splice_async(), which asks for 8 KiB per read, and one
 * worker-thread round trip per 8 KiB (futex wake-ups, and on a busy
 * machine a wait for a CPU each) made a 1 GiB upload 2x slower than curl.
 * An async read that the read-ahead buffer can answer returns at once. */
#define BODY_READ_AHEAD (1 << 20)
#define DAYTONA_TYPE_MULTIPART_BODY (daytona_multipart_body_get_type ())
G_DECLARE_FINAL_TYPE (DaytonaMultipartBody, daytona_multipart_body, DAYTONA, MULTIPART_BODY, GInputStream)

typedef struct
{
  GBytes *bytes;   /* or: */
  GFile  *file;
} Segment;

struct _DaytonaMultipartBody
{
  GInputStream  parent_instance;
  GArray       *segments;   /* Segment */
  guint         current;
  gsize         offset;     /* in the current bytes segment */
  GInputStream *open;       /* the current file */
  guint8       *ahead;      /* read-ahead buffer, BODY_READ_AHEAD bytes */
  gsize         ahead_pos;
  gsize         ahead_len;
  GError       *ahead_error; /* met after the buffered bytes */
};

G_DEFINE_FINAL_TYPE (DaytonaMultipartBody, daytona_multipart_body, G_TYPE_INPUT_STREAM)

static void
segment_clear (Segment *segment)
{
  g_clear_pointer (&segment->bytes, g_bytes_unref);
  g_clear_object (&segment->file);
}

static gssize
multipart_body_read_segments (DaytonaMultipartBody  *self,
                              void                  *buffer,
                              gsize                  count,
                              GCancellable          *cancellable,
                              GError               **error)
{
  while (self->current < self->segments->len)
    {
      Segment *segment = &g_array_index (self->segments, Segment, self->current);

      if (segment->bytes != NULL)
        {
          gsize size;
          const guint8 *data = g_bytes_get_data (segment->bytes, &size);
          gsize n = MIN (count, size - self->offset);

          if (n > 0)
            {
              memcpy (buffer, data + self->offset, n);
              self->offset += n;
              return n;
            }
        }
      else
        {
          gssize n;

          if (self->open == NULL)
            {
              self->open = G_INPUT_STREAM (g_file_read (segment->file, cancellable, error));
              if (self->open == NULL)
                return -1;
            }
          n = g_input_stream_read (self->open, buffer, count, cancellable, error);
          if (n != 0)
            return n;
          g_input_stream_close (self->open, NULL, NULL);
          g_clear_object (&self->open);
        }
      self->current++;
      self->offset = 0;
    }
  return 0;
}

/* Copies what the read-ahead buffer holds, up to COUNT bytes. */
static gsize
multipart_body_take (DaytonaMultipartBody *self,
                     void                 *buffer,
                     gsize                 count)
{
  gsize n = MIN (count, self->ahead_len - self->ahead_pos);

  memcpy (buffer, self->ahead + self->ahead_pos, n);
  self->ahead_pos += n;
  return n;
}

/* Blocking (a worker thread runs it for an async read): answers from the
 * read-ahead buffer, refilled with up to BODY_READ_AHEAD bytes when empty. */
static gssize
daytona_multipart_body_read (GInputStream  *stream,
                             void          *buffer,
                             gsize          count,
                             GCancellable  *cancellable,
                             GError       **error)
{
  DaytonaMultipartBody *self = DAYTONA_MULTIPART_BODY (stream);

  if (count == 0)
    return 0;
  if (self->ahead_pos < self->ahead_len)
    return (gssize) multipart_body_take (self, buffer, count);
  if (self->ahead_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->ahead_error));
      return -1;
    }
  if (count >= BODY_READ_AHEAD)
    return multipart_body_read_segments (self, buffer, count, cancellable, error);
  if (self->ahead == NULL)
    self->ahead = g_malloc (BODY_READ_AHEAD);
  self->ahead_pos = self->ahead_len = 0;
  while (self->ahead_len < BODY_READ_AHEAD)
    {
      GError *local = NULL;
      gssize n = multipart_body_read_segments (self, self->ahead + self->ahead_len,
                                               BODY_READ_AHEAD - self->ahead_len, cancellable, &local);

      if (n < 0 && self->ahead_len == 0)
        {
          g_propagate_error (error, local);
          return -1;
        }
      if (n < 0)
        {
          /* The bytes before the error go first; the next read fails. */
          self->ahead_error = local;
          break;
        }
      if (n == 0)
        break;
      self->ahead_len += (gsize) n;
    }
  return (gssize) multipart_body_take (self, buffer, count);
}

typedef struct
{
  void  *buffer;
  gsize  count;
} BodyRead;

static void
multipart_body_read_thread (GTask        *task,
                            gpointer      source_object,
                            gpointer      task_data,
                            GCancellable *cancellable)
{
  BodyRead *op = task_data;
  GError *error = NULL;
  gssize n = daytona_multipart_body_read (source_object, op->buffer, op->count, cancellable, &error);

  if (n < 0)
    g_task_return_error (task, error);
  else
    g_task_return_int (task, n);
}

/* An async read the read-ahead buffer can answer does not go to a thread.
 * (GInputStream's own read_async cannot be chained up to: it takes a
 * stream with its own read_async for a pollable one.) */
static void
daytona_multipart_body_read_async (GInputStream        *stream,
                                   void                *buffer,
                                   gsize                count,
                                   int                  io_priority,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  DaytonaMultipartBody *self = DAYTONA_MULTIPART_BODY (stream);
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  BodyRead *op;

  g_task_set_source_tag (task, daytona_multipart_body_read_async);
  g_task_set_priority (task, io_priority);
  if (self->ahead_pos < self->ahead_len)
    {
      g_task_return_int (task, (gssize) multipart_body_take (self, buffer, count));
      return;
    }
  op = g_new (BodyRead, 1);
  op->buffer = buffer;
  op->count = count;
  g_task_set_task_data (task, op, g_free);
  g_task_run_in_thread (task, multipart_body_read_thread);
}

static gssize
daytona_multipart_body_read_finish (GInputStream  *stream,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), -1);
  return g_task_propagate_int (G_TASK (result), error);
}

static gboolean
daytona_multipart_body_close (GInputStream  *stream,
                              GCancellable  *cancellable,
                              GError       **error)
{
  DaytonaMultipartBody *self = DAYTONA_MULTIPART_BODY (stream);

  if (self->open != NULL)
    g_input_stream_close (self->open, NULL, NULL);
  g_clear_object (&self->open);
  return TRUE;
}

static void
daytona_multipart_body_finalize (GObject *object)
{
  DaytonaMultipartBody *self = DAYTONA_MULTIPART_BODY (object);

  g_clear_object (&self->open);
  g_array_unref (self->segments);
  g_free (self->ahead);
  g_clear_error (&self->ahead_error);
  G_OBJECT_CLASS (daytona_multipart_body_parent_class)->finalize (object);
}

static void
daytona_multipart_body_class_init (DaytonaMultipartBodyClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = daytona_multipart_body_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = daytona_multipart_body_read;
  G_INPUT_STREAM_CLASS (klass)->read_async = daytona_multipart_body_read_async;
  G_INPUT_STREAM_CLASS (klass)->read_finish = daytona_multipart_body_read_finish;
  G_INPUT_STREAM_CLASS (klass)->close_fn = daytona_multipart_body_close;
}

static void
daytona_multipart_body_init (DaytonaMultipartBody *self)
{
  self->segments = g_array_new (FALSE, TRUE, sizeof (Segment));
  g_array_set_clear_func (self->segments, (GDestroyNotify) segment_clear);
}

static void
body_add_text (DaytonaMultipartBody *self,
               GString              *text,
               goffset              *length)
{
  Segment segment = { g_bytes_new (text->str, text->len), NULL };

  *length += text->len;
  g_array_append_val (self->segments, segment);
  g_string_truncate (text, 0);
}

typedef struct
{
  GFile *local;
  char  *remote;
  goffset size;
} FileItem;

static void
file_item_free (FileItem *item)
{
  g_clear_object (&item->local);
  g_free (item->remote);
  g_free (item);
}

/* File transfers are idempotent (an upload overwrites, a download reads):
 * a transient failure sends the request again, per the REST client's
 * policy (backoff, Retry-After, a capped number of attempts). */
typedef void (*TransferFunc) (GTask *task);

/* The first member of an upload's and a download's task data. */
typedef struct
{
  guint        attempt;   /* of the request, 0 for the first */
} Transfer;

typedef struct
{
  Transfer     transfer;
  GFile       *source;
  char        *destination;
  GPtrArray   *dirs;    /* remote directories to create, parents first */
  GPtrArray   *files;   /* FileItem */
  guint        index;
  SoupMessage *msg;     /* the files request in flight */
} UploadData;

static void
upload_data_free (UploadData *data)
{
  g_clear_object (&data->source);
  g_free (data->destination);
  g_clear_pointer (&data->dirs, g_ptr_array_unref);
  g_clear_pointer (&data->files, g_ptr_array_unref);
  g_clear_object (&data->msg);
  g_free (data);
}

static gboolean
walk (GFile         *local,
      const char    *remote,
      UploadData    *data,
      GCancellable  *cancellable,
      GError       **error)
{
  g_autoptr(GFileInfo) info = g_file_query_info (local, G_FILE_ATTRIBUTE_STANDARD_TYPE ","
                                                 G_FILE_ATTRIBUTE_STANDARD_SIZE ","
                                                 G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                 G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable, error);
  GFileType type;

  if (info == NULL)
    return FALSE;
  type = g_file_info_get_file_type (info);
  if (type == G_FILE_TYPE_DIRECTORY)
    {
      g_autoptr(GFileEnumerator) children = NULL;

      g_ptr_array_add (data->dirs, g_strdup (remote));
      children = g_file_enumerate_children (local, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                            G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable, error);
      if (children == NULL)
        return FALSE;
      while (TRUE)
        {
          GFileInfo *child_info;
          GFile *child;
          g_autofree char *child_remote = NULL;

          if (!g_file_enumerator_iterate (children, &child_info, &child, cancellable, error))
            return FALSE;
          if (child_info == NULL)
            break;
          child_remote = g_build_path ("/", remote, g_file_info_get_name (child_info), NULL);
          if (!walk (child, child_remote, data, cancellable, error))
            return FALSE;
        }
    }
  else if (type == G_FILE_TYPE_REGULAR)
    {
      FileItem *item = g_new0 (FileItem, 1);

      item->local = g_object_ref (local);
      item->remote = g_strdup (remote);
      item->size = g_file_info_get_size (info);
      g_ptr_array_add (data->files, item);
    }
  else
    g_debug ("Not uploading %s: only regular files and directories are copied",
             g_file_peek_path (local));
  return TRUE;
}

static void
upload_walk_thread (GTask        *task,
                    gpointer      source_object,
                    gpointer      task_data,
                    GCancellable *cancellable)
{
  UploadData *data = task_data;
  GError *error = NULL;

  if (!g_file_query_exists (data->source, cancellable))
    {
      g_autofree char *name = g_file_get_parse_name (data->source);
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("Cannot upload %s: it does not exist."), name);
      return;
    }
  if (!walk (data->source, data->destination, data, cancellable, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void upload_next_dir (GTask *task);
static void upload_files (GTask *task);

static gboolean
transfer_retry (GTask        *task,
                TransferFunc  func,
                SoupMessage  *msg,
                const GError *error)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  Transfer *transfer = g_task_get_task_data (task);
  guint delay_ms = 0;

  if (!_sandbox_rest_client_should_retry (self->client, SANDBOX_REST_IDEMPOTENT, transfer->attempt, msg, error,
                                          &delay_ms) ||
      g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    return FALSE;
  transfer->attempt++;
  _sandbox_cloud_task_later (task, delay_ms, func, "[libsandbox] daytona transfer retry");
  return TRUE;
}

static void
upload_sent (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  UploadData *data = g_task_get_task_data (task);
  SoupMessage *msg = data->msg;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  guint status;

  if (body == NULL)
    {
      if (transfer_retry (task, upload_files, NULL, error))
        return;
      g_task_return_error (task, _sandbox_rest_transport_error_new (DAYTONA_PROVIDER, "POST",
                                                                    "files/bulk-upload", error));
      return;
    }
  status = soup_message_get_status (msg);
  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      if (transfer_retry (task, upload_files, msg, NULL))
        return;
      g_task_return_error (task, _sandbox_rest_error_new (DAYTONA_PROVIDER, "POST", "files/bulk-upload",
                                                          status, body, NULL));
      return;
    }
  (void) self;
  g_task_return_boolean (task, TRUE);
}

/* Appends the .path part of file @index and the head of its .file part
 * (the file's bytes and "\r\n" follow). The path itself goes in the body
 * of the .path part, which the server reads; in the filename parameter,
 * quotes, backslashes and line breaks are percent-encoded so that a file
 * name cannot end the header or add one. */
void
_sandbox_daytona_multipart_file_head (GString    *text,
                                      const char *boundary,
                                      guint       index,
                                      const char *remote)
{
  g_autoptr(GString) quoted = g_string_new (remote);

  g_string_replace (quoted, "%", "%25", 0);
  g_string_replace (quoted, "\"", "%22", 0);
  g_string_replace (quoted, "\\", "%5C", 0);
  g_string_replace (quoted, "\r", "%0D", 0);
  g_string_replace (quoted, "\n", "%0A", 0);
  /* The .path part must come before its .file part (spec §3.6). */
  g_string_append_printf (text, "--%s\r\nContent-Disposition: form-data; name=\"files[%u].path\"\r\n\r\n%s\r\n",
                          boundary, index, remote);
  g_string_append_printf (text, "--%s\r\nContent-Disposition: form-data; name=\"files[%u].file\"; "
                          "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                          boundary, index, quoted->str);
}

static void
on_wrote_body_data (SoupMessage *msg,
                    guint        chunk_size,
                    gpointer     user_data)
{
  sandbox_instance_add_transferred (SANDBOX_INSTANCE (user_data), chunk_size);
}

static void
upload_files (GTask *task)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  UploadData *data = g_task_get_task_data (task);
  g_autoptr(DaytonaMultipartBody) stream = g_object_new (DAYTONA_TYPE_MULTIPART_BODY, NULL);
  g_autofree char *boundary = g_uuid_string_random ();
  g_autofree char *type = g_strdup_printf ("multipart/form-data; boundary=%s", boundary);
  g_autofree char *url = toolbox_url (self, "/files/bulk-upload");
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(SoupMessage) msg = NULL;
  goffset length = 0;

  if (data->files->len == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  for (guint i = 0; i < data->files->len; i++)
    {
      FileItem *item = g_ptr_array_index (data->files, i);
      Segment segment = { NULL, g_object_ref (item->local) };

      _sandbox_daytona_multipart_file_head (text, boundary, i, item->remote);
      body_add_text (stream, text, &length);
      g_array_append_val (stream->segments, segment);
      length += item->size;
      g_string_append (text, "\r\n");
    }
  g_string_append_printf (text, "--%s--\r\n", boundary);
  body_add_text (stream, text, &length);

  msg = _sandbox_rest_client_new_message (self->client, "POST", url);
  soup_message_set_request_body (msg, type, G_INPUT_STREAM (stream), length);
  /* Progress in bytes of the body: the files and their small part heads. */
  sandbox_instance_set_transfer_total (SANDBOX_INSTANCE (self), length);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (on_wrote_body_data), self);
  g_set_object (&data->msg, msg);
  soup_session_send_and_read_async (_sandbox_rest_client_get_session (self->client), msg,
                                    G_PRIORITY_DEFAULT, g_task_get_cancellable (task), upload_sent,
                                    g_object_ref (task));
}

static void
upload_dir_made (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  UploadData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);

  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  data->index++;
  upload_next_dir (task);
}

static void
upload_next_dir (GTask *task)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  UploadData *data = g_task_get_task_data (task);
  g_autofree char *quoted = NULL;
  g_autofree char *url = NULL;

  if (data->index >= data->dirs->len)
    {
      upload_files (task);
      return;
    }
  quoted = _sandbox_daytona_quote_path (g_ptr_array_index (data->dirs, data->index));
  url = toolbox_url (self, "/files/folder?path=%s&mode=0755", quoted);
  _sandbox_rest_client_call_async (self->client, "POST", url, NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (task), upload_dir_made, g_object_ref (task));
}

static void
upload_walked (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *walk_task = G_TASK (result);
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!g_task_propagate_boolean (walk_task, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  upload_next_dir (task);
}

static void
sandbox_daytona_instance_upload (SandboxInstance *instance,
                                 GFile           *source,
                                 const char      *destination,
                                 GCancellable    *cancellable,
                                 GTask           *task)
{
  UploadData *data;
  g_autoptr(GTask) walk_task = NULL;

  if (refuse_if_stopped (instance, task))
    return;
  data = g_new0 (UploadData, 1);
  data->source = g_object_ref (source);
  data->destination = g_strdup (destination);
  data->dirs = g_ptr_array_new_with_free_func (g_free);
  data->files = g_ptr_array_new_with_free_func ((GDestroyNotify) file_item_free);
  g_task_set_task_data (task, data, (GDestroyNotify) upload_data_free);

  /* Walking the local tree blocks: do it in a thread, into the same data. */
  walk_task = g_task_new (instance, cancellable, upload_walked, g_object_ref (task));
  g_task_set_task_data (walk_task, data, NULL);
  g_task_run_in_thread (walk_task, upload_walk_thread);
}

/* ------------------------------------------------------------------ */
/* Download: bulk-download's multipart reply streamed into local files */

typedef struct
{
  Transfer                 transfer;
  char                    *source;
  GFile                   *destination;
  GHashTable              *targets;   /* remote path -> GFile */
  GHashTable              *written;   /* the remote paths a part has brought */
  GQueue                   dirs;      /* remote directories still to list */
  SoupMessage             *msg;
  SoupMultipartInputStream *multipart;
  char                    *part_path;
  GError                  *part_error;
  gboolean                 part_is_error;
  GByteArray              *error_body;
  GOutputStream           *out;      /* the local file being written */
  GInputStream            *body;     /* the response */
  GError                  *outcome;
  guint                    received;
  gboolean                 probing;   /* @source fetched as a file before files/info */
} DownloadData;

static void
download_data_free (DownloadData *data)
{
  g_free (data->source);
  g_clear_object (&data->destination);
  g_hash_table_unref (data->targets);
  g_hash_table_unref (data->written);
  g_queue_clear_full (&data->dirs, g_free);
  g_clear_object (&data->msg);
  g_clear_object (&data->multipart);
  g_free (data->part_path);
  g_clear_error (&data->part_error);
  g_byte_array_unref (data->error_body);
  g_clear_object (&data->out);
  g_clear_object (&data->body);
  g_clear_error (&data->outcome);
  g_free (data);
}

static void download_next_part (GTask *task);

static void
download_closed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DownloadData *data = g_task_get_task_data (task);

  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  if (data->outcome != NULL)
    g_task_return_error (task, g_steal_pointer (&data->outcome));
  else
    g_task_return_boolean (task, TRUE);
}

/* Completes the download with @error (or success), after closing the
 * response, so that libsoup finishes the message in this main context. */
static void
download_return (GTask  *task,
                 GError *error)
{
  DownloadData *data = g_task_get_task_data (task);
  /* The response itself: SoupMultipartInputStream would close it in a
   * worker thread, and libsoup must finish the message in this context. */
  GInputStream *stream = data->body;

  data->outcome = error;
  if (stream != NULL && !g_input_stream_is_closed (stream))
    {
      g_input_stream_close_async (stream, G_PRIORITY_DEFAULT, NULL, download_closed, g_object_ref (task));
      return;
    }
  if (data->outcome != NULL)
    g_task_return_error (task, g_steal_pointer (&data->outcome));
  else
    g_task_return_boolean (task, TRUE);
}

/* The next bytes of a download's body, or NULL once the task failed
 * because the connection of METHOD PATH broke. */
static GBytes *
download_read_finish (GTask        *task,
                      GObject      *stream,
                      GAsyncResult *result,
                      const char   *method,
                      const char   *path)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (stream), result, &error);

  if (bytes == NULL)
    download_return (task, _sandbox_rest_transport_error_new (DAYTONA_PROVIDER, method, path, error));
  return bytes;
}

/* Writes @bytes of a download's body to the local file and counts them;
 * FALSE once the task failed. */
static gboolean
download_write (GTask  *task,
                GBytes *bytes)
{
  DownloadData *data = g_task_get_task_data (task);
  GError *error = NULL;
  gsize len;
  const guint8 *buf = g_bytes_get_data (bytes, &len);

  if (!g_output_stream_write_all (data->out, buf, len, NULL, g_task_get_cancellable (task), &error))
    {
      download_return (task, error);
      return FALSE;
    }
  sandbox_instance_add_transferred (g_task_get_source_object (task), len);
  return TRUE;
}

/* Closes the local file written last, if any; FALSE once the task failed. */
static gboolean
download_close_file (GTask *task)
{
  DownloadData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (data->out != NULL && !g_output_stream_close (data->out, NULL, &error))
    {
      download_return (task, error);
      return FALSE;
    }
  g_clear_object (&data->out);
  return TRUE;
}

/* Parts are read with read_bytes_async, never spliced: a splice of a
 * non-pollable stream reads in a worker thread, and libsoup must see its
 * streams read in the context that sent the message. */
static void part_read (GObject *source, GAsyncResult *result, gpointer user_data);

static void
part_read_more (GTask        *task,
                GInputStream *part)
{
  g_input_stream_read_bytes_async (part, 65536, G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                   part_read, g_object_ref (task));
}

/* The error an "error" part of bulk-download describes (its body: JSON
 * {"message", "code"}, or anything else). */
GError *
_sandbox_daytona_part_error (const char   *path,
                             const guint8 *body,
                             gsize         len)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  const char *message = NULL, *code = NULL;
  g_autofree char *shown_path = NULL, *shown_message = NULL;

  if (len > 0 && len <= G_MAXSSIZE &&
      json_parser_load_from_data (parser, (const char *) body, (gssize) len, NULL) &&
      json_parser_get_root (parser) != NULL &&   /* NULL for a blank body */
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      message = _sandbox_json_get_string (json_node_get_object (json_parser_get_root (parser)), "message");
      code = _sandbox_json_get_string (json_node_get_object (json_parser_get_root (parser)), "code");
    }
  /* The provider's words and the sandbox's file name: shown escaped. */
  shown_path = _sandbox_display_text (path);
  shown_message = message != NULL ? _sandbox_display_text (message) : NULL;
  return g_error_new (SANDBOX_ERROR,
                      g_strcmp0 (code, "FILE_NOT_FOUND") == 0 ? SANDBOX_ERROR_NOT_FOUND : SANDBOX_ERROR_FAILED,
                      _("Daytona could not send %s: %s. Check the path in the sandbox."),
                      shown_path, shown_message ? shown_message : _("no reason given"));
}

static void
part_done (GTask *task)
{
  DownloadData *data = g_task_get_task_data (task);

  if (data->part_is_error)
    {
      if (data->part_error == NULL)
        data->part_error = _sandbox_daytona_part_error (data->part_path ? data->part_path : data->source,
                                                        data->error_body->data, data->error_body->len);
      g_byte_array_set_size (data->error_body, 0);
    }
  else if (!download_close_file (task))
    return;
  download_next_part (task);
}

static void
part_read (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DownloadData *data = g_task_get_task_data (task);
  g_autoptr(GBytes) bytes = download_read_finish (task, source, result, "POST", "files/bulk-download");

  if (bytes == NULL)
    return;
  if (g_bytes_get_size (bytes) == 0)
    {
      part_done (task);
      return;
    }
  if (data->part_is_error)
    {
      if (data->error_body->len < 65536)
        g_byte_array_append (data->error_body, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
    }
  else if (!download_write (task, bytes))
    return;
  part_read_more (task, G_INPUT_STREAM (source));
}

/* The name and filename parameters of a bulk-download part's
 * Content-Disposition (either may come back NULL). Not
 * soup_message_headers_get_content_disposition(): it keeps only the base
 * name of filename, and the filename here is the full path asked for. */
void
_sandbox_daytona_parse_part_headers (SoupMessageHeaders  *headers,
                                     char               **name,
                                     char               **filename)
{
  const char *disposition = headers ? soup_message_headers_get_one (headers, "Content-Disposition") : NULL;
  g_autoptr(GHashTable) params = NULL;

  *name = NULL;
  *filename = NULL;
  if (disposition == NULL)
    return;
  params = soup_header_parse_semi_param_list (disposition);
  *name = g_strdup (g_hash_table_lookup (params, "name"));
  *filename = g_strdup (g_hash_table_lookup (params, "filename"));
}

static void
got_part (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DownloadData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(GInputStream) part = soup_multipart_input_stream_next_part_finish (data->multipart, result, &error);
  SoupMessageHeaders *headers;
  g_autofree char *name = NULL;
  GFile *target;

  if (error != NULL)
    {
      download_return (task, _sandbox_rest_transport_error_new (DAYTONA_PROVIDER, "POST",
                                                                    "files/bulk-download", error));
      g_error_free (error);
      return;
    }
  if (part == NULL)
    {
      if (data->part_error != NULL)
        download_return (task, g_steal_pointer (&data->part_error));
      else if (data->received < g_hash_table_size (data->targets))
        download_return (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                                 _("Daytona's reply to POST files/bulk-download ended after %u of "
                                   "%u files. Retry the download."),
                                 data->received, g_hash_table_size (data->targets)));
      else
        download_return (task, NULL);
      return;
    }

  headers = soup_multipart_input_stream_get_headers (data->multipart);
  g_clear_pointer (&data->part_path, g_free);
  _sandbox_daytona_parse_part_headers (headers, &name, &data->part_path);

  if (g_strcmp0 (name, "error") == 0)
    {
      data->part_is_error = TRUE;
      part_read_more (task, part);
      return;
    }
  data->part_is_error = FALSE;
  target = data->part_path ? g_hash_table_lookup (data->targets, data->part_path) : NULL;
  if (g_strcmp0 (name, "file") != 0 || target == NULL)
    {
      g_autofree char *shown_name = _sandbox_display_text (name ? name : "?");
      g_autofree char *shown_path = _sandbox_display_text (data->part_path ? data->part_path : "?");

      download_return (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("Daytona's reply to POST files/bulk-download has a part (%s, %s) "
                                 "that was not asked for."), shown_name, shown_path));
      return;
    }
  /* The same file twice counted as two: a file asked for but never sent
   * made a download that said it was complete. */
  if (!g_hash_table_add (data->written, g_strdup (data->part_path)))
    {
      g_autofree char *shown_path = _sandbox_display_text (data->part_path);

      download_return (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("Daytona's reply to POST files/bulk-download has the file %s "
                                 "twice. Retry the download."), shown_path));
      return;
    }
  data->out = G_OUTPUT_STREAM (g_file_replace (target, NULL, FALSE, G_FILE_CREATE_NONE,
                                               g_task_get_cancellable (task), &error));
  if (data->out == NULL)
    {
      download_return (task, error);
      return;
    }
  data->received++;
  part_read_more (task, part);
}

static void
download_next_part (GTask *task)
{
  DownloadData *data = g_task_get_task_data (task);

  soup_multipart_input_stream_next_part_async (data->multipart, G_PRIORITY_DEFAULT,
                                               g_task_get_cancellable (task), got_part, g_object_ref (task));
}

static void download_files (GTask *task);
static void download_info (GTask *task);

/* The start of a download's answer to METHOD PATH: TRUE with the body in
 * data->body when it succeeded; else the request is sent again when that
 * may help, or the task failed, and FALSE. */
static gboolean
download_answered (GTask        *task,
                   GObject      *session,
                   GAsyncResult *result,
                   const char   *method,
                   const char   *path)
{
  DownloadData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GInputStream *stream = soup_session_send_finish (SOUP_SESSION (session), result, &error);
  g_autoptr(GBytes) body = NULL;
  guint status;

  if (stream == NULL)
    {
      if (!transfer_retry (task, download_files, NULL, error))
        download_return (task, _sandbox_rest_transport_error_new (DAYTONA_PROVIDER, method, path, error));
      return FALSE;
    }
  data->body = stream;
  status = soup_message_get_status (data->msg);
  if (SOUP_STATUS_IS_SUCCESSFUL (status))
    return TRUE;
  if (data->probing && status == SOUP_STATUS_BAD_REQUEST)
    {
      /* "path must be a file": a directory; files/info says so, and its
       * listing follows (download_info). */
      data->probing = FALSE;
      g_input_stream_close (data->body, NULL, NULL);
      g_clear_object (&data->body);
      g_hash_table_remove_all (data->targets);
      download_info (task);
      return FALSE;
    }
  body = g_input_stream_read_bytes (data->body, 65536, NULL, NULL);
  if (transfer_retry (task, download_files, data->msg, NULL))
    {
      g_input_stream_close (data->body, NULL, NULL);
      g_clear_object (&data->body);
      return FALSE;
    }
  download_return (task, _sandbox_rest_error_new (DAYTONA_PROVIDER, method, path, status, body, NULL));
  return FALSE;
}

static void
bulk_sent (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DownloadData *data = g_task_get_task_data (task);
  const char *type;
  g_autoptr(GHashTable) params = NULL;

  if (!download_answered (task, source, result, "POST", "files/bulk-download"))
    return;
  type = soup_message_headers_get_content_type (soup_message_get_response_headers (data->msg), &params);
  /* No boundary: libsoup would only warn and read nothing. */
  if (type == NULL || !g_str_has_prefix (type, "multipart/") ||
      params == NULL || g_hash_table_lookup (params, "boundary") == NULL)
    {
      /* The provider's header (libsoup keeps its control characters): escaped. */
      g_autofree char *shown = type ? _sandbox_display_text (type) : g_strdup (_("no content type"));

      download_return (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("Daytona answered POST files/bulk-download with %s instead of a "
                                 "multipart body. Retry; check DAYTONA_API_URL if it persists."),
                               shown));
      return;
    }
  data->multipart = soup_multipart_input_stream_new (data->msg, data->body);
  download_next_part (task);
}

/* One regular file: GET files/download answers with its bytes, read
 * straight into the local file (no multipart reply to parse: libsoup's
 * multipart reader scans it a byte at a time). */
static void
single_read (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GBytes) bytes = download_read_finish (task, source, result, "GET", "files/download");

  if (bytes == NULL)
    return;
  if (g_bytes_get_size (bytes) == 0)
    {
      if (download_close_file (task))
        download_return (task, NULL);
      return;
    }
  if (!download_write (task, bytes))
    return;
  g_input_stream_read_bytes_async (G_INPUT_STREAM (source), 65536, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), single_read, g_object_ref (task));
}

static void
single_sent (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DownloadData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GHashTableIter iter;
  gpointer target;

  if (!download_answered (task, source, result, "GET", "files/download"))
    return;
  g_hash_table_iter_init (&iter, data->targets);
  g_hash_table_iter_next (&iter, NULL, &target);
  data->out = G_OUTPUT_STREAM (g_file_replace (target, NULL, FALSE, G_FILE_CREATE_NONE,
                                               g_task_get_cancellable (task), &error));
  if (data->out == NULL)
    {
      download_return (task, g_steal_pointer (&error));
      return;
    }
  data->received = 1;
  /* The copy's size, when the answer says it. */
  if (soup_message_headers_get_encoding (soup_message_get_response_headers (data->msg)) ==
      SOUP_ENCODING_CONTENT_LENGTH)
    sandbox_instance_set_transfer_total (g_task_get_source_object (task),
                                         soup_message_headers_get_content_length (
                                           soup_message_get_response_headers (data->msg)));
  g_input_stream_read_bytes_async (data->body, 65536, G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                   single_read, g_object_ref (task));
}

static void
download_single (GTask *task)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  DownloadData *data = g_task_get_task_data (task);
  GHashTableIter iter;
  gpointer remote;
  g_autofree char *quoted = NULL;
  g_autofree char *url = NULL;

  g_hash_table_iter_init (&iter, data->targets);
  g_hash_table_iter_next (&iter, &remote, NULL);
  quoted = _sandbox_daytona_quote_path (remote);
  url = toolbox_url (self, "/files/download?path=%s", quoted);
  g_clear_object (&data->body);
  g_clear_object (&data->msg);
  data->msg = _sandbox_rest_client_new_message (self->client, "GET", url);
  soup_session_send_async (_sandbox_rest_client_get_session (self->client), data->msg, G_PRIORITY_DEFAULT,
                           g_task_get_cancellable (task), single_sent, g_object_ref (task));
}

static void
download_files (GTask *task)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  DownloadData *data = g_task_get_task_data (task);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL;
  g_autoptr(GBytes) body = NULL;
  gsize json_len;
  g_autofree char *url = toolbox_url (self, "/files/bulk-download");
  GHashTableIter iter;
  gpointer key;

  if (g_hash_table_size (data->targets) == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (g_hash_table_size (data->targets) == 1)
    {
      download_single (task);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "paths");
  json_builder_begin_array (b);
  g_hash_table_iter_init (&iter, data->targets);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    json_builder_add_string_value (b, key);
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  json_len = strlen (json);   /* before the steal below: argument order is unspecified */
  body = g_bytes_new_take (g_steal_pointer (&json), json_len);

  g_clear_object (&data->msg);
  data->msg = _sandbox_rest_client_new_message (self->client, "POST", url);
  soup_message_set_request_body_from_bytes (data->msg, "application/json", body);
  soup_session_send_async (_sandbox_rest_client_get_session (self->client), data->msg, G_PRIORITY_DEFAULT,
                           g_task_get_cancellable (task), bulk_sent, g_object_ref (task));
}

static GFile *
local_for (DownloadData *data,
           const char   *remote)
{
  const char *rest = remote + strlen (data->source);

  while (*rest == '/')
    rest++;
  return *rest ? g_file_resolve_relative_path (data->destination, rest) : g_object_ref (data->destination);
}

static void download_list_next (GTask *task);

/* One entry of a GET files?path= listing. FALSE for an entry to skip: not
 * an object, or a name that is not one plain path component (empty, ".",
 * "..", with a "/"): the name becomes a local path below the destination,
 * and an empty one would list the same directory forever. */
gboolean
_sandbox_daytona_parse_file_entry (JsonNode    *entry,
                                   const char **name,
                                   gboolean    *is_dir)
{
  JsonObject *o;
  JsonNode *dir;
  const char *n;

  if (entry == NULL || !JSON_NODE_HOLDS_OBJECT (entry))
    return FALSE;
  o = json_node_get_object (entry);
  n = _sandbox_json_get_string (o, "name");
  if (n == NULL || *n == '\0' || strchr (n, '/') != NULL || g_str_equal (n, "..") || g_str_equal (n, "."))
    return FALSE;
  dir = json_object_get_member (o, "isDir");
  *name = n;
  *is_dir = dir != NULL && JSON_NODE_HOLDS_VALUE (dir) && json_node_get_value_type (dir) == G_TYPE_BOOLEAN &&
            json_node_get_boolean (dir);
  return TRUE;
}

static void
listed (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DownloadData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  g_autofree char *dir = g_queue_pop_head (&data->dirs);
  JsonArray *entries;

  if (error == NULL && (node == NULL || !JSON_NODE_HOLDS_ARRAY (node)))
    error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                         _("Daytona's reply to GET files?path=%s is not a list of files."), dir);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  entries = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      const char *name;
      gboolean is_dir;
      g_autofree char *remote = NULL;
      g_autoptr(GFile) local = NULL;

      if (!_sandbox_daytona_parse_file_entry (json_array_get_element (entries, i), &name, &is_dir))
        continue;
      remote = g_build_path ("/", dir, name, NULL);
      local = local_for (data, remote);
      if (is_dir)
        {
          if (!g_file_make_directory_with_parents (local, NULL, &error) &&
              !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
            {
              g_task_return_error (task, error);
              return;
            }
          g_clear_error (&error);
          g_queue_push_tail (&data->dirs, g_steal_pointer (&remote));
        }
      else
        g_hash_table_insert (data->targets, g_steal_pointer (&remote), g_steal_pointer (&local));
    }
  download_list_next (task);
}

static void
download_list_next (GTask *task)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  DownloadData *data = g_task_get_task_data (task);
  g_autofree char *quoted = NULL;
  g_autofree char *url = NULL;

  if (g_queue_is_empty (&data->dirs))
    {
      download_files (task);
      return;
    }
  quoted = _sandbox_daytona_quote_path (g_queue_peek_head (&data->dirs));
  url = toolbox_url (self, "/files?path=%s", quoted);
  _sandbox_rest_client_call_async (self->client, "GET", url, NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (task), listed, g_object_ref (task));
}

/* Whether a GET files/info reply describes a directory. */
gboolean
_sandbox_daytona_parse_is_dir (JsonNode *node)
{
  JsonNode *dir = NULL;

  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    dir = json_object_get_member (json_node_get_object (node), "isDir");
  return dir != NULL && JSON_NODE_HOLDS_VALUE (dir) && json_node_get_value_type (dir) == G_TYPE_BOOLEAN &&
         json_node_get_boolean (dir);
}

static void
got_info (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DownloadData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);

  if (error == NULL && (node == NULL || !JSON_NODE_HOLDS_OBJECT (node)))
    error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                         _("Daytona's reply to GET files/info?path=%s is not a file's description."),
                         data->source);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (_sandbox_daytona_parse_is_dir (node))
    {
      if (!g_file_make_directory_with_parents (data->destination, NULL, &error) &&
          !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
        {
          g_task_return_error (task, error);
          return;
        }
      g_clear_error (&error);
      g_queue_push_tail (&data->dirs, g_strdup (data->source));
      download_list_next (task);
      return;
    }
  /* (The destination's parent was made before the first GET.) */
  g_hash_table_insert (data->targets, g_strdup (data->source), g_object_ref (data->destination));
  download_files (task);
}

static void
sandbox_daytona_instance_download (SandboxInstance *instance,
                                   const char      *source,
                                   GFile           *destination,
                                   GCancellable    *cancellable,
                                   GTask           *task)
{
  DownloadData *data;

  if (refuse_if_stopped (instance, task))
    return;
  data = g_new0 (DownloadData, 1);
  data->source = g_strdup (source);
  /* "/a/b/" and "/a/b" are the same directory. */
  while (strlen (data->source) > 1 && g_str_has_suffix (data->source, "/"))
    data->source[strlen (data->source) - 1] = '\0';
  data->destination = g_object_ref (destination);
  data->targets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  data->written = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&data->dirs);
  data->error_body = g_byte_array_new ();
  g_task_set_task_data (task, data, (GDestroyNotify) download_data_free);

  /* Most downloads are of one file: GET files/download at once, one round
   * trip. A directory answers 400 ("path must be a file"), and files/info
   * then says what @source is (download_answered). */
  {
    g_autoptr(GFile) parent = g_file_get_parent (data->destination);
    GError *error = NULL;

    if (parent != NULL && !g_file_make_directory_with_parents (parent, NULL, &error) &&
        !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
      {
        g_task_return_error (task, error);
        return;
      }
    g_clear_error (&error);
  }
  data->probing = TRUE;
  g_hash_table_insert (data->targets, g_strdup (data->source), g_object_ref (data->destination));
  download_files (task);
}

/* What @source is (a directory: its listing follows, then bulk-download). */
static void
download_info (GTask *task)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  DownloadData *data = g_task_get_task_data (task);
  g_autofree char *quoted = _sandbox_daytona_quote_path (data->source);
  g_autofree char *url = toolbox_url (self, "/files/info?path=%s", quoted);

  _sandbox_rest_client_call_async (self->client, "GET", url, NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (task), got_info, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* Destroy                                                             */

/* A sandbox still starting refuses to be deleted ("state change in
 * progress"): asked again for 10 s. */
static void
sandbox_daytona_instance_destroy (SandboxInstance *instance,
                                  GCancellable    *cancellable,
                                  GTask           *task)
{
  _sandbox_cloud_destroy (SANDBOX_DAYTONA_INSTANCE (instance)->client, &_sandbox_daytona_api, 40, task);
}

/* ------------------------------------------------------------------ */
/* Ports (since 0.2): the preview URL and its token                    */

static void
port_url_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);
  JsonObject *object;
  const char *url;

  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  object = node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  url = object != NULL ? _sandbox_json_get_string (object, "url") : NULL;
  if (url == NULL || *url == '\0')
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("Daytona answered the preview-url request without a URL; "
                                 "check that the API URL (DAYTONA_API_URL) is a Daytona API."));
      return;
    }
  _sandbox_task_return_port_url (task, url, _sandbox_json_get_string (object, "token"));
}

static void
sandbox_daytona_instance_dup_port_url (SandboxInstance *instance,
                                       guint            port,
                                       GCancellable    *cancellable,
                                       GTask           *task)
{
  SandboxDaytonaInstance *self = SANDBOX_DAYTONA_INSTANCE (instance);
  g_autofree char *escaped = g_uri_escape_string (sandbox_instance_get_id (instance), NULL, TRUE);
  g_autofree char *endpoint = g_strdup_printf ("sandbox/%s/ports/%u/preview-url", escaped, port);

  _sandbox_rest_client_call_async (self->client, "GET", endpoint, NULL, SANDBOX_REST_IDEMPOTENT,
                                   cancellable, port_url_done, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* pause = POST /sandbox/{id}/stop, resume = POST .../start, each then  */
/* polled (GET /sandbox/{id}) on the SDK's schedule until the sandbox   */
/* is stopped or started. A sandbox with a time-out is created with     */
/* autoDeleteInterval 0, which deletes it as soon as it stops: pause     */
/* first turns auto-delete off (-1) and keeps the interval in the label  */
/* PAUSED_AUTO_DELETE_LABEL, which resume puts back. Metrics: the API   */
/* has none for a sandbox, so a small command reads /proc, the cgroup   */
/* and df in it.                                                        */

#define TRANSITION_TIMEOUT_US (120 * G_USEC_PER_SEC)

typedef enum
{
  STEP_GET,           /* pause: the sandbox's autoDeleteInterval */
  STEP_SAVE_LABEL,    /* pause: keep it in a label */
  STEP_NO_DELETE,     /* pause: POST autodelete/-1 */
  STEP_ACTION,        /* POST stop or start */
  STEP_WAIT,          /* GET until the wanted state */
  STEP_RESTORE,       /* resume: POST autodelete/N */
  STEP_DROP_LABEL,    /* resume: the label goes */
  STEP_DONE,
} TransitionStep;

typedef struct
{
  gboolean        pause;
  TransitionStep  step;
  char           *endpoint;    /* sandbox/{id} */
  char           *want;        /* "stopped" or "started" */
  JsonObject     *dto;         /* the latest one seen, or NULL */
  gint64          auto_delete; /* resume: the interval to put back, or -1 */
  gint64          start;
  guint           interval_ms;
} TransitionData;

static void
transition_data_free (TransitionData *data)
{
  g_free (data->endpoint);
  g_free (data->want);
  g_clear_pointer (&data->dto, json_object_unref);
  g_free (data);
}

static void transition_run (GTask *task);

static void
transition_later (GTask *task)
{
  TransitionData *data = g_task_get_task_data (task);

  if (g_get_monotonic_time () - data->start > TRANSITION_TIMEOUT_US)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT,
                               _("The Daytona sandbox %s did not become %s within 120 s; "
                                 "look at its state with “sandboxctl ls” and try again."),
                               sandbox_instance_get_id (g_task_get_source_object (task)), data->want);
      return;
    }
  /* The SDK's schedule: 100 ms, then x1.1 after 5 s, at most 1 s. */
  if (g_get_monotonic_time () - data->start > 5 * G_USEC_PER_SEC)
    data->interval_ms = MIN (1000, data->interval_ms * 11 / 10 + 1);
  _sandbox_cloud_task_later (task, data->interval_ms, transition_run, "[libsandbox] daytona stop/start poll");
}

/* STEP_WAIT: whether the latest DTO ends the wait (or the transition, with
 * an error). */
static gboolean
transition_reached (GTask *task)
{
  TransitionData *data = g_task_get_task_data (task);
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  const char *state = data->dto ? _sandbox_json_get_string (data->dto, "state") : NULL;
  g_autofree char *reason = NULL;

  if (g_strcmp0 (state, data->want) == 0)
    {
      _sandbox_daytona_instance_update (self, data->dto);
      return TRUE;
    }
  if (g_strcmp0 (state, "error") != 0 && g_strcmp0 (state, "build_failed") != 0 &&
      g_strcmp0 (state, "destroyed") != 0)
    return FALSE;
  if (_sandbox_json_get_string (data->dto, "errorReason") != NULL)
    reason = _sandbox_display_text (_sandbox_json_get_string (data->dto, "errorReason"));
  _sandbox_daytona_instance_update (self, data->dto);
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                           _("The Daytona sandbox %s ended up %s instead of %s%s%s; "
                             "destroy it and create a new one."),
                           sandbox_instance_get_id (SANDBOX_INSTANCE (self)), state, data->want,
                           reason ? ": " : "", reason ? reason : "");
  return TRUE;
}

static void
transition_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  TransitionData *data = g_task_get_task_data (task);
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;
  guint status = 0;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, &status, &error);
  if (error != NULL && status == 409 && data->step == STEP_ACTION)
    {
      /* "Sandbox state change in progress": ask again once it settles. */
      g_clear_error (&error);
      transition_later (task);
      return;
    }
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node) &&
      json_object_has_member (json_node_get_object (node), "state"))
    {
      g_clear_pointer (&data->dto, json_object_unref);
      data->dto = json_object_ref (json_node_get_object (node));
    }

  switch (data->step)
    {
    case STEP_GET:
      {
        gint64 interval = -1;

        /* Already stopped: nothing to do (and stop would be refused). */
        if (transition_reached (task))
          {
            if (!g_task_had_error (task))
              g_task_return_boolean (task, TRUE);
            return;
          }
        data->step = data->dto != NULL && _sandbox_json_get_int (data->dto, "autoDeleteInterval", &interval) &&
                     interval >= 0 ? STEP_SAVE_LABEL : STEP_ACTION;
      }
      break;
    case STEP_SAVE_LABEL:
      data->step = STEP_NO_DELETE;
      break;
    case STEP_NO_DELETE:
      data->step = STEP_ACTION;
      break;
    case STEP_ACTION:
      data->step = STEP_WAIT;
      if (!transition_reached (task))
        {
          transition_later (task);
          return;
        }
      if (g_task_had_error (task))
        return;
      data->step = data->pause ? STEP_DONE : STEP_RESTORE;
      break;
    case STEP_WAIT:
      if (!transition_reached (task))
        {
          transition_later (task);
          return;
        }
      if (g_task_had_error (task))
        return;
      data->step = data->pause ? STEP_DONE : STEP_RESTORE;
      break;
    case STEP_RESTORE:
      data->step = STEP_DROP_LABEL;
      break;
    case STEP_DROP_LABEL:
    case STEP_DONE:
    default:
      data->step = STEP_DONE;
      break;
    }
  transition_run (task);
}

static JsonNode *
labels_body (JsonObject *dto,
             const char *value)
{
  g_autoptr(GHashTable) labels = _sandbox_json_get_string_map (dto, "labels", NULL);
  g_autoptr(JsonBuilder) b = json_builder_new ();

  if (value != NULL)
    g_hash_table_insert (labels, g_strdup (PAUSED_AUTO_DELETE_LABEL), g_strdup (value));
  else
    g_hash_table_remove (labels, PAUSED_AUTO_DELETE_LABEL);
  json_builder_begin_object (b);
  _sandbox_json_add_string_map (b, "labels", labels);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
transition_run (GTask *task)
{
  SandboxDaytonaInstance *self = g_task_get_source_object (task);
  TransitionData *data = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autofree char *path = NULL;
  g_autoptr(JsonNode) body = NULL;
  const char *method = "POST";
  SandboxRestFlags flags = SANDBOX_REST_NONE;

  switch (data->step)
    {
    case STEP_GET:
    case STEP_WAIT:
      method = "GET";
      flags = SANDBOX_REST_IDEMPOTENT;
      path = g_strdup (data->endpoint);
      break;
    case STEP_SAVE_LABEL:
      {
        gint64 interval = -1;
        g_autofree char *value = NULL;

        _sandbox_json_get_int (data->dto, "autoDeleteInterval", &interval);
        value = g_strdup_printf ("%" G_GINT64_FORMAT, interval);
        method = "PUT";
        flags = SANDBOX_REST_IDEMPOTENT;
        path = g_strdup_printf ("%s/labels", data->endpoint);
        body = labels_body (data->dto, value);
      }
      break;
    case STEP_NO_DELETE:
      path = g_strdup_printf ("%s/autodelete/-1", data->endpoint);
      break;
    case STEP_ACTION:
      path = g_strdup_printf ("%s/%s", data->endpoint, data->pause ? "stop" : "start");
      break;
    case STEP_RESTORE:
      {
        g_autoptr(GHashTable) labels = data->dto ? _sandbox_json_get_string_map (data->dto, "labels", NULL) : NULL;
        const char *saved = labels ? g_hash_table_lookup (labels, PAUSED_AUTO_DELETE_LABEL) : NULL;

        if (saved == NULL)
          {
            g_task_return_boolean (task, TRUE);
            return;
          }
        path = g_strdup_printf ("%s/autodelete/%" G_GINT64_FORMAT, data->endpoint,
                                g_ascii_strtoll (saved, NULL, 10));
      }
      break;
    case STEP_DROP_LABEL:
      method = "PUT";
      flags = SANDBOX_REST_IDEMPOTENT;
      path = g_strdup_printf ("%s/labels", data->endpoint);
      body = labels_body (data->dto, NULL);
      break;
    case STEP_DONE:
    default:
      g_task_return_boolean (task, TRUE);
      return;
    }
  _sandbox_rest_client_call_async (self->client, method, path, body, flags, cancellable,
                                   transition_done, g_object_ref (task));
}

static void
transition_start (SandboxInstance *instance,
                  GTask           *task,
                  gboolean         pause)
{
  TransitionData *data = g_new0 (TransitionData, 1);
  g_autofree char *escaped = g_uri_escape_string (sandbox_instance_get_id (instance), NULL, TRUE);

  data->pause = pause;
  data->step = pause ? STEP_GET : STEP_ACTION;
  data->endpoint = g_strdup_printf ("sandbox/%s", escaped);
  data->want = g_strdup (pause ? "stopped" : "started");
  data->start = g_get_monotonic_time ();
  data->interval_ms = 100;
  g_task_set_task_data (task, data, (GDestroyNotify) transition_data_free);
  transition_run (task);
}

static void
sandbox_daytona_instance_pause (SandboxInstance *instance,
                                GCancellable    *cancellable,
                                GTask           *task)
{
  transition_start (instance, task, TRUE);
}

static void
sandbox_daytona_instance_resume (SandboxInstance *instance,
                                 GCancellable    *cancellable,
                                 GTask           *task)
{
  transition_start (instance, task, FALSE);
}

/* Prints "key value" lines; every figure is optional. */
#define METRICS_SCRIPT \
  "echo cpus $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null); " \
  "[ -r /sys/fs/cgroup/cpu.stat ] && sed -n 's/^usage_usec /cpu_usec /p' /sys/fs/cgroup/cpu.stat; " \
  "t=0; for f in /proc/[0-9]*/stat; do read -r l < $f 2>/dev/null || continue; set -- ${l##*) }; " \
  "t=$((t + $12 + $13)); done; echo cpu_ticks $t $(getconf CLK_TCK 2>/dev/null || echo 100); " \
  "[ -r /sys/fs/cgroup/memory.current ] && echo mem_used $(cat /sys/fs/cgroup/memory.current); " \
  "[ -r /sys/fs/cgroup/memory.max ] && echo mem_max $(cat /sys/fs/cgroup/memory.max); " \
  "sed -n 's/^MemTotal: *\\([0-9]*\\) kB/mem_total_kb \\1/p; s/^MemAvailable: *\\([0-9]*\\) kB/mem_avail_kb \\1/p' /proc/meminfo; " \
  "df -Pk / 2>/dev/null | sed -n '2s/^[^ ]* *\\([0-9]*\\) *\\([0-9]*\\).*/disk_kb \\1 \\2/p'; true"

SandboxMetrics *
_sandbox_daytona_parse_metrics (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  double cpu_seconds = -1;
  guint cpus = 0;
  guint64 mem_used = 0, mem_max = 0, mem_total = 0, mem_avail = 0, disk_total = 0, disk_used = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) f = g_strsplit (g_strstrip (lines[i]), " ", -1);
      guint n = g_strv_length (f);

      if (n < 2)
        continue;
      if (strcmp (f[0], "cpus") == 0)
        cpus = (guint) g_ascii_strtoull (f[1], NULL, 10);
      else if (strcmp (f[0], "cpu_usec") == 0)
        cpu_seconds = g_ascii_strtoull (f[1], NULL, 10) / 1e6;
      else if (strcmp (f[0], "cpu_ticks") == 0 && n >= 3 && cpu_seconds < 0 &&
               g_ascii_strtoull (f[2], NULL, 10) > 0)
        /* Without a cgroup: the processes that run now. */
        cpu_seconds = (double) g_ascii_strtoull (f[1], NULL, 10) / g_ascii_strtoull (f[2], NULL, 10);
      else if (strcmp (f[0], "mem_used") == 0)
        mem_used = g_ascii_strtoull (f[1], NULL, 10);
      else if (strcmp (f[0], "mem_max") == 0)
        mem_max = g_ascii_strtoull (f[1], NULL, 10);   /* "max": 0 */
      else if (strcmp (f[0], "mem_total_kb") == 0)
        mem_total = g_ascii_strtoull (f[1], NULL, 10) * 1024;
      else if (strcmp (f[0], "mem_avail_kb") == 0)
        mem_avail = g_ascii_strtoull (f[1], NULL, 10) * 1024;
      else if (strcmp (f[0], "disk_kb") == 0 && n >= 3)
        {
          disk_total = g_ascii_strtoull (f[1], NULL, 10) * 1024;
          disk_used = g_ascii_strtoull (f[2], NULL, 10) * 1024;
        }
    }
  if (mem_max > 0 && (mem_total == 0 || mem_max < mem_total))
    mem_total = mem_max;
  if (mem_used == 0 && mem_total >= mem_avail && mem_avail > 0)
    mem_used = mem_total - mem_avail;
  return g_object_new (SANDBOX_TYPE_METRICS,
                       "cpu-seconds", cpu_seconds,
                       "cpu-count", cpus,
                       "memory-used", mem_used,
                       "memory-total", mem_total,
                       "disk-used", disk_used,
                       "disk-total", disk_total,
                       NULL);
}

static void
metrics_ran (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(SandboxExecResult) ran = NULL;
  g_autofree char *text = NULL;
  GError *error = NULL;
  GValue value = G_VALUE_INIT;
  GBytes *out;

  ran = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), result, &error);
  if (ran == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  out = sandbox_exec_result_get_stdout (ran);
  text = out ? g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out)) : g_strdup ("");
  g_value_init (&value, SANDBOX_TYPE_METRICS);
  g_value_take_object (&value, _sandbox_daytona_parse_metrics (text));
  g_task_return_value (task, &value);
  g_value_unset (&value);
}

static void
sandbox_daytona_instance_get_metrics (SandboxInstance *instance,
                                      GCancellable    *cancellable,
                                      GTask           *task)
{
  const char * const argv[] = { "sh", "-c", METRICS_SCRIPT, NULL };
  g_autoptr(SandboxCommand) command = NULL;

  if (refuse_if_stopped (instance, task))
    return;
  command = sandbox_command_new ((const char * const *) argv);
  sandbox_command_set_timeout_ms (command, 30000);
  sandbox_instance_exec_async (instance, command, cancellable, metrics_ran, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
sandbox_daytona_instance_finalize (GObject *object)
{
  SandboxDaytonaInstance *self = SANDBOX_DAYTONA_INSTANCE (object);

  g_clear_object (&self->client);
  g_free (self->toolbox);
  g_free (self->workdir);
  G_OBJECT_CLASS (sandbox_daytona_instance_parent_class)->finalize (object);
}

static void
sandbox_daytona_instance_class_init (SandboxDaytonaInstanceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxInstanceClass *instance_class = SANDBOX_INSTANCE_CLASS (klass);

  object_class->finalize = sandbox_daytona_instance_finalize;
  instance_class->exec = sandbox_daytona_instance_exec;
  instance_class->upload = sandbox_daytona_instance_upload;
  instance_class->download = sandbox_daytona_instance_download;
  instance_class->destroy = sandbox_daytona_instance_destroy;
  instance_class->pause = sandbox_daytona_instance_pause;
  instance_class->resume = sandbox_daytona_instance_resume;
  instance_class->get_metrics = sandbox_daytona_instance_get_metrics;
  instance_class->dup_port_url = sandbox_daytona_instance_dup_port_url;
}

static void
sandbox_daytona_instance_init (SandboxDaytonaInstance *self)
{
}
