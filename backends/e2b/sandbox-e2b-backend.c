/* libsandbox - the E2B backend: the control plane
 *
 * Sandboxes are created, found, listed and killed through the E2B REST API
 * (X-API-Key auth); everything inside a sandbox goes to its envd
 * (sandbox-e2b-instance.c). Facts: /work/shared/specs/e2b-api.md.
 *
 * Configuration: properties, else the environment the official SDKs read:
 *   api-key     E2B_API_KEY       (required)
 *   domain      E2B_DOMAIN        (default e2b.app)
 *   api-url     E2B_API_URL       (default https://api.<domain>)
 *   sandbox-url E2B_SANDBOX_URL   (default: per sandbox, from its domain)
 *   template    E2B_TEMPLATE      (default "base"; a spec's image wins)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-e2b-private.h"

struct _SandboxE2bBackend
{
  SandboxBackend     parent_instance;

  char              *api_key;
  char              *api_url;
  char              *domain;
  char              *sandbox_url;
  char              *template_id;
  SandboxRestClient *api;
};

G_DEFINE_FINAL_TYPE (SandboxE2bBackend, sandbox_e2b_backend, SANDBOX_TYPE_BACKEND)

enum {
  PROP_0,
  PROP_API_KEY,
  PROP_API_URL,
  PROP_DOMAIN,
  PROP_SANDBOX_URL,
  PROP_TEMPLATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *
setting (const char *value,
         const char *variable)
{
  const char *env;

  if (value != NULL && *value != '\0')
    return value;
  env = g_getenv (variable);
  return env != NULL && *env != '\0' ? env : NULL;
}

static const char *
get_api_key (SandboxE2bBackend *self)
{
  return setting (self->api_key, "E2B_API_KEY");
}

static const char *
get_domain (SandboxE2bBackend *self)
{
  const char *domain = setting (self->domain, "E2B_DOMAIN");

  return domain ? domain : E2B_DEFAULT_DOMAIN;
}

static char *
get_api_url (SandboxE2bBackend *self)
{
  const char *url = setting (self->api_url, "E2B_API_URL");

  return url ? g_strdup (url) : g_strdup_printf ("https://api.%s", get_domain (self));
}

SandboxRestClient *
_sandbox_e2b_backend_get_api (SandboxE2bBackend *self)
{
  if (self->api == NULL)
    {
      g_autofree char *url = get_api_url (self);

      self->api = _sandbox_rest_client_new ("E2B", url);
      _sandbox_rest_client_set_auth_hint (self->api, E2B_KEY_HINT);
      /* See set_envd() in sandbox-e2b-instance.c: no connection reuse
       * across the main contexts of synchronous calls. */
      _sandbox_rest_client_set_header (self->api, "Connection", "close");
    }
  /* The key may have been set since. */
  _sandbox_rest_client_set_header (self->api, "X-API-Key", get_api_key (self));
  return self->api;
}

char *
_sandbox_e2b_backend_envd_url (SandboxE2bBackend *self,
                               const char        *sandbox_id,
                               const char        *domain)
{
  static const char * const shared[] = { "e2b.app", "e2b.dev", "e2b.pro", "e2b-staging.dev", NULL };
  const char *url = setting (self->sandbox_url, "E2B_SANDBOX_URL");

  if (url != NULL)
    return g_strdup (url);
  if (domain == NULL || *domain == '\0')
    domain = get_domain (self);
  if (g_strv_contains (shared, domain))
    return g_strdup_printf ("https://sandbox.%s", domain);
  return g_strdup_printf ("https://%d-%s.%s", E2B_ENVD_PORT, sandbox_id, domain);
}

/* ------------------------------------------------------------------ */

static gboolean
sandbox_e2b_backend_check_configured (SandboxBackend  *backend,
                                      GError         **error)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);

  if (get_api_key (self) == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("The e2b backend needs an API key: set E2B_API_KEY (or the api-key "
                     "property). Keys are created at https://e2b.dev/dashboard?tab=keys."));
      return FALSE;
    }
  return TRUE;
}

static gboolean
configured_or_fail (SandboxE2bBackend *self,
                    GTask             *task)
{
  GError *error = NULL;

  if (sandbox_e2b_backend_check_configured (SANDBOX_BACKEND (self), &error))
    return TRUE;
  g_task_return_error (task, error);
  return FALSE;
}

static void
add_map (JsonBuilder *builder,
         const char  *member,
         GHashTable  *map)
{
  GHashTableIter iter;
  gpointer key, value;

  json_builder_set_member_name (builder, member);
  json_builder_begin_object (builder);
  if (map != NULL)
    {
      g_hash_table_iter_init (&iter, map);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          json_builder_set_member_name (builder, key);
          json_builder_add_string_value (builder, value);
        }
    }
  json_builder_end_object (builder);
}

