/* libsandbox - what every cloud backend does the same way
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "sandbox-cloud-private.h"

#define MAX_PAGES      1000
#define BUSY_RETRY_MS  250

const char *
_sandbox_cloud_setting (const char *value,
                        const char *variable)
{
  const char *env;

  if (value != NULL && *value != '\0')
    return value;
  env = g_getenv (variable);
  return env != NULL && *env != '\0' ? env : NULL;
}

GParamSpec *
_sandbox_cloud_param_string (const char *name)
{
  return g_param_spec_string (name, NULL, NULL, NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
}

static gboolean
outcome_unknown (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
         g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE) ||
         g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT) ||
         g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL) ||
         g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
}

static char *
item_path (const SandboxCloudApi *api,
           const char            *id)
{
  g_autofree char *escaped = g_uri_escape_string (id, NULL, TRUE);

  return g_strconcat (api->item_path, escaped, NULL);
}

gboolean
_sandbox_cloud_id_is_valid (const char *id)
{
  gsize len;

  if (id == NULL)
    return FALSE;
  len = strlen (id);
  if (len == 0 || len > 128 || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("._:-", *p) == NULL)
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Listing                                                             */

typedef struct
{
  GTask                 *task;
  SandboxRestClient     *client;
  const SandboxCloudApi *api;
  char                  *path;     /* of the first page */
  GHashTable            *want;
  GListStore            *store;
  char                  *cursor;   /* of the page asked for last */
  guint                  pages;
} ListData;

static void
list_data_free (ListData *data)
{
  g_object_unref (data->task);
  g_object_unref (data->client);
  g_free (data->path);
  g_clear_pointer (&data->want, g_hash_table_unref);
  g_object_unref (data->store);
  g_free (data->cursor);
  g_free (data);
}

static void list_page (ListData *data);

static void
list_got (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  ListData *data = user_data;
  SandboxBackend *backend = g_task_get_source_object (data->task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (data->client, result, NULL, &error);
  const char *next = NULL;
  JsonArray *items = NULL;

  if (error == NULL && (items = data->api->parse_page (node, _sandbox_rest_call_get_message (result), &next)) == NULL)
    error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                         _("%s's reply to GET %s is not a list of sandboxes. Check that the "
                           "backend's API URL points at the %s API; retry later, and report it "
                           "to %s if it persists."),
                         data->api->provider, data->path, data->api->provider, data->api->provider);
  if (error != NULL)
    {
      g_task_return_error (data->task, error);
      list_data_free (data);
      return;
    }

  for (guint i = 0; i < json_array_get_length (items); i++)
    {
      JsonNode *item = json_array_get_element (items, i);
      g_autoptr(SandboxInstance) instance = NULL;

      if (JSON_NODE_HOLDS_OBJECT (item))
        instance = data->api->instance_new (backend, json_node_get_object (item));
      if (instance != NULL && (data->want == NULL || sandbox_instance_matches_labels (instance, data->want)))
        g_list_store_append (data->store, instance);
    }

  /* A server that keeps answering with a next page (the same one, or
   * empty pages) must not keep us listing forever. */
  if (next != NULL && *next != '\0' && json_array_get_length (items) > 0 &&
      g_strcmp0 (next, data->cursor) != 0 && ++data->pages < MAX_PAGES)
    {
      g_free (data->cursor);
      data->cursor = g_strdup (next);
      list_page (data);
      return;
    }
  _sandbox_task_return_object (data->task, data->store);
  list_data_free (data);
}

static void
list_page (ListData *data)
{
  g_autoptr(GString) path = g_string_new (data->path);

  if (data->cursor != NULL)
    {
      g_autofree char *escaped = g_uri_escape_string (data->cursor, NULL, FALSE);

      g_string_append_printf (path, "&%s=%s", data->api->page_parameter, escaped);
    }
  _sandbox_rest_client_call_async (data->client, "GET", path->str, NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (data->task), list_got, data);
}

/* @base, with a filter on @labels when there are any. */
static char *
filtered_path (const SandboxCloudApi *api,
               const char            *base,
               GHashTable            *labels)
{
  g_autofree char *filter = NULL;

  if (labels == NULL || g_hash_table_size (labels) == 0)
    return g_strdup (base);
  filter = api->label_filter (labels);
  return g_strconcat (base, "&", filter, NULL);
}

