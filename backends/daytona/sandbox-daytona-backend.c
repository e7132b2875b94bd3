/* libsandbox - the Daytona backend: configuration and the sandbox life cycle
 *
 * REST over the shared client (libsandbox/sandbox-rest-private.h): POST
 * /sandbox, poll GET /sandbox/{id} on the SDK's schedule until it is
 * started, list by labels, get by id. Facts: shared/specs/daytona-api.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "sandbox-daytona-private.h"

/* Every create carries a label with a fresh token, so that a sandbox the
 * provider made although its answer was lost (5xx from a proxy, reset,
 * timeout, garbled reply) can be found and deleted: no orphan. Hidden from
 * the instance's labels. */
#define CREATE_TOKEN_LABEL "libsandbox.create-token"

struct _SandboxDaytonaBackend
{
  SandboxBackend     parent_instance;

  char              *api_key;
  char              *api_url;
  char              *target;
  guint              start_timeout;   /* s; 0: 60, or 900 when an image is built */
  SandboxRestClient *client;
};

G_DEFINE_FINAL_TYPE (SandboxDaytonaBackend, sandbox_daytona_backend, SANDBOX_TYPE_BACKEND)

enum {
  PROP_0,
  PROP_API_KEY,
  PROP_API_URL,
  PROP_TARGET,
  PROP_START_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *
nonempty (const char *value)
{
  return value != NULL && *value != '\0' ? value : NULL;
}

static const char *
get_api_key (SandboxDaytonaBackend *self)
{
  return nonempty (self->api_key) ? self->api_key : nonempty (g_getenv ("DAYTONA_API_KEY"));
}

static const char *
get_api_url (SandboxDaytonaBackend *self)
{
  if (nonempty (self->api_url))
    return self->api_url;
  if (nonempty (g_getenv ("DAYTONA_API_URL")))
    return g_getenv ("DAYTONA_API_URL");
  return DAYTONA_DEFAULT_API_URL;
}

static const char *
get_target (SandboxDaytonaBackend *self)
{
  return nonempty (self->target) ? self->target : nonempty (g_getenv ("DAYTONA_TARGET"));
}

SandboxRestClient *
_sandbox_daytona_backend_get_client (SandboxDaytonaBackend *self)
{
  if (self->client == NULL)
    {
      g_autofree char *auth = g_strdup_printf ("Bearer %s", get_api_key (self) ? get_api_key (self) : "");
      g_autofree char *hint = g_strdup_printf (_("Check DAYTONA_API_KEY (or the api-key property): "
                                                 "create a key at %s, and check that DAYTONA_API_URL "
                                                 "(%s) is the matching API."),
                                               DAYTONA_KEYS_URL, get_api_url (self));

      self->client = _sandbox_rest_client_new (DAYTONA_PROVIDER, get_api_url (self));
      _sandbox_rest_client_set_header (self->client, "Authorization", auth);
      _sandbox_rest_client_set_header (self->client, "X-Daytona-Source", "libsandbox");
      _sandbox_rest_client_set_header (self->client, "X-Daytona-SDK-Version", DAYTONA_PROTOCOL_VERSION);
      _sandbox_rest_client_set_auth_hint (self->client, hint);
    }
  return self->client;
}

static gboolean
sandbox_daytona_backend_check_configured (SandboxBackend  *backend,
                                          GError         **error)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (backend);
  const char *url = get_api_url (self);

  if (get_api_key (self) == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("The daytona backend needs an API key: set DAYTONA_API_KEY (or the backend's "
                     "api-key property). Create a key in the Daytona dashboard at %s. "
                     "See docs/backends/daytona.md."), DAYTONA_KEYS_URL);
      return FALSE;
    }
  if (!g_uri_is_valid (url, G_URI_FLAGS_NONE, NULL) ||
      !(g_str_has_prefix (url, "http://") || g_str_has_prefix (url, "https://")))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("DAYTONA_API_URL (or the api-url property) is “%s”, which is not an http(s) "
                     "URL. Unset it to use %s, or set it to your Daytona API, ending in /api."),
                   url, DAYTONA_DEFAULT_API_URL);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* DTOs                                                                */