static void
instance_from_reply (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxE2bBackend *self = g_task_get_source_object (task);
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  GError *error = NULL;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (node == NULL)
    {
      if (error == NULL)
        error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                             _("E2B answered with an empty body where a sandbox was expected."));
      g_task_return_error (task, error);
      return;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node) ||
      (instance = _sandbox_e2b_instance_new (self, json_node_get_object (node))) == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("E2B answered with something that is not a sandbox (no sandboxID)."));
      return;
    }
  /* The create answer does not repeat the metadata: the labels asked for. */
  if (g_task_get_task_data (task) != NULL)
    sandbox_instance_set_labels (instance, g_task_get_task_data (task));
  _sandbox_task_return_object (task, instance);
}

static void
sandbox_e2b_backend_create (SandboxBackend *backend,
                            SandboxSpec    *spec,
                            GCancellable   *cancellable,
                            GTask          *task)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;
  const char *template_id = sandbox_spec_get_image (spec);
  guint ttl = sandbox_spec_get_timeout (spec);

  if (!configured_or_fail (self, task))
    return;
  if (sandbox_spec_get_mounts (spec) != NULL && sandbox_spec_get_mounts (spec)->len > 0)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("E2B sandboxes cannot mount host directories; upload the files "
                                 "after creating the sandbox instead."));
      return;
    }
  if (template_id == NULL || *template_id == '\0')
    template_id = setting (self->template_id, "E2B_TEMPLATE");

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "templateID");
  json_builder_add_string_value (builder, template_id ? template_id : E2B_DEFAULT_TEMPLATE);
  json_builder_set_member_name (builder, "timeout");
  json_builder_add_int_value (builder, ttl > 0 ? ttl : E2B_DEFAULT_TTL_S);
  add_map (builder, "metadata", sandbox_spec_get_labels (spec));
  add_map (builder, "envVars", sandbox_spec_get_env (spec));
  json_builder_set_member_name (builder, "secure");
  json_builder_add_boolean_value (builder, TRUE);
  json_builder_set_member_name (builder, "allow_internet_access");
  json_builder_add_boolean_value (builder, sandbox_spec_get_network (spec));
  json_builder_end_object (builder);
  body = json_builder_get_root (builder);

  g_task_set_task_data (task, g_hash_table_ref (sandbox_spec_get_labels (spec)),
                        (GDestroyNotify) g_hash_table_unref);
  /* Not idempotent: a retried create could start two sandboxes. */
  _sandbox_rest_client_call_async (_sandbox_e2b_backend_get_api (self), "POST", "sandboxes", body,
                                   SANDBOX_REST_NONE, cancellable, instance_from_reply,
                                   g_object_ref (task));
}

static void
sandbox_e2b_backend_get_instance (SandboxBackend *backend,
                                  const char     *id,
                                  GCancellable   *cancellable,
                                  GTask          *task)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);
  g_autofree char *escaped = NULL;
  g_autofree char *path = NULL;

  if (!configured_or_fail (self, task))
    return;
  escaped = g_uri_escape_string (id, NULL, FALSE);
  path = g_strdup_printf ("sandboxes/%s", escaped);
  _sandbox_rest_client_call_async (_sandbox_e2b_backend_get_api (self), "GET", path, NULL,
                                   SANDBOX_REST_IDEMPOTENT, cancellable, instance_from_reply,
                                   g_object_ref (task));
}

/* list: GET /v2/sandboxes, page by page. Made by hand: the next page's
 * token is in the X-Next-Token header. */

typedef struct
{
  char        *metadata;   /* encoded filter, or NULL */
  GListStore  *store;
  SoupMessage *msg;
  guint        pages;
} ListData;

static void
list_data_free (ListData *data)
{
  g_free (data->metadata);
  g_clear_object (&data->store);
  g_clear_object (&data->msg);
  g_free (data);
}

static void list_page (GTask *task, const char *token);

static void
list_got (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxE2bBackend *self = g_task_get_source_object (task);
  ListData *data = g_task_get_task_data (task);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;
  guint status;
  const char *token;
  JsonArray *array;

  body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  if (body == NULL)
    {
      g_task_return_error (task, _sandbox_rest_transport_error_new ("E2B", "GET", "/v2/sandboxes", error));
      g_error_free (error);
      return;
    }
  status = soup_message_get_status (data->msg);
  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      g_task_return_error (task, _sandbox_rest_error_new ("E2B", "GET", "/v2/sandboxes", status, body,
                                                          E2B_KEY_HINT));
      return;
    }
  node = _sandbox_rest_parse_json ("E2B", "/v2/sandboxes", body, &error);
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    {
      if (error == NULL)
        error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                             _("E2B answered GET /v2/sandboxes with something that is not a list."));
      g_task_return_error (task, error);
      return;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autoptr(SandboxInstance) instance = NULL;

      if (JSON_NODE_HOLDS_OBJECT (element) &&
          (instance = _sandbox_e2b_instance_new (self, json_node_get_object (element))) != NULL)
        g_list_store_append (data->store, instance);
    }

  token = soup_message_headers_get_one (soup_message_get_response_headers (data->msg), "X-Next-Token");
  if (token != NULL && *token != '\0' && json_array_get_length (array) > 0 && ++data->pages < 1000)
    {
      g_autofree char *next = g_strdup (token);
      list_page (g_steal_pointer (&task), next);
      return;
    }
  _sandbox_task_return_object (task, data->store);
}

