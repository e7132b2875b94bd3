/* libsandbox - JSON helpers shared by the cloud backends and their emulators
 *
 * Reading members that may be missing or of the wrong type (a provider's
 * reply, a client's request), and string maps (labels, metadata, env) in
 * and out. Depends on GLib and json-glib only, so that the emulators in
 * tests/emulators compile this file too: the backends and the servers they
 * are tested against read JSON the same way.
 *
 * Not installed, not scanned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The string member @name of @object, or NULL when @object is NULL, the
 * member is missing or not a string. Borrowed from @object. */
const char *_sandbox_json_get_string     (JsonObject  *object,
                                          const char  *name);
/* The integer member @name of @object in *@value: an integer, a double
 * (truncated) or a decimal string (proto3 JSON writes int64 as one).
 * FALSE, *@value untouched, when it is missing or something else. */
gboolean    _sandbox_json_get_int        (JsonObject  *object,
                                          const char  *name,
                                          gint64      *value);
/* The object member @name of @object, or NULL. Borrowed. */
JsonObject *_sandbox_json_get_object     (JsonObject  *object,
                                          const char  *name);
/* The string members of the object member @name of @object (members that
 * are not strings are left out, and so is @hidden if not NULL), as a new
 * table utf8 -> utf8; empty when there is no such object. */
GHashTable *_sandbox_json_get_string_map (JsonObject  *object,
                                          const char  *name,
                                          const char  *hidden);
/* An object of the strings in @map (may be NULL: an empty object). */
JsonNode   *_sandbox_json_new_string_map (GHashTable  *map);
/* Adds the member @name: an object of the strings in @map (may be NULL:
 * an empty object). */
void        _sandbox_json_add_string_map (JsonBuilder *builder,
                                          const char  *name,
                                          GHashTable  *map);

G_END_DECLS