SandboxInstanceState
_sandbox_daytona_state_from_string (const char *state)
{
  static const char * const starting[] = { "creating", "starting", "restoring", "pending_build",
                                           "building_snapshot", "pulling_snapshot", "resuming",
                                           "unknown", NULL };
  static const char * const stopped[] = { "stopped", "stopping", "archived", "archiving",
                                          "paused", "pausing", NULL };

  if (state == NULL)
    return SANDBOX_INSTANCE_STATE_UNKNOWN;
  if (g_str_equal (state, "started") || g_str_equal (state, "resizing") ||
      g_str_equal (state, "snapshotting") || g_str_equal (state, "forking"))
    return SANDBOX_INSTANCE_STATE_RUNNING;
  if (g_strv_contains (starting, state))
    return SANDBOX_INSTANCE_STATE_STARTING;
  if (g_strv_contains (stopped, state))
    return SANDBOX_INSTANCE_STATE_STOPPED;
  if (g_str_equal (state, "destroyed") || g_str_equal (state, "destroying"))
    return SANDBOX_INSTANCE_STATE_DESTROYED;
  if (g_str_equal (state, "error") || g_str_equal (state, "build_failed"))
    return SANDBOX_INSTANCE_STATE_FAILED;
  return SANDBOX_INSTANCE_STATE_UNKNOWN;
}

GHashTable *
_sandbox_daytona_labels_from_dto (JsonObject *dto)
{
  GHashTable *labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonNode *node = json_object_get_member (dto, "labels");
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return labels;
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &key, &value))
    if (strcmp (key, CREATE_TOKEN_LABEL) != 0 && JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING)
      g_hash_table_insert (labels, g_strdup (key), g_strdup (json_node_get_string (value)));
  return labels;
}

char *
_sandbox_daytona_quote_path (const char *path)
{
  return g_uri_escape_string (path, "/", TRUE);
}

static const char *
dto_string (JsonObject *dto,
            const char *name)
{
  JsonNode *node = dto ? json_object_get_member (dto, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* The reply must be a sandbox object with an id, else PROTOCOL. */
static JsonObject *
expect_sandbox (JsonNode    *node,
                const char  *endpoint,
                GError     **error)
{
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node) ||
      dto_string (json_node_get_object (node), "id") == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("Daytona's reply to %s is not a sandbox object (no “id”). Check that "
                     "DAYTONA_API_URL points at the Daytona API (ending in /api)."), endpoint);
      return NULL;
    }
  return json_object_ref (json_node_get_object (node));
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

typedef struct
{
  char       *id;
  char       *workdir;
  char       *endpoint;     /* sandbox/{id} */
  char       *token;        /* the value of CREATE_TOKEN_LABEL */
  JsonObject *dto;
  gint64      begun;        /* monotonic, us */
  gint64      deadline;
  guint       timeout_s;
  guint       interval_ms;
  GError     *failure;      /* returned once the sandbox is deleted */
} CreateData;

static void
create_data_free (CreateData *data)
{
  g_free (data->id);
  g_free (data->workdir);
  g_free (data->endpoint);
  g_free (data->token);
  g_clear_pointer (&data->dto, json_object_unref);
  g_clear_error (&data->failure);
  g_free (data);
}

static void
cleanup_deleted (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CreateData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);

  if (error != NULL && status != 404)
    {
      g_autofree char *message = g_strdup_printf (_("%s It could not be deleted either (%s): delete "
                                                    "it with “sandboxctl rm %s” or in the Daytona "
                                                    "dashboard."),
                                                  data->failure->message, error->message, data->id);
      g_free (data->failure->message);
      data->failure->message = g_steal_pointer (&message);
    }
  g_task_return_error (task, g_steal_pointer (&data->failure));
}