static void
list_page (GTask      *task,
           const char *token)
{
  SandboxE2bBackend *self = g_task_get_source_object (task);
  ListData *data = g_task_get_task_data (task);
  SandboxRestClient *api = _sandbox_e2b_backend_get_api (self);
  g_autoptr(GString) path = g_string_new ("v2/sandboxes?state=running&limit=100");

  if (data->metadata != NULL)
    {
      g_autofree char *escaped = g_uri_escape_string (data->metadata, NULL, FALSE);
      g_string_append_printf (path, "&metadata=%s", escaped);
    }
  if (token != NULL)
    {
      g_autofree char *escaped = g_uri_escape_string (token, NULL, FALSE);
      g_string_append_printf (path, "&nextToken=%s", escaped);
    }
  g_clear_object (&data->msg);
  data->msg = _sandbox_rest_client_new_message (api, "GET", path->str);
  if (data->msg == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                               _("“%s” is not a valid E2B API URL; check E2B_API_URL."),
                               _sandbox_rest_client_get_base_url (api));
      g_object_unref (task);
      return;
    }
  soup_session_send_and_read_async (_sandbox_rest_client_get_session (api), data->msg,
                                    G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                    list_got, task);
}

static void
sandbox_e2b_backend_list (SandboxBackend *backend,
                          GHashTable     *labels,
                          GCancellable   *cancellable,
                          GTask          *task)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);
  ListData *data;

  if (!configured_or_fail (self, task))
    return;
  data = g_new0 (ListData, 1);
  data->store = g_list_store_new (SANDBOX_TYPE_INSTANCE);
  if (labels != NULL && g_hash_table_size (labels) > 0)
    {
      /* Each key and value encoded, then k=v&k2=v2 (as the SDKs send it). */
      g_autoptr(GString) filter = g_string_new (NULL);
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, labels);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          g_autofree char *k = g_uri_escape_string (key, NULL, FALSE);
          g_autofree char *v = g_uri_escape_string (value, NULL, FALSE);

          g_string_append_printf (filter, "%s%s=%s", filter->len ? "&" : "", k, v);
        }
      data->metadata = g_string_free (g_steal_pointer (&filter), FALSE);
    }
  g_task_set_task_data (task, data, (GDestroyNotify) list_data_free);
  list_page (g_object_ref (task), NULL);
}

/* ------------------------------------------------------------------ */

static void
sandbox_e2b_backend_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (object);

  switch (prop_id)
    {
    case PROP_API_KEY: g_value_set_string (value, self->api_key); break;
    case PROP_API_URL: g_value_take_string (value, get_api_url (self)); break;
    case PROP_DOMAIN: g_value_set_string (value, get_domain (self)); break;
    case PROP_SANDBOX_URL: g_value_set_string (value, setting (self->sandbox_url, "E2B_SANDBOX_URL")); break;
    case PROP_TEMPLATE: g_value_set_string (value, self->template_id); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_e2b_backend_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (object);
  char **field;

  switch (prop_id)
    {
    case PROP_API_KEY: field = &self->api_key; break;
    case PROP_API_URL: field = &self->api_url; break;
    case PROP_DOMAIN: field = &self->domain; break;
    case PROP_SANDBOX_URL: field = &self->sandbox_url; break;
    case PROP_TEMPLATE: field = &self->template_id; break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec); return;
    }
  g_free (*field);
  *field = g_value_dup_string (value);
  if (prop_id == PROP_API_URL || prop_id == PROP_DOMAIN)
    g_clear_object (&self->api);
}

static void
sandbox_e2b_backend_finalize (GObject *object)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (object);

  g_clear_object (&self->api);
  g_free (self->api_key);
  g_free (self->api_url);
  g_free (self->domain);
  g_free (self->sandbox_url);
  g_free (self->template_id);
  G_OBJECT_CLASS (sandbox_e2b_backend_parent_class)->finalize (object);
}

static void
sandbox_e2b_backend_class_init (SandboxE2bBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxBackendClass *backend_class = SANDBOX_BACKEND_CLASS (klass);

  object_class->get_property = sandbox_e2b_backend_get_property;
  object_class->set_property = sandbox_e2b_backend_set_property;
  object_class->finalize = sandbox_e2b_backend_finalize;

  backend_class->check_configured = sandbox_e2b_backend_check_configured;
  backend_class->create = sandbox_e2b_backend_create;
  backend_class->get_instance = sandbox_e2b_backend_get_instance;
  backend_class->list = sandbox_e2b_backend_list;

  properties[PROP_API_KEY] =
    g_param_spec_string ("api-key", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_API_URL] =
    g_param_spec_string ("api-url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_DOMAIN] =
    g_param_spec_string ("domain", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_SANDBOX_URL] =
    g_param_spec_string ("sandbox-url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TEMPLATE] =
    g_param_spec_string ("template", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_e2b_backend_init (SandboxE2bBackend *self)
{
}