void
_sandbox_cloud_list (SandboxRestClient     *client,
                     const SandboxCloudApi *api,
                     GHashTable            *want,
                     GTask                 *task)
{
  ListData *data = g_new0 (ListData, 1);

  data->task = g_object_ref (task);
  data->client = g_object_ref (client);
  data->api = api;
  data->path = filtered_path (api, api->list_path, want);
  data->want = want != NULL && g_hash_table_size (want) > 0 ? g_hash_table_ref (want) : NULL;
  data->store = g_list_store_new (SANDBOX_TYPE_INSTANCE);
  list_page (data);
}

/* ------------------------------------------------------------------ */
/* The reaper                                                          */

typedef struct
{
  GTask                 *task;
  SandboxRestClient     *client;
  const SandboxCloudApi *api;
  char                  *token;
  GError                *failure;  /* returned once the orphans are gone */
  GQueue                 ids;      /* still to delete; the head is being deleted */
  guint                  busy;     /* 409 answers to the head's DELETE */
} ReapData;

static void
reap_data_free (ReapData *data)
{
  g_object_unref (data->client);
  g_free (data->token);
  g_clear_error (&data->failure);
  g_queue_clear_full (&data->ids, g_free);
  g_free (data);
}

/* Appends a sentence to the failure's message. */
static void
reap_note (ReapData   *data,
           const char *format,
           ...) G_GNUC_PRINTF (2, 3);

static void
reap_note (ReapData   *data,
           const char *format,
           ...)
{
  g_autofree char *note = NULL;
  char *message;
  va_list args;

  va_start (args, format);
  note = g_strdup_vprintf (format, args);
  va_end (args);
  message = g_strdup_printf ("%s %s", data->failure->message, note);
  g_free (data->failure->message);
  data->failure->message = message;
}

static void reap_next (ReapData *data);

static gboolean
reap_retry_cb (gpointer user_data)
{
  reap_next (user_data);
  return G_SOURCE_REMOVE;
}

static void
reap_deleted (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ReapData *data = user_data;
  g_autoptr(GError) error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (data->client, result, &status, &error);
  g_autofree char *id = NULL;

  if (status == 409 && data->busy < data->api->busy_retries)
    {
      /* Still starting ("state change in progress"): ask again shortly. */
      GSource *later = g_timeout_source_new (BUSY_RETRY_MS);

      data->busy++;
      g_source_set_callback (later, reap_retry_cb, data, NULL);
      g_source_set_static_name (later, "[libsandbox] cloud orphan delete");
      g_source_attach (later, g_task_get_context (data->task));
      g_source_unref (later);
      return;
    }
  id = g_queue_pop_head (&data->ids);
  data->busy = 0;
  if (error != NULL && status != 404)
    reap_note (data, _("Sandbox %s was created all the same and could not be deleted (%s): delete "
                       "it with “sandboxctl rm %s”."), id, error->message, id);
  reap_next (data);
}

static void
reap_next (ReapData *data)
{
  const char *id = g_queue_peek_head (&data->ids);
  g_autofree char *path = NULL;
  GTask *task;

  if (id == NULL)
    {
      task = data->task;
      g_task_return_error (task, g_steal_pointer (&data->failure));
      reap_data_free (data);
      g_object_unref (task);
      return;
    }
  g_debug ("Deleting %s sandbox %s, left by a create that failed", data->api->provider, id);
  path = item_path (data->api, id);
  /* Not cancellable: the sandbox must not be left behind. */
  _sandbox_rest_client_call_async (data->client, "DELETE", path, NULL, SANDBOX_REST_IDEMPOTENT, NULL,
                                   reap_deleted, data);
}

static void
reap_listed (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  ReapData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (data->client, result, NULL, &error);
  JsonArray *items = NULL;

  if (error == NULL)
    items = data->api->parse_page (node, _sandbox_rest_call_get_message (result), NULL);
  if (items == NULL)
    reap_note (data, _("The sandbox may have been created all the same and could not be looked "
                       "for (%s): list them with “sandboxctl ls” and remove it."),
               error != NULL ? error->message : _("the reply is not a list"));
  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++)
    {
      JsonNode *item = json_array_get_element (items, i);
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
      const char *id = _sandbox_json_get_string (object, data->api->id_member);
      JsonObject *labels = _sandbox_json_get_object (object, data->api->labels_member);

      /* Filter again, for a server that ignores the label query. */
      if (id != NULL && g_strcmp0 (_sandbox_json_get_string (labels, SANDBOX_CLOUD_CREATE_TOKEN), data->token) == 0)
        g_queue_push_tail (&data->ids, g_strdup (id));
    }
  reap_next (data);
}