/* Fails the creation with @error after deleting the half-made sandbox. */
static void
create_fail (GTask  *task,
             GError *error)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);

  data->failure = error;
  if (data->id == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&data->failure));
      g_object_unref (task);
      return;
    }
  /* Not cancellable: the sandbox must not be left behind. */
  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "DELETE",
                                   data->endpoint, NULL, SANDBOX_REST_IDEMPOTENT, NULL,
                                   cleanup_deleted, task);
}

static void create_poll (GTask *task);

static gboolean
create_poll_cb (gpointer user_data)
{
  create_poll (user_data);
  return G_SOURCE_REMOVE;
}

/* Decides what the sandbox's latest state means. */
static void
create_check (GTask *task)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);
  const char *state = dto_string (data->dto, "state");
  GSource *source;
  guint delay_ms;

  if (g_strcmp0 (state, "started") == 0)
    {
      g_autoptr(SandboxInstance) instance = NULL;
      GError *cancelled = NULL;

      /* Cancelled at the last moment: GTask would drop the instance and
       * report the cancellation, leaving the sandbox running. */
      if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &cancelled))
        {
          create_fail (task, cancelled);
          return;
        }
      instance = _sandbox_daytona_instance_new (self, data->dto, data->workdir);

      _sandbox_task_return_object (task, instance);
      g_object_unref (task);
      return;
    }
  if (g_strcmp0 (state, "error") == 0 || g_strcmp0 (state, "build_failed") == 0)
    {
      const char *reason = dto_string (data->dto, "errorReason");

      create_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                                      _("Daytona could not start sandbox %s (state %s): %s. It has "
                                        "been deleted. Check the image or snapshot, and the "
                                        "resources asked for."),
                                      data->id, state, reason ? reason : _("no reason given")));
      return;
    }
  if (g_strcmp0 (state, "destroyed") == 0 || g_strcmp0 (state, "destroying") == 0)
    {
      create_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                                      _("Daytona destroyed sandbox %s while it was starting%s%s. "
                                        "Try again; if it persists, check the organisation's "
                                        "quotas in the dashboard."),
                                      data->id, dto_string (data->dto, "errorReason") ? ": " : "",
                                      dto_string (data->dto, "errorReason") ? dto_string (data->dto, "errorReason") : ""));
      return;
    }
  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      create_fail (task, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                      _("Creating the Daytona sandbox was cancelled; it has been deleted.")));
      return;
    }
  if (g_get_monotonic_time () >= data->deadline)
    {
      create_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT,
                                      _("Daytona sandbox %s did not start within %u s (it is still "
                                        "“%s”); it has been deleted. Try again later, or raise the "
                                        "daytona backend's start-timeout."),
                                      data->id, data->timeout_s, state ? state : "unknown"));
      return;
    }

  /* Ask again right away (a create answer can be stale, see
   * shared/specs/daytona-api.md 2.5), then after 5 ms doubling up to 250 ms;
   * after 5 s the SDK's schedule: x1.1 per poll, at most 1 s. A first poll
   * at the SDK's fixed 100 ms made a create 100 ms slower than the SDK's. */
  delay_ms = data->interval_ms;
  if (g_get_monotonic_time () - data->begun > 5 * G_USEC_PER_SEC)
    data->interval_ms = MIN ((guint) (data->interval_ms * 1.1) + 1, 1000);
  else
    data->interval_ms = CLAMP (data->interval_ms * 2, 5, 250);
  source = g_timeout_source_new (MIN (delay_ms,
                                      (guint) ((data->deadline - g_get_monotonic_time ()) / 1000) + 1));
  g_source_set_callback (source, create_poll_cb, task, NULL);
  g_source_set_static_name (source, "[libsandbox] daytona start poll");
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

