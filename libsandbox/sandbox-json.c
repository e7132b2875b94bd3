/* libsandbox - JSON helpers shared by the cloud backends and their emulators
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-json-private.h"

static JsonNode *
get_value (JsonObject *object,
           const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) ? node : NULL;
}

const char *
_sandbox_json_get_string (JsonObject *object,
                          const char *name)
{
  JsonNode *node = get_value (object, name);

  return node != NULL && json_node_get_value_type (node) == G_TYPE_STRING ? json_node_get_string (node) : NULL;
}

gboolean
_sandbox_json_get_int (JsonObject *object,
                       const char *name,
                       gint64     *value)
{
  JsonNode *node = get_value (object, name);
  const char *text;
  char *end = NULL;
  gint64 parsed;

  if (node == NULL)
    return FALSE;
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      *value = json_node_get_int (node);
      return TRUE;
    case G_TYPE_DOUBLE:
      *value = (gint64) json_node_get_double (node);
      return TRUE;
    case G_TYPE_STRING:
      text = json_node_get_string (node);
      parsed = g_ascii_strtoll (text, &end, 10);
      if (end == text || *end != '\0')
        return FALSE;
      *value = parsed;
      return TRUE;
    default:
      return FALSE;
    }
}

JsonObject *
_sandbox_json_get_object (JsonObject *object,
                          const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

GHashTable *
_sandbox_json_get_string_map (JsonObject *object,
                              const char *name,
                              const char *hidden)
{
  GHashTable *map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObject *members = _sandbox_json_get_object (object, name);
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (members == NULL)
    return map;
  json_object_iter_init (&iter, members);
  while (json_object_iter_next (&iter, &key, &value))
    if (g_strcmp0 (key, hidden) != 0 && JSON_NODE_HOLDS_VALUE (value) &&
        json_node_get_value_type (value) == G_TYPE_STRING)
      g_hash_table_insert (map, g_strdup (key), g_strdup (json_node_get_string (value)));
  return map;
}

JsonNode *
_sandbox_json_new_string_map (GHashTable *map)
{
  JsonObject *object = json_object_new ();
  JsonNode *node;
  GHashTableIter iter;
  gpointer key, value;

  if (map != NULL)
    {
      g_hash_table_iter_init (&iter, map);
      while (g_hash_table_iter_next (&iter, &key, &value))
        json_object_set_string_member (object, key, value);
    }
  node = json_node_init_object (json_node_alloc (), object);
  /* The node took its own reference. */
  json_object_unref (object);
  return node;
}

void
_sandbox_json_add_string_map (JsonBuilder *builder,
                              const char  *name,
                              GHashTable  *map)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_value (builder, _sandbox_json_new_string_map (map));
}