static ReapData *
reap_data_new (SandboxRestClient     *client,
               const SandboxCloudApi *api,
               GError                *failure,
               GTask                 *task)
{
  ReapData *data = g_new0 (ReapData, 1);

  data->task = task;
  data->client = g_object_ref (client);
  data->api = api;
  data->failure = failure;
  g_queue_init (&data->ids);
  return data;
}

void
_sandbox_cloud_create_failed (SandboxRestClient     *client,
                              const SandboxCloudApi *api,
                              const char            *token,
                              GError                *failure,
                              GTask                 *task)
{
  ReapData *data;
  g_autoptr(GHashTable) carrying = NULL;
  g_autofree char *path = NULL;

  if (!outcome_unknown (failure))
    {
      g_task_return_error (task, failure);
      g_object_unref (task);
      return;
    }
  data = reap_data_new (client, api, failure, task);
  data->token = g_strdup (token);
  carrying = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (carrying, (gpointer) SANDBOX_CLOUD_CREATE_TOKEN, (gpointer) token);
  path = filtered_path (api, api->reap_path, carrying);
  /* Not cancellable: the sandbox must not be left behind. */
  _sandbox_rest_client_call_async (client, "GET", path, NULL, SANDBOX_REST_IDEMPOTENT, NULL,
                                   reap_listed, data);
}

typedef struct
{
  GTask *task;
  void (*func) (GTask *task);
} TaskLater;

static gboolean
task_later_cb (gpointer user_data)
{
  TaskLater *later = user_data;

  later->func (later->task);
  return G_SOURCE_REMOVE;
}

static void
task_later_free (gpointer user_data)
{
  TaskLater *later = user_data;

  g_object_unref (later->task);
  g_free (later);
}

void
_sandbox_cloud_task_later (GTask       *task,
                           guint        delay_ms,
                           void       (*func) (GTask *task),
                           const char  *name)
{
  TaskLater *later = g_new (TaskLater, 1);
  GSource *source = g_timeout_source_new (delay_ms);

  later->task = g_object_ref (task);
  later->func = func;
  g_source_set_callback (source, task_later_cb, later, task_later_free);
  g_source_set_static_name (source, name);
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

/* ------------------------------------------------------------------ */
/* Shell lines                                                         */

static void
shell_append_word (GString    *line,
                   const char *word)
{
  g_autofree char *quoted = g_shell_quote (word);

  if (line->len > 0 && line->str[line->len - 1] != ' ')
    g_string_append_c (line, ' ');
  g_string_append (line, quoted);
}

void
_sandbox_cloud_shell_append_words (GString            *line,
                                   const char * const *words)
{
  for (guint i = 0; words[i] != NULL; i++)
    shell_append_word (line, words[i]);
}

void
_sandbox_cloud_shell_append_env (GString    *line,
                                 GHashTable *env)
{
  GHashTableIter iter;
  gpointer key, value;

  if (env == NULL)
    return;
  g_hash_table_iter_init (&iter, env);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *pair = g_strdup_printf ("%s=%s", (char *) key, (char *) value);

      shell_append_word (line, pair);
    }
}

GHashTable *
_sandbox_cloud_create_labels (GHashTable  *labels,
                              char       **token)
{
  GHashTable *sent = g_hash_table_new (g_str_hash, g_str_equal);

  if (labels != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, labels);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_insert (sent, key, value);
    }
  *token = g_uuid_string_random ();
  g_hash_table_insert (sent, (char *) SANDBOX_CLOUD_CREATE_TOKEN, *token);
  return sent;
}

const char *
_sandbox_cloud_tty_signal_key (int signum)
{
  switch (signum)
    {
    case SIGINT: return "\x03";
    case SIGQUIT: return "\x1c";
    case SIGTSTP: return "\x1a";
    default: return NULL;
    }
}

void
_sandbox_cloud_delete_and_fail (SandboxRestClient     *client,
                                const SandboxCloudApi *api,
                                const char            *id,
                                GError                *failure,
                                GTask                 *task)
{
  ReapData *data = reap_data_new (client, api, failure, task);

  g_queue_push_tail (&data->ids, g_strdup (id));
  reap_next (data);
}