static void
create_polled (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  CreateData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  JsonObject *dto;

  if (node == NULL && error == NULL)
    error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                         _("Daytona sent an empty reply to GET %s."), data->endpoint);
  if (error != NULL)
    {
      create_fail (task, error);
      return;
    }
  dto = expect_sandbox (node, data->endpoint, &error);
  if (dto == NULL)
    {
      create_fail (task, error);
      return;
    }
  g_clear_pointer (&data->dto, json_object_unref);
  data->dto = dto;
  create_check (task);
}

static void
create_poll (GTask *task)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);

  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "GET", data->endpoint,
                                   NULL, SANDBOX_REST_IDEMPOTENT, g_task_get_cancellable (task),
                                   create_polled, task);
}

static void create_delete_next (GTask *task, GQueue *ids);

static gboolean
orphan_retry_cb (gpointer user_data)
{
  GTask *task = user_data;

  create_delete_next (task, g_object_get_data (G_OBJECT (task), "orphans"));
  return G_SOURCE_REMOVE;
}

static void
orphan_deleted (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  GQueue *ids = g_object_get_data (G_OBJECT (task), "orphans");
  g_autoptr(GError) error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);

  CreateData *data = g_task_get_task_data (task);
  guint tries = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (task), "orphan-tries"));

  if (status == 409 && tries < 120)
    {
      /* Still starting ("state change in progress"): ask again shortly. */
      GSource *later = g_timeout_source_new (250);

      g_object_set_data (G_OBJECT (task), "orphan-tries", GUINT_TO_POINTER (tries + 1));
      g_queue_push_head (ids, g_strdup (g_object_get_data (G_OBJECT (task), "orphan-id")));
      g_source_set_callback (later, orphan_retry_cb, task, NULL);
      g_source_set_static_name (later, "[libsandbox] daytona orphan delete");
      g_source_attach (later, g_task_get_context (task));
      g_source_unref (later);
      return;
    }
  if (error != NULL && status != 404)
    {
      g_autofree char *message = g_strdup_printf (_("%s The sandbox was created all the same and could "
                                                    "not be deleted (%s): delete it with “sandboxctl rm "
                                                    "%s”."),
                                                  data->failure->message, error->message,
                                                  (char *) g_object_get_data (G_OBJECT (task), "orphan-id"));
      g_free (data->failure->message);
      data->failure->message = g_steal_pointer (&message);
    }
  create_delete_next (task, ids);
}

static void
create_delete_next (GTask  *task,
                    GQueue *ids)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);
  g_autofree char *id = g_queue_pop_head (ids);

  if (id == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&data->failure));
      g_object_unref (task);
      return;
    }
  {
    g_autofree char *escaped = g_uri_escape_string (id, NULL, TRUE);
    g_autofree char *endpoint = g_strdup_printf ("sandbox/%s", escaped);

    g_debug ("Deleting Daytona sandbox %s, made by a create whose answer was lost", id);
    g_object_set_data_full (G_OBJECT (task), "orphan-id", g_strdup (id), g_free);
    _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "DELETE", endpoint,
                                     NULL, SANDBOX_REST_IDEMPOTENT, NULL, orphan_deleted, task);
  }
}

static void
orphans_listed (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  CreateData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  GQueue *ids = g_queue_new ();
  JsonArray *items = NULL;

  g_object_set_data_full (G_OBJECT (task), "orphans", ids, (GDestroyNotify) g_queue_free);
  items = _sandbox_daytona_parse_list_page (node, NULL);
  if (error != NULL)
    {
      g_autofree char *message = g_strdup_printf (_("%s The sandbox may have been created all the same "
                                                    "and could not be looked for (%s): list them with "
                                                    "“sandboxctl ls” and remove it."),
                                                  data->failure->message, error->message);
      g_free (data->failure->message);
      data->failure->message = g_steal_pointer (&message);
    }
  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++)
    {
      JsonNode *item = json_array_get_element (items, i);
      JsonObject *dto = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
      const char *id = dto ? dto_string (dto, "id") : NULL;
      g_autoptr(GHashTable) labels = dto ? _sandbox_daytona_labels_from_dto (dto) : NULL;
      JsonNode *labels_node = dto ? json_object_get_member (dto, "labels") : NULL;
      const char *token = NULL;

      if (labels_node != NULL && JSON_NODE_HOLDS_OBJECT (labels_node))
        token = dto_string (json_node_get_object (labels_node), CREATE_TOKEN_LABEL);
      /* Filter again for servers that ignore the label query. */
      if (id != NULL && g_strcmp0 (token, data->token) == 0)
        g_queue_push_tail (ids, g_strdup (id));
    }
  create_delete_next (task, ids);
}

/* After an ambiguous failure of POST sandbox: delete what it made. */
static void
create_find_orphans (GTask  *task,
                     GError *error)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);
  g_autofree char *filter = g_strdup_printf ("{\"%s\":\"%s\"}", CREATE_TOKEN_LABEL, data->token);
  g_autofree char *escaped = g_uri_escape_string (filter, NULL, TRUE);
  g_autofree char *path = g_strdup_printf ("sandbox?limit=200&labels=%s", escaped);

  data->failure = error;
  /* Not cancellable: the sandbox must not be left behind. */
  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "GET", path, NULL,
                                   SANDBOX_REST_IDEMPOTENT, NULL, orphans_listed, task);
}

static void
create_posted (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  CreateData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);

  if (error == NULL)
    data->dto = expect_sandbox (node, "POST sandbox", &error);
  if (error != NULL)
    {
      /* The answer was lost or garbled, not a refusal, or the caller
       * gave up waiting for it: the sandbox may exist all the same. Find
       * it by its token and delete it. */
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
          g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE) ||
          g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT) ||
          g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL) ||
          g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED))
        {
          create_find_orphans (task, error);
          return;
        }
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  data->id = g_strdup (dto_string (data->dto, "id"));
  {
    g_autofree char *escaped = g_uri_escape_string (data->id, NULL, TRUE);
    data->endpoint = g_strdup_printf ("sandbox/%s", escaped);
  }
  g_debug ("Daytona sandbox %s created, state %s", data->id, dto_string (data->dto, "state"));
  create_check (task);
}

static void
add_string_map (JsonBuilder *b,
                const char  *name,
                GHashTable  *map)
{
  GHashTableIter iter;
  gpointer key, value;

  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  if (map != NULL)
    {
      g_hash_table_iter_init (&iter, map);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          json_builder_set_member_name (b, key);
          json_builder_add_string_value (b, value);
        }
    }
  json_builder_end_object (b);
}

static guint
gib (guint mb)
{
  return (mb + 1023) / 1024;
}