/* ------------------------------------------------------------------ */
/* Destroy                                                             */

typedef struct
{
  SandboxRestClient     *client;
  char                  *path;
  guint                  busy;       /* 409 answers so far */
  guint                  busy_retries;
} DestroyData;

static void
destroy_data_free (DestroyData *data)
{
  g_object_unref (data->client);
  g_free (data->path);
  g_free (data);
}

static void destroy_send (GTask *task);

static void
destroy_answered (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxInstance *instance = g_task_get_source_object (task);
  DestroyData *data = g_task_get_task_data (task);
  GError *error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (data->client, result, &status, &error);

  if (error != NULL && status == 409 && data->busy < data->busy_retries)
    {
      /* "State change in progress": delete once it settles. */
      g_clear_error (&error);
      data->busy++;
      _sandbox_cloud_task_later (task, BUSY_RETRY_MS, destroy_send, "[libsandbox] cloud destroy retry");
      return;
    }
  /* 404: already gone, which is what was asked. */
  if (error != NULL && !g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND))
    {
      g_task_return_error (task, error);
      return;
    }
  g_clear_error (&error);
  sandbox_instance_set_state (instance, SANDBOX_INSTANCE_STATE_DESTROYED);
  g_task_return_boolean (task, TRUE);
}

static void
destroy_send (GTask *task)
{
  DestroyData *data = g_task_get_task_data (task);

  _sandbox_rest_client_call_async (data->client, "DELETE", data->path, NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (task), destroy_answered, g_object_ref (task));
}

void
_sandbox_cloud_destroy (SandboxRestClient     *client,
                        const SandboxCloudApi *api,
                        guint                  busy_retries,
                        GTask                 *task)
{
  SandboxInstance *instance = g_task_get_source_object (task);
  DestroyData *data = g_new0 (DestroyData, 1);

  data->client = g_object_ref (client);
  data->path = item_path (api, sandbox_instance_get_id (instance));
  data->busy_retries = busy_retries;
  g_task_set_task_data (task, data, (GDestroyNotify) destroy_data_free);
  destroy_send (task);
}

/* ------------------------------------------------------------------ */
/* Is the sandbox gone?                                                */

typedef struct
{
  const SandboxCloudApi *api;
  SandboxInstance       *instance;
  GError                *failure;
} GoneData;

static void
gone_data_free (GoneData *data)
{
  g_object_unref (data->instance);
  g_clear_error (&data->failure);
  g_free (data);
}

static void
gone_answered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GoneData *data = g_task_get_task_data (task);
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  const char *state = NULL;
  guint status = 0;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, &status, &error);
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    state = _sandbox_json_get_string (json_node_get_object (node), "state");
  if (status == 404 ||
      (state != NULL && data->api->gone_states != NULL && g_strv_contains (data->api->gone_states, state)))
    {
      sandbox_instance_set_state (data->instance, SANDBOX_INSTANCE_STATE_DESTROYED);
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("The %s sandbox %s is gone (%s) while the command ran: it was "
                                 "stopped or deleted, or reached its time-out (the command's "
                                 "connection said: %s). Give the sandbox a longer timeout "
                                 "(SandboxSpec:timeout, @sandbox(timeout=…) in Metaflow) and "
                                 "run the command again in a new sandbox."),
                               data->api->provider, sandbox_instance_get_id (data->instance),
                               state != NULL ? state : "not found", data->failure->message);
      return;
    }
  g_task_return_error (task, g_steal_pointer (&data->failure));
}

void
_sandbox_cloud_check_gone_async (SandboxRestClient     *client,
                                 const SandboxCloudApi *api,
                                 SandboxInstance       *instance,
                                 GError                *failure,
                                 GAsyncReadyCallback    callback,
                                 gpointer               user_data)
{
  GTask *task = g_task_new (NULL, NULL, callback, user_data);
  GoneData *data = g_new0 (GoneData, 1);
  g_autofree char *path = item_path (api, sandbox_instance_get_id (instance));

  g_task_set_source_tag (task, _sandbox_cloud_check_gone_async);
  data->api = api;
  data->instance = g_object_ref (instance);
  data->failure = failure;
  g_task_set_task_data (task, data, (GDestroyNotify) gone_data_free);
  _sandbox_rest_client_call_async (client, "GET", path, NULL, SANDBOX_REST_IDEMPOTENT, NULL,
                                   gone_answered, task);
}