static void
sandbox_daytona_backend_create (SandboxBackend *backend,
                                SandboxSpec    *spec,
                                GCancellable   *cancellable,
                                GTask          *task)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (backend);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;
  const char *image = sandbox_spec_get_image (spec);
  const char *snapshot = NULL;
  gboolean resources = sandbox_spec_get_cpu (spec) > 0 || sandbox_spec_get_memory_mb (spec) > 0 ||
                       sandbox_spec_get_disk_mb (spec) > 0 || sandbox_spec_get_gpu (spec) > 0;
  CreateData *data;
  char *token = NULL;

  if (sandbox_spec_get_mounts (spec) != NULL && sandbox_spec_get_mounts (spec)->len > 0)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("The daytona backend cannot mount host directories into a sandbox; "
                                 "upload the files instead (sandbox_instance_upload), or use the "
                                 "local backend."));
      return;
    }
  if (image != NULL && g_str_has_prefix (image, "snapshot:"))
    {
      snapshot = image + strlen ("snapshot:");
      image = NULL;
    }
  if (resources && image == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("Daytona takes cpu, memory, disk and gpu from the snapshot, so they "
                                 "can only be chosen when the sandbox is built from an image: set "
                                 "the spec's image (for example “python:3.12-slim”), or drop the "
                                 "resources to use the %s."),
                               snapshot ? _("snapshot's") : _("default snapshot's"));
      return;
    }

  json_builder_begin_object (b);
  if (snapshot != NULL)
    {
      json_builder_set_member_name (b, "snapshot");
      json_builder_add_string_value (b, snapshot);
    }
  if (image != NULL)
    {
      g_autofree char *dockerfile = g_strdup_printf ("FROM %s\n", image);

      json_builder_set_member_name (b, "buildInfo");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dockerfileContent");
      json_builder_add_string_value (b, dockerfile);
      json_builder_end_object (b);
      if (sandbox_spec_get_cpu (spec) > 0)
        {
          json_builder_set_member_name (b, "cpu");
          json_builder_add_int_value (b, (gint64) ceil (sandbox_spec_get_cpu (spec)));
        }
      if (sandbox_spec_get_memory_mb (spec) > 0)
        {
          json_builder_set_member_name (b, "memory");
          json_builder_add_int_value (b, gib (sandbox_spec_get_memory_mb (spec)));
        }
      if (sandbox_spec_get_disk_mb (spec) > 0)
        {
          json_builder_set_member_name (b, "disk");
          json_builder_add_int_value (b, gib (sandbox_spec_get_disk_mb (spec)));
        }
      if (sandbox_spec_get_gpu (spec) > 0)
        {
          json_builder_set_member_name (b, "gpu");
          json_builder_add_int_value (b, sandbox_spec_get_gpu (spec));
        }
    }
  add_string_map (b, "env", sandbox_spec_get_env (spec));
  {
    g_autoptr(GHashTable) labels = g_hash_table_new (g_str_hash, g_str_equal);
    GHashTable *asked = sandbox_spec_get_labels (spec);

    if (asked != NULL)
      {
        GHashTableIter iter;
        gpointer key, value;

        g_hash_table_iter_init (&iter, asked);
        while (g_hash_table_iter_next (&iter, &key, &value))
          g_hash_table_insert (labels, key, value);
      }
    token = g_uuid_string_random ();
    g_hash_table_insert (labels, (char *) CREATE_TOKEN_LABEL, token);
    add_string_map (b, "labels", labels);
  }
  json_builder_set_member_name (b, "networkBlockAll");
  json_builder_add_boolean_value (b, !sandbox_spec_get_network (spec));
  if (get_target (self) != NULL)
    {
      json_builder_set_member_name (b, "target");
      json_builder_add_string_value (b, get_target (self));
    }
  if (sandbox_spec_get_timeout (spec) > 0)
    {
      /* The TTL: stop after that long without activity, delete when stopped. */
      json_builder_set_member_name (b, "autoStopInterval");
      json_builder_add_int_value (b, MAX (1, (sandbox_spec_get_timeout (spec) + 59) / 60));
      json_builder_set_member_name (b, "autoDeleteInterval");
      json_builder_add_int_value (b, 0);
    }
  json_builder_end_object (b);
  body = json_builder_get_root (b);

  data = g_new0 (CreateData, 1);
  data->workdir = g_strdup (sandbox_spec_get_workdir (spec));
  data->token = token;
  data->timeout_s = self->start_timeout ? self->start_timeout : (image ? 900 : 60);
  data->begun = g_get_monotonic_time ();
  data->deadline = data->begun + (gint64) data->timeout_s * G_USEC_PER_SEC;
  data->interval_ms = 0;      /* the next poll: see create_check () */
  g_task_set_task_data (task, data, (GDestroyNotify) create_data_free);

  /* Not retried on 5xx: a second POST could make a second sandbox. */
  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "POST", "sandbox", body,
                                   SANDBOX_REST_NONE, cancellable, create_posted, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* Get, list                                                           */

/* The sandboxes of a GET sandbox reply: a bare array (before v0.180) or a
 * page {"items": [...], "nextCursor": "..."}; NULL if it is neither. */
JsonArray *
_sandbox_daytona_parse_list_page (JsonNode    *node,
                                  const char **next_cursor)
{
  JsonNode *items;

  if (next_cursor != NULL)
    *next_cursor = NULL;
  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    return json_node_get_array (node);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  items = json_object_get_member (json_node_get_object (node), "items");
  if (items == NULL || !JSON_NODE_HOLDS_ARRAY (items))
    return NULL;
  if (next_cursor != NULL)
    *next_cursor = dto_string (json_node_get_object (node), "nextCursor");
  return json_node_get_array (items);
}

static gboolean
dto_is_gone (JsonObject *dto)
{
  return _sandbox_daytona_state_from_string (dto_string (dto, "state")) == SANDBOX_INSTANCE_STATE_DESTROYED;
}

static void
got_instance (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  const char *endpoint = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  g_autoptr(JsonObject) dto = NULL;
  g_autoptr(SandboxInstance) instance = NULL;

  if (error == NULL)
    dto = expect_sandbox (node, endpoint, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (dto_is_gone (dto))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("Daytona sandbox %s has been deleted. List the live ones with "
                                 "“sandboxctl ls --backend daytona”."), dto_string (dto, "id"));
      return;
    }
  instance = _sandbox_daytona_instance_new (self, dto, NULL);
  _sandbox_task_return_object (task, instance);
}

static void
sandbox_daytona_backend_get_instance (SandboxBackend *backend,
                                      const char     *id,
                                      GCancellable   *cancellable,
                                      GTask          *task)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (backend);
  g_autofree char *escaped = g_uri_escape_string (id, NULL, TRUE);
  char *endpoint = g_strdup_printf ("sandbox/%s", escaped);

  g_task_set_task_data (task, endpoint, g_free);
  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "GET", endpoint, NULL,
                                   SANDBOX_REST_IDEMPOTENT, cancellable, got_instance, g_object_ref (task));
}

typedef struct
{
  char       *labels;   /* JSON, escaped for the query; NULL for all */
  GListStore *store;
  GHashTable *want;
  char       *cursor;   /* of the page asked for last */
  guint       pages;
} ListData;

static void
list_data_free (ListData *data)
{
  g_free (data->labels);
  g_free (data->cursor);
  g_clear_object (&data->store);
  g_clear_pointer (&data->want, g_hash_table_unref);
  g_free (data);
}

static void list_page (GTask *task, const char *cursor);

static void
list_got (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  ListData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  JsonArray *items = NULL;
  const char *next = NULL;

  if (error == NULL)
    {
      items = _sandbox_daytona_parse_list_page (node, &next);
      if (items == NULL)
        error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                             _("Daytona's reply to GET sandbox is not a list of sandboxes. Check "
                               "that DAYTONA_API_URL points at the Daytona API (ending in /api)."));
    }
  if (error != NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  for (guint i = 0; i < json_array_get_length (items); i++)
    {
      JsonNode *item = json_array_get_element (items, i);
      g_autoptr(SandboxInstance) instance = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (item) || dto_string (json_node_get_object (item), "id") == NULL ||
          dto_is_gone (json_node_get_object (item)))
        continue;
      instance = _sandbox_daytona_instance_new (self, json_node_get_object (item), NULL);
      /* The server filters; filter again for servers that ignore labels. */
      if (data->want == NULL || sandbox_instance_matches_labels (instance, data->want))
        g_list_store_append (data->store, instance);
    }

  /* A server that keeps answering with a next page (or the same cursor)
   * must not keep us listing forever. */
  if (next != NULL && *next != '\0' && ++data->pages < 1000 && g_strcmp0 (next, data->cursor) != 0)
    {
      g_free (data->cursor);
      data->cursor = g_strdup (next);
      list_page (task, data->cursor);
      return;
    }
  _sandbox_task_return_object (task, data->store);
  g_object_unref (task);
}