GError *
_sandbox_cloud_check_gone_finish (GAsyncResult *result)
{
  GError *error = NULL;

  g_task_propagate_boolean (G_TASK (result), &error);
  return error;
}

/* ------------------------------------------------------------------ */
/* The spec's workdir                                                  */

typedef struct
{
  SandboxRestClient     *client;
  const SandboxCloudApi *api;
  SandboxInstance       *instance;
  char                  *workdir;
  GTask                 *task;       /* owned */
} WorkdirData;

/* The failure to make the workdir, with @why (what stopped it). */
static GError *
workdir_error (WorkdirData *data,
               char        *why)
{
  /* @why is the sandbox's mkdir's standard error (or the provider's
   * answer): any bytes, shown escaped so that they cannot drive the
   * terminal that shows the message, and UTF-8. */
  g_autofree char *shown = _sandbox_display_text (g_strstrip (why));

  return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                      _("The workdir “%s” could not be made in the %s sandbox (%s); name a "
                        "directory that the sandbox's user can write (SandboxSpec:workdir, "
                        "METAFLOW_SANDBOX_WORKDIR in Metaflow)."),
                      data->workdir, data->api->provider, shown);
}

/* Completes the create once the workdir is there, or fails it with @error
 * (taken), deleting the sandbox. */
static void
workdir_done (WorkdirData *data,
              GError      *error)
{
  if (error != NULL)
    _sandbox_cloud_delete_and_fail (data->client, data->api, sandbox_instance_get_id (data->instance),
                                    error, data->task);
  else
    {
      _sandbox_task_return_object (data->task, data->instance);
      g_object_unref (data->task);
    }
  g_object_unref (data->client);
  g_object_unref (data->instance);
  g_free (data->workdir);
  g_free (data);
}

static void
workdir_made (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  WorkdirData *data = user_data;
  g_autoptr(SandboxExecResult) made = NULL;
  GError *error = NULL;

  made = sandbox_instance_exec_finish (data->instance, result, &error);
  if (made != NULL && !sandbox_exec_result_get_success (made))
    {
      GBytes *err = sandbox_exec_result_get_stderr (made);
      g_autofree char *why = err ? g_strndup (g_bytes_get_data (err, NULL), g_bytes_get_size (err))
                                 : g_strdup ("");

      error = workdir_error (data, why);
    }
  workdir_done (data, error);
}

/* The toolbox's mkdir -p answered (@folder_url of
 * _sandbox_cloud_return_with_workdir): a refusal (a path the user cannot
 * write) is said as mkdir's failure is; a transport error or a
 * cancellation as it is. */
static void
workdir_folder_made (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  WorkdirData *data = user_data;
  GError *error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);

  if (error != NULL && status >= 400)
    {
      g_autofree char *why = g_strdup (error->message);

      g_clear_error (&error);
      error = workdir_error (data, why);
    }
  workdir_done (data, error);
}

void
_sandbox_cloud_return_with_workdir (SandboxRestClient     *client,
                                    const SandboxCloudApi *api,
                                    SandboxInstance       *instance,
                                    const char            *workdir,
                                    const char            *folder_url,
                                    GTask                 *task)
{
  const char *argv[] = { "mkdir", "-p", "--", workdir, NULL };
  g_autoptr(SandboxCommand) mkdir = NULL;
  WorkdirData *data;

  if (workdir == NULL)
    {
      _sandbox_task_return_object (task, instance);
      g_object_unref (task);
      return;
    }
  data = g_new0 (WorkdirData, 1);
  data->client = g_object_ref (client);
  data->api = api;
  data->instance = g_object_ref (instance);
  data->workdir = g_strdup (workdir);
  data->task = task;
  if (folder_url != NULL)
    {
      /* One request, where an exec is several and waits for the command's
       * end to be seen. */
      _sandbox_rest_client_call_async (client, "POST", folder_url, NULL, SANDBOX_REST_IDEMPOTENT,
                                       g_task_get_cancellable (task), workdir_folder_made, data);
      return;
    }
  /* In /: the instance's commands run in the workdir, which is not there yet. */
  mkdir = sandbox_command_new (argv);
  sandbox_command_set_cwd (mkdir, "/");
  sandbox_instance_exec_async (instance, mkdir, g_task_get_cancellable (task), workdir_made, data);
}