static void
list_page (GTask      *task,
           const char *cursor)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  ListData *data = g_task_get_task_data (task);
  g_autoptr(GString) path = g_string_new ("sandbox?limit=200");

  if (data->labels != NULL)
    g_string_append_printf (path, "&labels=%s", data->labels);
  if (cursor != NULL)
    {
      g_autofree char *escaped = g_uri_escape_string (cursor, NULL, TRUE);
      g_string_append_printf (path, "&cursor=%s", escaped);
    }
  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "GET", path->str, NULL,
                                   SANDBOX_REST_IDEMPOTENT, g_task_get_cancellable (task), list_got, task);
}

static void
sandbox_daytona_backend_list (SandboxBackend *backend,
                              GHashTable     *labels,
                              GCancellable   *cancellable,
                              GTask          *task)
{
  ListData *data = g_new0 (ListData, 1);

  data->store = g_list_store_new (SANDBOX_TYPE_INSTANCE);
  if (labels != NULL && g_hash_table_size (labels) > 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *json = NULL;
      GHashTableIter iter;
      gpointer key, value;

      json_builder_begin_object (b);
      g_hash_table_iter_init (&iter, labels);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          json_builder_set_member_name (b, key);
          json_builder_add_string_value (b, value);
        }
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      json = json_to_string (root, FALSE);
      data->labels = g_uri_escape_string (json, NULL, TRUE);
      data->want = g_hash_table_ref (labels);
    }
  g_task_set_task_data (task, data, (GDestroyNotify) list_data_free);
  list_page (g_object_ref (task), NULL);
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
sandbox_daytona_backend_finalize (GObject *object)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (object);

  g_free (self->api_key);
  g_free (self->api_url);
  g_free (self->target);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (sandbox_daytona_backend_parent_class)->finalize (object);
}

static void
sandbox_daytona_backend_get_property (GObject    *object,
                                      guint       prop_id,
                                      GValue     *value,
                                      GParamSpec *pspec)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (object);

  switch (prop_id)
    {
    case PROP_API_KEY: g_value_set_string (value, self->api_key); break;
    case PROP_API_URL: g_value_set_string (value, self->api_url); break;
    case PROP_TARGET: g_value_set_string (value, self->target); break;
    case PROP_START_TIMEOUT: g_value_set_uint (value, self->start_timeout); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_daytona_backend_set_property (GObject      *object,
                                      guint         prop_id,
                                      const GValue *value,
                                      GParamSpec   *pspec)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (object);

  switch (prop_id)
    {
    case PROP_API_KEY: g_free (self->api_key); self->api_key = g_value_dup_string (value); break;
    case PROP_API_URL: g_free (self->api_url); self->api_url = g_value_dup_string (value); break;
    case PROP_TARGET: g_free (self->target); self->target = g_value_dup_string (value); break;
    case PROP_START_TIMEOUT: self->start_timeout = g_value_get_uint (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec); return;
    }
  /* A new key or URL takes effect with the next request. */
  if (prop_id == PROP_API_KEY || prop_id == PROP_API_URL)
    g_clear_object (&self->client);
}

static void
sandbox_daytona_backend_class_init (SandboxDaytonaBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxBackendClass *backend_class = SANDBOX_BACKEND_CLASS (klass);

  object_class->finalize = sandbox_daytona_backend_finalize;
  object_class->get_property = sandbox_daytona_backend_get_property;
  object_class->set_property = sandbox_daytona_backend_set_property;

  backend_class->check_configured = sandbox_daytona_backend_check_configured;
  backend_class->create = sandbox_daytona_backend_create;
  backend_class->get_instance = sandbox_daytona_backend_get_instance;
  backend_class->list = sandbox_daytona_backend_list;

  properties[PROP_API_KEY] =
    g_param_spec_string ("api-key", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_API_URL] =
    g_param_spec_string ("api-url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TARGET] =
    g_param_spec_string ("target", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_START_TIMEOUT] =
    g_param_spec_uint ("start-timeout", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_daytona_backend_init (SandboxDaytonaBackend *self)
{
}
