/* libsandbox - OCI images imported for the local backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Layout of a store (see docs/images.md):
 *
 *   layers/HEX/     one unpacked layer, named by the digest of its blob
 *                   (whiteouts kept as the empty ".wh." files they are)
 *   images/HEX/     one image, named by the digest of its config:
 *     image.json    what SandboxImage reports
 *     rootfs/       the layers stacked: every file a hard link into layers/,
 *                   so a layer shared by two images is stored once
 *   refs/NAME       a name (URI-escaped NAME:TAG) holding an image's HEX
 *   tmp/            work in progress, named KIND-PID-RANDOM; only renamed
 *                   into layers/, images/ or refs/ when complete
 *   lock            flock: shared while importing, exclusive while
 *                   removing unused layers
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "sandbox-private.h"
#include "sandbox-image-store.h"

/* ------------------------------------------------------------------ */
/* SandboxImage                                                        */

/**
 * SandboxImage:
 *
 * An image in a [class@Sandbox.ImageStore]: its identity, its layers, the
 * root file system the local backend runs it from, and the parts of its
 * OCI configuration applied to every command (`Env`, `WorkingDir`,
 * `User`) or used when a command is not given (`Entrypoint`, `Cmd`).
 *
 * Instances are immutable snapshots: they do not change when the store
 * does.
 *
 * Since: 0.2
 */
struct _SandboxImage
{
  GObject  parent_instance;

  char    *id;
  GStrv    names;
  GStrv    layers;
  guint64  size;
  char    *rootfs;
  GStrv    env;
  char    *workdir;
  char    *user;
  GStrv    entrypoint;
  GStrv    cmd;
};

G_DEFINE_FINAL_TYPE (SandboxImage, sandbox_image, G_TYPE_OBJECT)

static void
sandbox_image_finalize (GObject *object)
{
  SandboxImage *self = SANDBOX_IMAGE (object);

  g_free (self->id);
  g_strfreev (self->names);
  g_strfreev (self->layers);
  g_free (self->rootfs);
  g_strfreev (self->env);
  g_free (self->workdir);
  g_free (self->user);
  g_strfreev (self->entrypoint);
  g_strfreev (self->cmd);
  G_OBJECT_CLASS (sandbox_image_parent_class)->finalize (object);
}

static void
sandbox_image_class_init (SandboxImageClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = sandbox_image_finalize;
}

static void
sandbox_image_init (SandboxImage *self)
{
}

/**
 * sandbox_image_get_id:
 * @self: a #SandboxImage
 *
 * Gets the image's identity.
 *
 * Returns: the image's identity, the digest of its configuration
 *   (`sha256:` and 64 hexadecimal digits)
 *
 * Since: 0.2
 */
const char *
sandbox_image_get_id (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return self->id;
}

/**
 * sandbox_image_get_names:
 * @self: a #SandboxImage
 *
 * Gets the names of the image.
 *
 * Returns: (array zero-terminated=1) (transfer none): the `NAME:TAG`
 *   references that lead to the image, sorted; possibly empty
 *
 * Since: 0.2
 */
const char * const *
sandbox_image_get_names (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return (const char * const *) self->names;
}

/**
 * sandbox_image_get_layers:
 * @self: a #SandboxImage
 *
 * Gets the image's layers.
 *
 * Returns: (array zero-terminated=1) (transfer none): the digests of the
 *   image's layer blobs, lowest first
 *
 * Since: 0.2
 */
const char * const *
sandbox_image_get_layers (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return (const char * const *) self->layers;
}

/**
 * sandbox_image_get_size:
 * @self: a #SandboxImage
 *
 * Gets the size of the image's layers.
 *
 * Returns: the total size in bytes of the image's layer blobs as imported
 *   (compressed, if they were)
 *
 * Since: 0.2
 */
guint64
sandbox_image_get_size (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), 0);
  return self->size;
}

/**
 * sandbox_image_get_rootfs:
 * @self: a #SandboxImage
 *
 * Gets the root file system a local sandbox runs the image from.
 *
 * Returns: the host directory holding the image's stacked layers, which
 *   the local backend binds read-only as a sandbox's root. Never modify it.
 *
 * Since: 0.2
 */
const char *
sandbox_image_get_rootfs (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return self->rootfs;
}

/**
 * sandbox_image_get_env:
 * @self: a #SandboxImage
 *
 * Gets the environment the image's configuration sets.
 *
 * Returns: (array zero-terminated=1) (transfer none): the configuration's
 *   `Env`, as `KEY=VALUE` strings; possibly empty
 *
 * Since: 0.2
 */
const char * const *
sandbox_image_get_env (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return (const char * const *) self->env;
}

/**
 * sandbox_image_get_workdir:
 * @self: a #SandboxImage
 *
 * Gets the working directory the image's configuration sets.
 *
 * Returns: (nullable): the configuration's `WorkingDir`, or %NULL
 *
 * Since: 0.2
 */
const char *
sandbox_image_get_workdir (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return self->workdir;
}

/**
 * sandbox_image_get_user:
 * @self: a #SandboxImage
 *
 * Gets the user the image's configuration names.
 *
 * Returns: (nullable): the configuration's `User` (`NAME`, `UID`,
 *   `NAME:GROUP` or `UID:GID`), or %NULL
 *
 * Since: 0.2
 */
const char *
sandbox_image_get_user (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return self->user;
}

/**
 * sandbox_image_get_entrypoint:
 * @self: a #SandboxImage
 *
 * Gets the image's entry point.
 *
 * Returns: (array zero-terminated=1) (transfer none): the configuration's
 *   `Entrypoint`; possibly empty
 *
 * Since: 0.2
 */
const char * const *
sandbox_image_get_entrypoint (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return (const char * const *) self->entrypoint;
}

/**
 * sandbox_image_get_cmd:
 * @self: a #SandboxImage
 *
 * Gets the image's default command.
 *
 * Returns: (array zero-terminated=1) (transfer none): the configuration's
 *   `Cmd`; possibly empty
 *
 * Since: 0.2
 */
const char * const *
sandbox_image_get_cmd (SandboxImage *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE (self), NULL);
  return (const char * const *) self->cmd;
}

/* ------------------------------------------------------------------ */
/* SandboxImageStore                                                   */

/**
 * SandboxImageStore:
 *
 * A directory of OCI images for the local backend, which runs a sandbox
 * from one when its [class@Sandbox.Spec]'s image is `NAME:TAG` or a
 * digest.
 *
 * An image is imported from an OCI image layout (a directory, or a tar of
 * one) or from a `docker save` / `podman save` archive, never from a
 * registry. Every blob is checked against its digest; every layer is
 * unpacked once, by digest, refusing entries that would land outside its
 * directory; and the layers are stacked (whiteouts and opaque directories
 * applied) into a root file system made of hard links to them. Imports
 * may run concurrently, also from several processes, and are atomic.
 *
 * The default store is the directory in `SANDBOX_IMAGE_STORE`, else
 * `images` beside the local sandboxes' directory (`SANDBOX_LOCAL_ROOT`,
 * by default `$XDG_RUNTIME_DIR/libsandbox/local`; without
 * `XDG_RUNTIME_DIR`, a private directory on a tmpfs, see the local
 * backend's documentation).
 *
 * Since: 0.2
 */
struct _SandboxImageStore
{
  GObject  parent_instance;

  char    *path;
  char    *sandboxes_dir;
};

enum { PROP_0, PROP_PATH, PROP_SANDBOXES_DIR, N_PROPS };
static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (SandboxImageStore, sandbox_image_store, G_TYPE_OBJECT)

char *
_sandbox_local_default_root (void)
{
  const char *env = g_getenv ("SANDBOX_LOCAL_ROOT");
  g_autofree char *runtime = NULL;

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  runtime = _sandbox_user_runtime_dir ();
  return g_build_filename (runtime, "libsandbox", "local", NULL);
}

char *
_sandbox_image_store_default_path (const char *sandboxes_dir)
{
  const char *env = g_getenv ("SANDBOX_IMAGE_STORE");
  g_autofree char *root = NULL;
  g_autofree char *parent = NULL;

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  root = sandboxes_dir ? g_strdup (sandboxes_dir) : _sandbox_local_default_root ();
  parent = _sandbox_local_data_dir (root);
  return g_build_filename (parent, "images", NULL);
}

static void
sandbox_image_store_finalize (GObject *object)
{
  SandboxImageStore *self = SANDBOX_IMAGE_STORE (object);

  g_free (self->path);
  g_free (self->sandboxes_dir);
  G_OBJECT_CLASS (sandbox_image_store_parent_class)->finalize (object);
}

static void
sandbox_image_store_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  SandboxImageStore *self = SANDBOX_IMAGE_STORE (object);

  switch (prop_id)
    {
    case PROP_PATH: g_value_set_string (value, self->path); break;
    case PROP_SANDBOXES_DIR: g_value_set_string (value, self->sandboxes_dir); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_image_store_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  SandboxImageStore *self = SANDBOX_IMAGE_STORE (object);

  switch (prop_id)
    {
    case PROP_PATH: self->path = g_value_dup_string (value); break;
    case PROP_SANDBOXES_DIR: self->sandboxes_dir = g_value_dup_string (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_image_store_constructed (GObject *object)
{
  SandboxImageStore *self = SANDBOX_IMAGE_STORE (object);

  G_OBJECT_CLASS (sandbox_image_store_parent_class)->constructed (object);
  if (self->sandboxes_dir == NULL)
    self->sandboxes_dir = _sandbox_local_default_root ();
  if (self->path == NULL)
    self->path = _sandbox_image_store_default_path (self->sandboxes_dir);
}

static void
sandbox_image_store_class_init (SandboxImageStoreClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = sandbox_image_store_finalize;
  object_class->get_property = sandbox_image_store_get_property;
  object_class->set_property = sandbox_image_store_set_property;
  object_class->constructed = sandbox_image_store_constructed;

  /**
   * SandboxImageStore:path:
   *
   * The store's directory, created when first needed. %NULL at
   * construction for the default (see [class@Sandbox.ImageStore]).
   *
   * Since: 0.2
   */
  properties[PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * SandboxImageStore:sandboxes-dir:
   *
   * The local backend's sandboxes' directory, where
   * [method@Sandbox.ImageStore.remove] looks for running sandboxes that use
   * an image. %NULL at construction for the default (`SANDBOX_LOCAL_ROOT`,
   * else `$XDG_RUNTIME_DIR/libsandbox/local`).
   *
   * Since: 0.2
   */
  properties[PROP_SANDBOXES_DIR] =
    g_param_spec_string ("sandboxes-dir", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_image_store_init (SandboxImageStore *self)
{
}

/**
 * sandbox_image_store_new:
 * @path: (nullable) (type filename): the store's directory, or %NULL for
 *   the default
 *
 * Opens an image store; nothing is read or created until it is used.
 *
 * Returns: (transfer full): a new #SandboxImageStore
 *
 * Since: 0.2
 */
SandboxImageStore *
sandbox_image_store_new (const char *path)
{
  return g_object_new (SANDBOX_TYPE_IMAGE_STORE, "path", path, NULL);
}

/**
 * sandbox_image_store_get_path:
 * @self: a #SandboxImageStore
 *
 * Gets the store's directory.
 *
 * Returns: (type filename): the store's directory
 *
 * Since: 0.2
 */
const char *
sandbox_image_store_get_path (SandboxImageStore *self)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE_STORE (self), NULL);
  return self->path;
}

/* ------------------------------------------------------------------ */
/* Small file-system helpers: nothing here follows a symbolic link     */

static gboolean
set_errno_error (GError     **error,
                 int          errsv,
                 const char  *what)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
               /* TRANSLATORS: the first %s is a phrase such as “create a work directory” */
               _("Image store: cannot %s: %s"), what, g_strerror (errsv));
  return FALSE;
}

/* Removes NAME below DIRFD, whatever it is, without following links. */
static void
remove_at (int         parent_fd,
           const char *name)
{
  int fd;
  DIR *dir;
  struct dirent *d;

  if (unlinkat (parent_fd, name, 0) == 0 || errno == ENOENT)
    return;
  fd = openat (parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return;
  fchmod (fd, 0700);
  dir = fdopendir (fd);
  if (dir == NULL)
    {
      close (fd);
      return;
    }
  while ((d = readdir (dir)) != NULL)
    if (strcmp (d->d_name, ".") != 0 && strcmp (d->d_name, "..") != 0)
      remove_at (dirfd (dir), d->d_name);
  closedir (dir);
  unlinkat (parent_fd, name, AT_REMOVEDIR);
}

static void
remove_path (const char *path)
{
  g_autofree char *parent = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  int fd = open (parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return;
  remove_at (fd, base);
  close (fd);
}

static gboolean
ensure_dirs (SandboxImageStore  *self,
             GError            **error)
{
  static const char * const subdirs[] = { "layers", "images", "refs", "tmp", NULL };

  for (guint i = 0; subdirs[i] != NULL; i++)
    {
      g_autofree char *dir = g_build_filename (self->path, subdirs[i], NULL);

      if (g_mkdir_with_parents (dir, 0700) != 0)
        {
          int errsv = errno;
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                       _("Cannot create the image store %s: %s. Set SANDBOX_IMAGE_STORE to a "
                         "writable directory."), self->path, g_strerror (errsv));
          return FALSE;
        }
    }
  /* A store that another user may change would let them swap an image's
   * root for one of theirs (or a link to the host's). */
  return _sandbox_check_private_dir (self->path, _("The image store"), error);
}

/* The store's lock: shared by imports, exclusive to drop unused layers. */
static int
take_lock (SandboxImageStore *self,
           int                how)
{
  g_autofree char *path = g_build_filename (self->path, "lock", NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  if (fd >= 0 && flock (fd, how) != 0)
    {
      close (fd);
      fd = -1;
    }
  return fd;
}

/* A fresh directory below tmp/, named KIND-PID-RANDOM. */
static char *
make_tmp_dir (SandboxImageStore  *self,
              const char         *kind,
              GError            **error)
{
  for (int attempt = 0; attempt < 100; attempt++)
    {
      g_autofree char *name = g_strdup_printf ("%s-%d-%08x", kind, (int) getpid (), g_random_int ());
      g_autofree char *path = g_build_filename (self->path, "tmp", name, NULL);

      if (g_mkdir (path, 0700) == 0)
        return g_steal_pointer (&path);
      if (errno != EEXIST)
        {
          set_errno_error (error, errno, _("create a work directory"));
          return NULL;
        }
    }
  set_errno_error (error, EEXIST, _("create a work directory"));
  return NULL;
}

/* Work left in tmp/ by an import that was killed: its pid is gone. */
static void
clean_stale_tmp (SandboxImageStore *self)
{
  g_autofree char *tmp = g_build_filename (self->path, "tmp", NULL);
  g_autoptr(GDir) dir = g_dir_open (tmp, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      const char *dash = strchr (name, '-');
      gint64 pid = dash ? g_ascii_strtoll (dash + 1, NULL, 10) : 0;

      if (pid > 0 && pid != getpid () && kill ((pid_t) pid, 0) != 0 && errno == ESRCH)
        {
          g_autofree char *path = g_build_filename (tmp, name, NULL);
          remove_path (path);
        }
    }
}

static gboolean
is_hex64 (const char *s)
{
  if (s == NULL || strlen (s) != 64)
    return FALSE;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return FALSE;
  return TRUE;
}

/* "sha256:HEX" -> HEX, or NULL if it is not one. */
static const char *
digest_hex (const char *digest)
{
  if (digest == NULL || !g_str_has_prefix (digest, "sha256:") || !is_hex64 (digest + 7))
    return NULL;
  return digest + 7;
}

static char *
escape_name (const char *name)
{
  return g_uri_escape_string (name, NULL, FALSE);
}

/* NAME -> NAME:latest when it has no tag. */
/* Whether NAME, which an image archive gives itself (an index's
 * annotation, a docker save's RepoTags), can be one of the store's names:
 * a reference as registries write them (letters, digits, "._-/:@+"),
 * at most 255 bytes. The archive is hostile content: a name of escape
 * sequences, shown by `sandboxctl image ls`, drove the user's terminal
 * (its title, the clipboard), and a line feed in it forged a line of
 * the listing. Others are not taken (the import goes on without them;
 * the caller can name the image). */
static gboolean
is_reference (const char *name)
{
  gsize len = 0;

  for (const char *p = name; *p != '\0'; p++, len++)
    if (!g_ascii_isalnum (*p) && strchr ("._-/:@+", *p) == NULL)
      return FALSE;
  return len > 0 && len <= 255;
}

static char *
normalize_name (const char *name)
{
  const char *slash = strrchr (name, '/');
  const char *colon = strchr (slash ? slash : name, ':');

  return colon ? g_strdup (name) : g_strconcat (name, ":latest", NULL);
}

static gboolean
write_file_atomic (const char  *dir,
                   const char  *name,
                   const char  *contents,
                   gssize       length,
                   GError     **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  /* g_file_set_contents writes a temporary file and renames it. */
  return g_file_set_contents_full (path, contents, length,
                                   G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

/* ------------------------------------------------------------------ */
/* Reading an image record                                             */

static GStrv
strv_member (JsonObject *object,
             const char *name)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *e = json_array_get_element (array, i);
          if (JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING)
            g_strv_builder_add (builder, json_node_get_string (e));
        }
    }
  return g_strv_builder_end (builder);
}

static const char *
string_member (JsonObject *object,
               const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return json_node_get_string (node);
  return NULL;
}

static JsonObject *
object_member (JsonObject *object,
               const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

/* The names (refs) of every image: HEX -> GPtrArray of names. */
static GHashTable *
read_refs (SandboxImageStore *self)
{
  g_autofree char *refs = g_build_filename (self->path, "refs", NULL);
  g_autoptr(GDir) dir = g_dir_open (refs, 0, NULL);
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify) g_ptr_array_unref);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (refs, name, NULL);
      g_autofree char *hex = NULL;
      GPtrArray *names;

      if (name[0] == '.' || !g_file_get_contents (path, &hex, NULL, NULL))
        continue;
      g_strstrip (hex);
      if (!is_hex64 (hex))
        continue;
      names = g_hash_table_lookup (table, hex);
      if (names == NULL)
        {
          names = g_ptr_array_new_with_free_func (g_free);
          g_hash_table_insert (table, g_strdup (hex), names);
        }
      g_ptr_array_add (names, g_uri_unescape_string (name, NULL));
    }
  return table;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static SandboxImage *
load_image (SandboxImageStore  *self,
            const char         *hex,
            GHashTable         *refs,
            GError            **error)
{
  g_autofree char *dir = g_build_filename (self->path, "images", hex, NULL);
  g_autofree char *record = g_build_filename (dir, "image.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();
  SandboxImage *image;
  JsonObject *object, *config;
  GPtrArray *found;

  if (!json_parser_load_from_file (parser, record, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                   _("The image sha256:%s is not in the image store %s."), hex, self->path);
      return NULL;
    }
  object = json_node_get_object (json_parser_get_root (parser));
  config = object_member (object, "config");

  image = g_object_new (SANDBOX_TYPE_IMAGE, NULL);
  image->id = g_strconcat ("sha256:", hex, NULL);
  found = refs ? g_hash_table_lookup (refs, hex) : NULL;
  if (found != NULL)
    {
      g_ptr_array_sort (found, compare_strings);
      for (guint i = 0; i < found->len; i++)
        g_strv_builder_add (names, g_ptr_array_index (found, i));
    }
  image->names = g_strv_builder_end (names);
  image->layers = strv_member (object, "layers");
  image->size = json_object_get_int_member_with_default (object, "size", 0);
  image->rootfs = g_build_filename (dir, "rootfs", NULL);
  image->env = strv_member (config, "Env");
  image->workdir = g_strdup (string_member (config, "WorkingDir"));
  if (image->workdir != NULL && *image->workdir == '\0')
    g_clear_pointer (&image->workdir, g_free);
  image->user = g_strdup (string_member (config, "User"));
  if (image->user != NULL && *image->user == '\0')
    g_clear_pointer (&image->user, g_free);
  image->entrypoint = strv_member (config, "Entrypoint");
  image->cmd = strv_member (config, "Cmd");
  return image;
}

/* REFERENCE -> HEX: sha256:HEX, HEX, a unique prefix of at least 12
 * digits, or NAME[:TAG]. */
static char *
resolve_reference (SandboxImageStore  *self,
                   const char         *reference,
                   GError            **error)
{
  g_autofree char *images = g_build_filename (self->path, "images", NULL);
  const char *hex = reference;
  gsize len;

  if (g_str_has_prefix (hex, "sha256:"))
    hex += 7;
  len = strlen (hex);
  if (len >= 12 && len <= 64 && strspn (hex, "0123456789abcdef") == len)
    {
      g_autoptr(GDir) dir = g_dir_open (images, 0, NULL);
      g_autofree char *match = NULL;
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        if (is_hex64 (name) && strncmp (name, hex, len) == 0)
          {
            if (match != NULL)
              {
                g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                             _("The image reference “%s” matches more than one image; give more "
                               "digits."), reference);
                return NULL;
              }
            match = g_strdup (name);
          }
      if (match != NULL)
        return g_steal_pointer (&match);
    }
  {
    g_autofree char *full = normalize_name (reference);
    g_autofree char *escaped = escape_name (full);
    g_autofree char *path = g_build_filename (self->path, "refs", escaped, NULL);
    g_autofree char *contents = NULL;

    if (g_file_get_contents (path, &contents, NULL, NULL) && is_hex64 (g_strstrip (contents)))
      return g_steal_pointer (&contents);
  }
  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
               _("No image “%s” in the image store %s. Import it first with "
                 "“sandboxctl image import FILE --name %s” (an OCI layout or a docker save "
                 "archive)."), reference, self->path, reference);
  return NULL;
}

/**
 * sandbox_image_store_lookup:
 * @self: a #SandboxImageStore
 * @reference: `NAME:TAG` (`NAME` alone means `NAME:latest`), the image's
 *   id (`sha256:HEX`), or at least 12 leading digits of it
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Finds an imported image. Fails with %SANDBOX_ERROR_NOT_FOUND, whose
 * message gives the command that imports it, if there is none. This reads
 * a few small files; [method@Sandbox.ImageStore.lookup_async] does it in a
 * worker thread.
 *
 * Returns: (transfer full): the image, or %NULL on error
 *
 * Since: 0.2
 */
SandboxImage *
sandbox_image_store_lookup (SandboxImageStore  *self,
                            const char         *reference,
                            GCancellable       *cancellable,
                            GError            **error)
{
  g_autofree char *hex = NULL;
  g_autoptr(GHashTable) refs = NULL;

  g_return_val_if_fail (SANDBOX_IS_IMAGE_STORE (self), NULL);
  g_return_val_if_fail (reference != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_cancellable_set_error_if_cancelled (cancellable, error) ||
      !_sandbox_check_private_dir (self->path, _("The image store"), error))
    return NULL;

  hex = resolve_reference (self, reference, error);
  if (hex == NULL)
    return NULL;
  refs = read_refs (self);
  return load_image (self, hex, refs, error);
}

/**
 * sandbox_image_store_list:
 * @self: a #SandboxImageStore
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Lists the imported images, by id. See also
 * [method@Sandbox.ImageStore.list_async].
 *
 * Returns: (transfer container) (element-type SandboxImage): the images
 *   (possibly none), or %NULL on error
 *
 * Since: 0.2
 */
GPtrArray *
sandbox_image_store_list (SandboxImageStore  *self,
                          GCancellable       *cancellable,
                          GError            **error)
{
  g_autofree char *images = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GHashTable) refs = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *result = g_ptr_array_new_with_free_func (g_object_unref);
  const char *name;

  g_return_val_if_fail (SANDBOX_IS_IMAGE_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      g_ptr_array_unref (result);
      return NULL;
    }
  images = g_build_filename (self->path, "images", NULL);
  dir = g_dir_open (images, 0, NULL);
  refs = read_refs (self);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    if (is_hex64 (name))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      SandboxImage *image = load_image (self, g_ptr_array_index (names, i), refs, NULL);
      if (image != NULL)
        g_ptr_array_add (result, image);
    }
  return result;
}

static void
list_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError *error = NULL;
  GPtrArray *images = sandbox_image_store_list (source_object, cancellable, &error);

  if (images == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, images, (GDestroyNotify) g_ptr_array_unref);
}

/**
 * sandbox_image_store_list_async:
 * @self: a #SandboxImageStore
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the list
 * @user_data: data for @callback
 *
 * Lists the imported images in a worker thread. See
 * [method@Sandbox.ImageStore.list].
 *
 * Since: 0.2
 */
void
sandbox_image_store_list_async (SandboxImageStore   *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (SANDBOX_IS_IMAGE_STORE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, sandbox_image_store_list_async);
  g_task_run_in_thread (task, list_thread);
}

/**
 * sandbox_image_store_list_finish:
 * @self: a #SandboxImageStore
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.ImageStore.list_async].
 *
 * Returns: (transfer container) (element-type SandboxImage): the images
 *   (possibly none), or %NULL on error
 *
 * Since: 0.2
 */
GPtrArray *
sandbox_image_store_list_finish (SandboxImageStore  *self,
                                 GAsyncResult       *result,
                                 GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_image_store_list_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
lookup_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  GError *error = NULL;
  SandboxImage *image = sandbox_image_store_lookup (source_object, task_data, cancellable, &error);

  if (image == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, image, g_object_unref);
}

/**
 * sandbox_image_store_lookup_async:
 * @self: a #SandboxImageStore
 * @reference: `NAME:TAG`, an id or a unique id prefix (see
 *   [method@Sandbox.ImageStore.lookup])
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the image
 * @user_data: data for @callback
 *
 * Finds an imported image in a worker thread. See
 * [method@Sandbox.ImageStore.lookup].
 *
 * Since: 0.2
 */
void
sandbox_image_store_lookup_async (SandboxImageStore   *self,
                                  const char          *reference,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (SANDBOX_IS_IMAGE_STORE (self));
  g_return_if_fail (reference != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, sandbox_image_store_lookup_async);
  g_task_set_task_data (task, g_strdup (reference), g_free);
  g_task_run_in_thread (task, lookup_thread);
}

/**
 * sandbox_image_store_lookup_finish:
 * @self: a #SandboxImageStore
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.ImageStore.lookup_async].
 *
 * Returns: (transfer full): the image, or %NULL on error
 *
 * Since: 0.2
 */
SandboxImage *
sandbox_image_store_lookup_finish (SandboxImageStore  *self,
                                   GAsyncResult       *result,
                                   GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_image_store_lookup_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* Import                                                              */

static gboolean
protocol_error (GError     **error,
                const char  *source,
                const char  *detail)
{
  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
               _("%s is not an image this store can import: %s. Give an OCI image layout "
                 "(a directory or tar with index.json) or a docker save archive."),
               source, detail);
  return FALSE;
}

/* The most an image's JSON (index.json, manifest.json, a manifest or a
 * config) may hold: a few KiB in practice. */
#define SOURCE_JSON_MAX (64 * 1024 * 1024)

/* REL below DIRFD one name at a time, following no link (where the kernel
 * has no openat2). */
static int
open_beneath_no_links (int         dirfd,
                       const char *rel)
{
  g_auto(GStrv) parts = g_strsplit (rel, "/", -1);
  int fd = dup (dirfd);
  guint n = g_strv_length (parts);

  for (guint i = 0; fd >= 0 && i < n; i++)
    {
      int next;

      if (parts[i][0] == '\0' || strcmp (parts[i], ".") == 0)
        continue;
      if (strcmp (parts[i], "..") == 0)
        {
          close (fd);
          errno = EXDEV;
          return -1;
        }
      next = openat (fd, parts[i],
                     (i + 1 < n ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK | O_NOCTTY) |
                     O_NOFOLLOW | O_CLOEXEC);
      close (fd);
      fd = next;
    }
  return fd;
}

/* Opens REL beneath SRC, the image source the caller named (a layout
 * directory, or the tar's unpacked copy), and takes only a regular file.
 * SRC may be a directory a sandbox wrote (a read-write mount): a file there
 * that was a FIFO had open() wait for a writer for good (not even SIGTERM
 * ended sandboxctl), and a link to /dev/zero was read until memory ran out.
 * Links are followed only while they stay beneath SRC (openat2
 * RESOLVE_BENEATH: docker save links a repeated layer to the first); where
 * the kernel has no openat2 (before Linux 5.6), none is. */
static int
open_source_file (const char   *src,
                  const char   *rel,
                  struct stat  *st,
                  GError      **error)
{
  struct open_how how = { 0 };
  g_autofree char *shown = _sandbox_display_text (rel);
  g_autofree char *detail = NULL;
  int dirfd, fd, errsv;

  dirfd = open (src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    {
      set_errno_error (error, errno, _("read the image"));
      return -1;
    }
  how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  fd = syscall (SYS_openat2, dirfd, rel, &how, sizeof how);
  if (fd < 0 && (errno == ENOSYS || errno == EPERM))
    fd = open_beneath_no_links (dirfd, rel);
  errsv = errno;
  close (dirfd);
  if (fd < 0)
    {
      if (errsv == EXDEV || errsv == ELOOP)
        detail = g_strdup_printf ("%s leads out of the image (a link)", shown);
      else
        detail = g_strdup_printf ("cannot open %s: %s", shown, g_strerror (errsv));
      protocol_error (error, src, detail);
      return -1;
    }
  if (fstat (fd, st) != 0 || !S_ISREG (st->st_mode))
    {
      close (fd);
      detail = g_strdup_printf ("%s is not a regular file", shown);
      protocol_error (error, src, detail);
      return -1;
    }
  return fd;
}

/* The whole of REL beneath SRC (open_source_file), at most
 * SOURCE_JSON_MAX bytes: for the image's JSON. */
static gboolean
read_source_file (const char   *src,
                  const char   *rel,
                  char        **contents,
                  gsize        *len,
                  GError      **error)
{
  struct stat st;
  g_autofree char *buf = NULL;
  gsize done = 0;
  int fd = open_source_file (src, rel, &st, error);

  if (fd < 0)
    return FALSE;
  if (st.st_size > SOURCE_JSON_MAX)
    {
      g_autofree char *shown = _sandbox_display_text (rel);
      g_autofree char *detail = g_strdup_printf ("%s is larger than %d MiB", shown,
                                                 SOURCE_JSON_MAX >> 20);
      close (fd);
      return protocol_error (error, src, detail);
    }
  buf = g_malloc ((gsize) st.st_size + 1);
  while (done < (gsize) st.st_size)
    {
      ssize_t n = read (fd, buf + done, (gsize) st.st_size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int errsv = errno;
          close (fd);
          return set_errno_error (error, errsv, _("read the image"));
        }
      if (n == 0)
        break;
      done += n;
    }
  close (fd);
  buf[done] = '\0';
  *contents = g_steal_pointer (&buf);
  *len = done;
  return TRUE;
}

static char *
sha256_hex (const char *data,
            gsize       len)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
}

/* Reads the blob DIGEST of an OCI layout, checked against its digest. */
static char *
read_blob (const char   *src,
           const char   *digest,
           gsize        *len,
           GError      **error)
{
  const char *hex = digest_hex (digest);
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *got = NULL;

  if (hex == NULL)
    {
      protocol_error (error, src, digest ? digest : "(no digest)");
      return NULL;
    }
  path = g_build_filename ("blobs", "sha256", hex, NULL);
  if (!read_source_file (src, path, &contents, len, error))
    return NULL;
  got = sha256_hex (contents, *len);
  if (strcmp (got, hex) != 0)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The blob %s does not match its digest (its content hashes to sha256:%s); "
                     "the image is damaged or was tampered with."), digest, got);
      return NULL;
    }
  return g_steal_pointer (&contents);
}

static JsonNode *
parse_json (const char  *src,
            const char  *contents,
            gsize        len,
            const char  *what,
            GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local_error = NULL;

  if (!json_parser_load_from_data (parser, contents, len, &local_error))
    {
      g_autofree char *detail = g_strdup_printf ("%s: %s", what, local_error->message);
      protocol_error (error, src, detail);
      return NULL;
    }
  return json_parser_steal_root (parser);
}

static gboolean
parse_json_file (const char  *src,
                 const char  *rel,
                 JsonNode   **out,
                 GError     **error)
{
  g_autofree char *contents = NULL;
  gsize len;

  if (!read_source_file (src, rel, &contents, &len, error))
    return FALSE;
  *out = parse_json (src, contents, len, rel, error);
  return *out != NULL;
}

static char *
file_sha256 (int fd)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 buf[64 * 1024];
  ssize_t n;

  if (fd < 0)
    return NULL;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_checksum_update (checksum, buf, n);
  close (fd);
  return n < 0 ? NULL : g_strdup (g_checksum_get_string (checksum));
}

/* Unpacks the layer REL of the source SRC (open_source_file) into
 * layers/HEX unless it is there, checking that the stream hashes to
 * EXPECTED (a sha256 hex). */
static gboolean
import_layer (SandboxImageStore  *self,
              const char         *src,
              const char         *rel,
              const char         *expected,
              guint64            *size,
              GCancellable       *cancellable,
              GError            **error)
{
  g_autofree char *final = g_build_filename (self->path, "layers", expected, NULL);
  g_autofree char *tmp = NULL;
  g_autofree char *tree = NULL;
  g_autofree char *file = g_build_filename (src, rel, NULL);
  g_autoptr(GFile) tree_file = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GError) local_error = NULL;
  struct stat st;
  int fd = open_source_file (src, rel, &st, error);

  if (fd < 0)
    return FALSE;
  *size += st.st_size;
  if (g_file_test (final, G_FILE_TEST_IS_DIR))
    {
      close (fd);
      return TRUE;   /* content-addressed: the same digest is the same layer */
    }
  in = g_unix_input_stream_new (fd, TRUE);
  tmp = make_tmp_dir (self, "layer", error);
  if (tmp == NULL)
    return FALSE;
  tree = g_build_filename (tmp, "tree", NULL);
  tree_file = g_file_new_for_path (tree);
  if (!_sandbox_archive_extract_layer (in, tree_file, checksum, cancellable, &local_error))
    {
      g_autofree char *actual = file_sha256 (open_source_file (src, rel, &st, NULL));

      remove_path (tmp);
      /* A layer that does not unpack may be one that was swapped: say so. */
      if (actual != NULL && strcmp (actual, expected) != 0)
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                       _("The layer %s does not match its digest sha256:%s (it hashes to sha256:%s); "
                         "the image is damaged or was tampered with."), file, expected, actual);
          return FALSE;
        }
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), _("Layer sha256:%s: "), expected);
      return FALSE;
    }
  if (strcmp (g_checksum_get_string (checksum), expected) != 0)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The layer %s does not match its digest sha256:%s (it hashes to sha256:%s); "
                     "the image is damaged or was tampered with."),
                   file, expected, g_checksum_get_string (checksum));
      remove_path (tmp);
      return FALSE;
    }
  /* Another import may have put the same layer in place meanwhile. */
  if (rename (tree, final) != 0 && errno != EEXIST && errno != ENOTEMPTY)
    {
      int errsv = errno;
      remove_path (tmp);
      return set_errno_error (error, errsv, _("store a layer"));
    }
  remove_path (tmp);
  return TRUE;
}

/* Stacks the layer at LAYER_FD onto ROOT_FD, one directory level. */
static gboolean
apply_layer (int          layer_fd,
             int          root_fd,
             const char  *where,
             GError     **error)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  gboolean opaque = FALSE;
  DIR *dir;
  struct dirent *d;
  int fd = dup (layer_fd);

  if (fd < 0 || (dir = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return set_errno_error (error, errno, _("read a layer"));
    }
  while ((d = readdir (dir)) != NULL)
    {
      if (strcmp (d->d_name, ".") == 0 || strcmp (d->d_name, "..") == 0)
        continue;
      if (strcmp (d->d_name, ".wh..wh..opq") == 0)
        opaque = TRUE;
      else
        g_ptr_array_add (names, g_strdup (d->d_name));
    }
  closedir (dir);
  g_ptr_array_sort (names, compare_strings);

  /* Whiteouts first: they hide what the layers below hold, never what
   * this layer adds. */
  if (opaque)
    {
      DIR *rdir;
      int rfd = dup (root_fd);

      if (rfd >= 0 && (rdir = fdopendir (rfd)) != NULL)
        {
          g_autoptr(GPtrArray) old = g_ptr_array_new_with_free_func (g_free);
          while ((d = readdir (rdir)) != NULL)
            if (strcmp (d->d_name, ".") != 0 && strcmp (d->d_name, "..") != 0)
              g_ptr_array_add (old, g_strdup (d->d_name));
          closedir (rdir);
          for (guint i = 0; i < old->len; i++)
            remove_at (root_fd, g_ptr_array_index (old, i));
        }
      else if (rfd >= 0)
        close (rfd);
    }
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      const char *hidden = name + 4;

      if (g_str_has_prefix (name, ".wh.") && *hidden != '\0' &&
          strcmp (hidden, ".") != 0 && strcmp (hidden, "..") != 0)
        remove_at (root_fd, hidden);
    }

  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      struct stat st, rst;

      if (g_str_has_prefix (name, ".wh."))
        continue;
      if (fstatat (layer_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return set_errno_error (error, errno, _("read a layer"));
      if (S_ISDIR (st.st_mode))
        {
          g_autofree char *sub = g_build_filename (where, name, NULL);
          int lfd, rfd;
          gboolean ok;

          /* A directory replaces whatever else a lower layer had there. */
          if (fstatat (root_fd, name, &rst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR (rst.st_mode))
            remove_at (root_fd, name);
          if (mkdirat (root_fd, name, 0755) != 0 && errno != EEXIST)
            return set_errno_error (error, errno, _("stack the layers"));
          lfd = openat (layer_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          rfd = openat (root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (lfd < 0 || rfd < 0)
            {
              int errsv = errno;
              if (lfd >= 0)
                close (lfd);
              if (rfd >= 0)
                close (rfd);
              return set_errno_error (error, errsv, _("stack the layers"));
            }
          fchmod (rfd, (st.st_mode & 07777) | 0700);
          ok = apply_layer (lfd, rfd, sub, error);
          close (lfd);
          close (rfd);
          if (!ok)
            return FALSE;
        }
      else
        {
          remove_at (root_fd, name);
          /* A hard link, not a copy: the layer's file is the image's. The
           * link itself when it is a symbolic link (no AT_SYMLINK_FOLLOW). */
          if (linkat (layer_fd, name, root_fd, name, 0) != 0)
            return set_errno_error (error, errno, _("stack the layers"));
        }
    }
  return TRUE;
}

/* Creates WORKDIR (absolute, in the image) below ROOT_FD where missing,
 * stopping quietly at anything that is not a real directory. */
static void
make_workdir (int         root_fd,
              const char *workdir)
{
  g_auto(GStrv) parts = g_strsplit (workdir, "/", -1);
  int fd = dup (root_fd);

  for (guint i = 0; fd >= 0 && parts[i] != NULL; i++)
    {
      int next;

      if (*parts[i] == '\0' || strcmp (parts[i], ".") == 0)
        continue;
      if (strcmp (parts[i], "..") == 0)
        break;
      mkdirat (fd, parts[i], 0755);
      next = openat (fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (fd);
      fd = next;
    }
  if (fd >= 0)
    close (fd);
}

static void
add_strv (JsonBuilder        *builder,
          const char         *name,
          const char * const *values)
{
  json_builder_set_member_name (builder, name);
  json_builder_begin_array (builder);
  for (guint i = 0; values != NULL && values[i] != NULL; i++)
    json_builder_add_string_value (builder, values[i]);
  json_builder_end_array (builder);
}

typedef struct
{
  char      *src;          /* the unpacked layout */
  char      *config_hex;
  JsonNode  *config;       /* the image configuration */
  GPtrArray *layer_files;  /* paths relative to the source */
  GPtrArray *layer_hexes;  /* expected digests */
  GPtrArray *names;        /* from the archive */
} Manifest;

static void
manifest_clear (Manifest *m)
{
  g_free (m->src);
  g_free (m->config_hex);
  g_clear_pointer (&m->config, json_node_unref);
  g_clear_pointer (&m->layer_files, g_ptr_array_unref);
  g_clear_pointer (&m->layer_hexes, g_ptr_array_unref);
  g_clear_pointer (&m->names, g_ptr_array_unref);
}

static gboolean
is_index_type (const char *media_type)
{
  return g_strcmp0 (media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
         g_strcmp0 (media_type, "application/vnd.docker.distribution.manifest.list.v2+json") == 0;
}

/* Picks the manifest for this machine (linux/amd64 or no platform) from
 * an index's manifests, following nested indexes. */
static gboolean
read_oci (Manifest     *m,
          const char   *src,
          GError      **error)
{
  g_autoptr(JsonNode) index = NULL;
  g_autoptr(JsonNode) manifest = NULL;
  g_autofree char *manifest_digest = NULL;
  g_autofree char *config_data = NULL;
  JsonObject *config_desc;
  JsonArray *layers;
  gsize len;

  if (!parse_json_file (src, "index.json", &index, error))
    return FALSE;
  for (int depth = 0; ; depth++)
    {
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (index) ? json_node_get_object (index) : NULL;
      JsonNode *list = object ? json_object_get_member (object, "manifests") : NULL;
      JsonArray *array = list && JSON_NODE_HOLDS_ARRAY (list) ? json_node_get_array (list) : NULL;
      JsonObject *chosen = NULL;
      g_autofree char *data = NULL;

      if (array == NULL || json_array_get_length (array) == 0 || depth > 4)
        return protocol_error (error, src, "index.json lists no manifest");
      for (guint i = 0; i < json_array_get_length (array) && chosen == NULL; i++)
        {
          JsonNode *e = json_array_get_element (array, i);
          JsonObject *desc = JSON_NODE_HOLDS_OBJECT (e) ? json_node_get_object (e) : NULL;
          JsonObject *platform = object_member (desc, "platform");
          JsonObject *annotations = object_member (desc, "annotations");
          const char *name;

          if (desc == NULL)
            continue;
          if (platform != NULL &&
              (g_strcmp0 (string_member (platform, "os"), "linux") != 0 ||
               g_strcmp0 (string_member (platform, "architecture"), "amd64") != 0))
            continue;
          chosen = desc;
          name = string_member (annotations, "io.containerd.image.name");
          if (name == NULL)
            name = string_member (annotations, "org.opencontainers.image.ref.name");
          if (name != NULL && (strchr (name, ':') || strchr (name, '/')) && is_reference (name))
            g_ptr_array_add (m->names, normalize_name (name));
          else if (name != NULL)
            g_debug ("Image name “%s” not taken: not a reference", name);
        }
      if (chosen == NULL)
        return protocol_error (error, src, "no manifest for linux/amd64");
      g_free (manifest_digest);
      manifest_digest = g_strdup (string_member (chosen, "digest"));
      data = read_blob (src, manifest_digest, &len, error);
      if (data == NULL)
        return FALSE;
      g_clear_pointer (&manifest, json_node_unref);
      manifest = parse_json (src, data, len, manifest_digest, error);
      if (manifest == NULL)
        return FALSE;
      if (!JSON_NODE_HOLDS_OBJECT (manifest))
        return protocol_error (error, src, "a manifest is not an object");
      if (!is_index_type (string_member (chosen, "mediaType")) &&
          !is_index_type (string_member (json_node_get_object (manifest), "mediaType")))
        break;
      g_clear_pointer (&index, json_node_unref);
      index = g_steal_pointer (&manifest);
    }

  config_desc = object_member (json_node_get_object (manifest), "config");
  if (config_desc == NULL || digest_hex (string_member (config_desc, "digest")) == NULL)
    return protocol_error (error, src, "the manifest has no config digest");
  config_data = read_blob (src, string_member (config_desc, "digest"), &len, error);
  if (config_data == NULL)
    return FALSE;
  m->config = parse_json (src, config_data, len, "config", error);
  if (m->config == NULL)
    return FALSE;
  m->config_hex = g_strdup (digest_hex (string_member (config_desc, "digest")));
  {
    JsonNode *node = json_object_get_member (json_node_get_object (manifest), "layers");
    if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
      return protocol_error (error, src, "the manifest has no layers");
    layers = json_node_get_array (node);
  }
  for (guint i = 0; i < json_array_get_length (layers); i++)
    {
      JsonNode *e = json_array_get_element (layers, i);
      const char *hex = JSON_NODE_HOLDS_OBJECT (e)
        ? digest_hex (string_member (json_node_get_object (e), "digest")) : NULL;

      if (hex == NULL)
        return protocol_error (error, src, "a layer has no sha256 digest");
      g_ptr_array_add (m->layer_files, g_build_filename ("blobs", "sha256", hex, NULL));
      g_ptr_array_add (m->layer_hexes, g_strdup (hex));
    }
  return TRUE;
}

static gboolean
has_docker_manifest (const char *src)
{
  g_autofree char *path = g_build_filename (src, "manifest.json", NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/* Whether SRC holds a root file system's files (a shell, or the usual
 * top-level directories) rather than an image. */
static gboolean
looks_like_rootfs (const char *src)
{
  static const char * const marks[] = { "bin/sh", "usr/bin", "etc" };

  for (guint i = 0; i < G_N_ELEMENTS (marks); i++)
    {
      g_autofree char *path = g_build_filename (src, marks[i], NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return TRUE;
    }
  return FALSE;
}

/* A docker save archive: manifest.json names the config and the layer
 * tars by path; the layers are checked against the config's diff_ids. */
static gboolean
read_docker (Manifest     *m,
             const char   *src,
             GError      **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *config_data = NULL;
  JsonObject *entry, *rootfs;
  JsonArray *layers, *diff_ids;
  JsonNode *node;
  const char *config_rel;
  gsize len;

  if (!parse_json_file (src, "manifest.json", &root, error))
    return FALSE;
  if (!JSON_NODE_HOLDS_ARRAY (root) || json_array_get_length (json_node_get_array (root)) == 0 ||
      !JSON_NODE_HOLDS_OBJECT (json_array_get_element (json_node_get_array (root), 0)))
    return protocol_error (error, src, "manifest.json lists no image");
  entry = json_node_get_object (json_array_get_element (json_node_get_array (root), 0));
  config_rel = string_member (entry, "Config");
  if (config_rel == NULL || g_path_is_absolute (config_rel) || strstr (config_rel, ".."))
    return protocol_error (error, src, "manifest.json has no usable Config");
  if (!read_source_file (src, config_rel, &config_data, &len, error))
    return FALSE;
  m->config_hex = sha256_hex (config_data, len);
  m->config = parse_json (src, config_data, len, config_rel, error);
  if (m->config == NULL || !JSON_NODE_HOLDS_OBJECT (m->config))
    return m->config == NULL ? FALSE : protocol_error (error, src, "the config is not an object");
  {
    g_auto(GStrv) tags = strv_member (entry, "RepoTags");
    for (guint i = 0; tags[i] != NULL; i++)
      if (is_reference (tags[i]))
        g_ptr_array_add (m->names, normalize_name (tags[i]));
      else
        g_debug ("Image name “%s” not taken: not a reference", tags[i]);
  }
  node = json_object_get_member (entry, "Layers");
  rootfs = object_member (json_node_get_object (m->config), "rootfs");
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node) || rootfs == NULL ||
      json_object_get_member (rootfs, "diff_ids") == NULL ||
      !JSON_NODE_HOLDS_ARRAY (json_object_get_member (rootfs, "diff_ids")))
    return protocol_error (error, src, "no layers or no rootfs.diff_ids");
  layers = json_node_get_array (node);
  diff_ids = json_node_get_array (json_object_get_member (rootfs, "diff_ids"));
  if (json_array_get_length (layers) != json_array_get_length (diff_ids))
    return protocol_error (error, src, "the layers do not match rootfs.diff_ids");
  for (guint i = 0; i < json_array_get_length (layers); i++)
    {
      const char *rel = json_array_get_string_element (layers, i);
      const char *hex = digest_hex (json_array_get_string_element (diff_ids, i));

      if (rel == NULL || hex == NULL || g_path_is_absolute (rel) || strstr (rel, ".."))
        return protocol_error (error, src, "a layer path or diff_id is not usable");
      g_ptr_array_add (m->layer_files, g_strdup (rel));
      g_ptr_array_add (m->layer_hexes, g_strdup (hex));
    }
  return TRUE;
}

static gboolean
write_ref (SandboxImageStore  *self,
           const char         *name,
           const char         *hex,
           GError            **error)
{
  g_autofree char *refs = g_build_filename (self->path, "refs", NULL);
  g_autofree char *escaped = escape_name (name);
  g_autofree char *tmp = g_strdup_printf (".%s.%d-%08x", escaped, (int) getpid (), g_random_int ());
  g_autofree char *tmp_path = g_build_filename (refs, tmp, NULL);
  g_autofree char *path = g_build_filename (refs, escaped, NULL);

  if (!g_file_set_contents_full (tmp_path, hex, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    return FALSE;
  if (rename (tmp_path, path) != 0)
    {
      int errsv = errno;
      unlink (tmp_path);
      return set_errno_error (error, errsv, _("name the image"));
    }
  return TRUE;
}

static SandboxImage *
import_sync (SandboxImageStore  *self,
             GFile              *source,
             const char         *name,
             GCancellable       *cancellable,
             GError            **error)
{
  g_autofree char *source_path = g_file_get_path (source);
  g_autofree char *work = NULL;
  g_autofree char *src = NULL;
  g_autofree char *index = NULL;
  g_autofree char *final = NULL;
  g_autofree char *rootfs = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) record = NULL;
  g_autofree char *record_text = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  Manifest m = { 0 };
  JsonObject *config = NULL;
  guint64 size = 0;
  gboolean ok = FALSE;
  int lock_fd = -1, root_fd = -1;
  SandboxImage *image = NULL;

  m.layer_files = g_ptr_array_new_with_free_func (g_free);
  m.layer_hexes = g_ptr_array_new_with_free_func (g_free);
  m.names = g_ptr_array_new_with_free_func (g_free);

  if (name != NULL && (*name == '\0' || strchr (name, '\n') || name[0] == '.'))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not a valid image name; use NAME:TAG, such as myimage:1.0."), name);
      goto out;
    }
  if (source_path == NULL || !g_file_test (source_path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                   _("The image source %s does not exist."),
                   source_path ? source_path : g_file_peek_path (source));
      goto out;
    }
  if (!ensure_dirs (self, error))
    goto out;
  clean_stale_tmp (self);
  lock_fd = take_lock (self, LOCK_SH);
  if (lock_fd < 0)
    {
      set_errno_error (error, errno, _("lock the image store"));
      goto out;
    }
  work = make_tmp_dir (self, "import", error);
  if (work == NULL)
    goto out;

  if (g_file_test (source_path, G_FILE_TEST_IS_DIR))
    src = g_strdup (source_path);
  else
    {
      /* A tar of a layout or a docker save archive: unpacked with the
       * same refusals as any archive (no path leaves the directory). */
      g_autoptr(GFileInputStream) in = g_file_read (source, cancellable, error);
      g_autoptr(GFile) dest = NULL;

      if (in == NULL)
        goto out;
      src = g_build_filename (work, "source", NULL);
      dest = g_file_new_for_path (src);
      if (!sandbox_archive_extract (G_INPUT_STREAM (in), dest, SANDBOX_ARCHIVE_NONE, cancellable, error))
        {
          g_prefix_error (error, _("Cannot unpack %s: "), source_path);
          goto out;
        }
    }

  index = g_build_filename (src, "index.json", NULL);
  if (g_file_test (index, G_FILE_TEST_EXISTS))
    {
      g_autofree char *docker = g_build_filename (src, "manifest.json", NULL);
      if (!read_oci (&m, src, error))
        goto out;
      /* docker save (25 and later) writes both: its names are in manifest.json. */
      if (m.names->len == 0 && g_file_test (docker, G_FILE_TEST_EXISTS))
        {
          Manifest d = { 0 };
          d.layer_files = g_ptr_array_new_with_free_func (g_free);
          d.layer_hexes = g_ptr_array_new_with_free_func (g_free);
          d.names = g_ptr_array_new_with_free_func (g_free);
          if (read_docker (&d, src, NULL))
            for (guint i = 0; i < d.names->len; i++)
              g_ptr_array_add (m.names, g_strdup (g_ptr_array_index (d.names, i)));
          manifest_clear (&d);
        }
    }
  else if (!has_docker_manifest (src))
    {
      /* A docker export or debootstrap tar: files, but no image around
       * them. Say how to run it rather than "manifest.json: No such file". */
      if (looks_like_rootfs (src))
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                     _("%s is a root file system, not an image: it has neither index.json (an OCI "
                       "image layout) nor manifest.json (a docker save archive). Unpack it into a "
                       "directory and give that directory's absolute path as the image (sandboxctl "
                       "run --image /path/to/rootfs), or import the image it came from "
                       "(docker save IMAGE -o FILE.tar)."),
                     source_path);
      else
        protocol_error (error, source_path, "it has neither index.json nor manifest.json");
      goto out;
    }
  else if (!read_docker (&m, src, error))
    goto out;
  if (!JSON_NODE_HOLDS_OBJECT (m.config))
    {
      protocol_error (error, source_path, "the config is not an object");
      goto out;
    }
  config = object_member (json_node_get_object (m.config), "config");

  for (guint i = 0; i < m.layer_files->len; i++)
    if (!import_layer (self, src, g_ptr_array_index (m.layer_files, i), g_ptr_array_index (m.layer_hexes, i),
                       &size, cancellable, error))
      goto out;

  final = g_build_filename (self->path, "images", m.config_hex, NULL);
  if (!g_file_test (final, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *build = g_build_filename (work, "image", NULL);

      rootfs = g_build_filename (build, "rootfs", NULL);
      if (g_mkdir_with_parents (rootfs, 0755) != 0 ||
          (root_fd = open (rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        {
          set_errno_error (error, errno, _("create the root file system"));
          goto out;
        }
      for (guint i = 0; i < m.layer_hexes->len; i++)
        {
          g_autofree char *layer = g_build_filename (self->path, "layers",
                                                     g_ptr_array_index (m.layer_hexes, i), NULL);
          int layer_fd = open (layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          gboolean applied;

          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            goto out;
          if (layer_fd < 0)
            {
              set_errno_error (error, errno, _("open a layer"));
              goto out;
            }
          applied = apply_layer (layer_fd, root_fd, "/", error);
          close (layer_fd);
          if (!applied)
            goto out;
        }
      if (string_member (config, "WorkingDir") != NULL)
        make_workdir (root_fd, string_member (config, "WorkingDir"));
      fchmod (root_fd, 0755);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      {
        g_autofree char *id = g_strconcat ("sha256:", m.config_hex, NULL);
        json_builder_add_string_value (builder, id);
      }
      json_builder_set_member_name (builder, "layers");
      json_builder_begin_array (builder);
      for (guint i = 0; i < m.layer_hexes->len; i++)
        {
          g_autofree char *d = g_strconcat ("sha256:", (char *) g_ptr_array_index (m.layer_hexes, i), NULL);
          json_builder_add_string_value (builder, d);
        }
      json_builder_end_array (builder);
      json_builder_set_member_name (builder, "size");
      json_builder_add_int_value (builder, (gint64) size);
      json_builder_set_member_name (builder, "imported");
      json_builder_add_int_value (builder, g_get_real_time () / G_USEC_PER_SEC);
      json_builder_set_member_name (builder, "config");
      json_builder_begin_object (builder);
      {
        g_auto(GStrv) env = strv_member (config, "Env");
        g_auto(GStrv) entrypoint = strv_member (config, "Entrypoint");
        g_auto(GStrv) cmd = strv_member (config, "Cmd");

        add_strv (builder, "Env", (const char * const *) env);
        add_strv (builder, "Entrypoint", (const char * const *) entrypoint);
        add_strv (builder, "Cmd", (const char * const *) cmd);
        json_builder_set_member_name (builder, "WorkingDir");
        json_builder_add_string_value (builder, string_member (config, "WorkingDir")
                                                ? string_member (config, "WorkingDir") : "");
        json_builder_set_member_name (builder, "User");
        json_builder_add_string_value (builder, string_member (config, "User")
                                                ? string_member (config, "User") : "");
      }
      json_builder_end_object (builder);
      json_builder_end_object (builder);
      record = json_builder_get_root (builder);
      json_generator_set_root (generator, record);
      json_generator_set_pretty (generator, TRUE);
      record_text = json_generator_to_data (generator, NULL);
      if (!write_file_atomic (build, "image.json", record_text, -1, error))
        goto out;
      /* The image appears whole or not at all; if another import of the
       * same image won the race, its copy is the same. */
      if (rename (build, final) != 0 && errno != EEXIST && errno != ENOTEMPTY)
        {
          set_errno_error (error, errno, _("store the image"));
          goto out;
        }
    }

  if (name != NULL)
    g_ptr_array_add (names, normalize_name (name));
  else
    for (guint i = 0; i < m.names->len; i++)
      g_ptr_array_add (names, g_strdup (g_ptr_array_index (m.names, i)));
  for (guint i = 0; i < names->len; i++)
    if (!write_ref (self, g_ptr_array_index (names, i), m.config_hex, error))
      goto out;

  {
    g_autoptr(GHashTable) refs = read_refs (self);
    image = load_image (self, m.config_hex, refs, error);
  }
  ok = image != NULL;

out:
  if (root_fd >= 0)
    close (root_fd);
  if (work != NULL)
    remove_path (work);
  if (lock_fd >= 0)
    close (lock_fd);
  manifest_clear (&m);
  if (!ok)
    g_clear_object (&image);
  return image;
}

typedef struct
{
  GFile *source;
  char  *name;
} ImportData;

static void
import_data_free (ImportData *data)
{
  g_object_unref (data->source);
  g_free (data->name);
  g_free (data);
}

static void
import_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ImportData *data = task_data;
  GError *error = NULL;
  SandboxImage *image = import_sync (source_object, data->source, data->name, cancellable, &error);

  if (image == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, image, g_object_unref);
}

/**
 * sandbox_image_store_import_async:
 * @self: a #SandboxImageStore
 * @source: an OCI image layout (a directory with `index.json`, or a tar of
 *   one) or a `docker save` / `podman save` archive
 * @name: (nullable): `NAME:TAG` to give the image (`NAME` alone means
 *   `NAME:latest`); %NULL for the names recorded in @source, if any
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the image is in the store
 * @user_data: data for @callback
 *
 * Imports an image, in a worker thread. Every blob and layer is checked
 * against its digest; layers already in the store (by digest) are reused.
 * Layer entries that would land outside the layer's directory (absolute
 * paths, “..”, paths through symbolic links, hard links out) fail the
 * import with %SANDBOX_ERROR_PROTOCOL; symbolic links are kept as links,
 * devices are skipped, and every file belongs to the caller (the sandbox
 * shows it as its user's).
 *
 * Nothing is visible in the store until the image is complete: an import
 * that fails, is cancelled or is killed leaves no image, layer or name
 * behind (the work directory of a killed one is removed by the next
 * import). Several imports may run at once, in one process or many.
 *
 * Since: 0.2
 */
void
sandbox_image_store_import_async (SandboxImageStore   *self,
                                  GFile               *source,
                                  const char          *name,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ImportData *data;

  g_return_if_fail (SANDBOX_IS_IMAGE_STORE (self));
  g_return_if_fail (G_IS_FILE (source));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, sandbox_image_store_import_async);
  data = g_new0 (ImportData, 1);
  data->source = g_object_ref (source);
  data->name = g_strdup (name);
  g_task_set_task_data (task, data, (GDestroyNotify) import_data_free);
  g_task_run_in_thread (task, import_thread);
}

/**
 * sandbox_image_store_import_finish:
 * @self: a #SandboxImageStore
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.ImageStore.import_async].
 *
 * Returns: (transfer full): the imported image, or %NULL on error
 *
 * Since: 0.2
 */
SandboxImage *
sandbox_image_store_import_finish (SandboxImageStore  *self,
                                   GAsyncResult       *result,
                                   GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_image_store_import_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * sandbox_image_store_import:
 * @self: a #SandboxImageStore
 * @source: an OCI image layout (directory or tar) or a `docker save`
 *   archive
 * @name: (nullable): `NAME:TAG` to give the image, or %NULL
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Imports an image and waits. See
 * [method@Sandbox.ImageStore.import_async].
 *
 * Returns: (transfer full): the imported image, or %NULL on error
 *
 * Since: 0.2
 */
SandboxImage *
sandbox_image_store_import (SandboxImageStore  *self,
                            GFile              *source,
                            const char         *name,
                            GCancellable       *cancellable,
                            GError            **error)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE_STORE (self), NULL);
  g_return_val_if_fail (G_IS_FILE (source), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return import_sync (self, source, name, cancellable, error);
}

/* ------------------------------------------------------------------ */
/* Removal                                                             */

/* The id of a running local sandbox whose root is ROOTFS, or NULL. */
static char *
sandbox_using (SandboxImageStore *self,
               const char        *rootfs)
{
  g_autoptr(GDir) dir = g_dir_open (self->sandboxes_dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *sdir = g_build_filename (self->sandboxes_dir, name, NULL);
      g_autofree char *json = g_build_filename (sdir, "instance.json", NULL);
      g_autoptr(JsonParser) parser = json_parser_new ();
      JsonNode *root;

      if (!json_parser_load_from_file (parser, json, NULL))
        continue;
      root = json_parser_get_root (parser);
      if (JSON_NODE_HOLDS_OBJECT (root) &&
          g_strcmp0 (string_member (json_node_get_object (root), "rootfs"), rootfs) == 0 &&
          _local_server_alive (sdir))
        return g_strdup (name);
    }
  return NULL;
}

/* The exclusive lock, waited for (imports and sandboxes being created hold
 * it shared) for at most 30 s: a caller that itself holds it shared, such
 * as a sandbox being created on the same main loop, gets an error rather
 * than a deadlock. */
static int
take_lock_exclusive (SandboxImageStore  *self,
                     GError            **error)
{
  for (int i = 0; i < 300; i++)
    {
      int fd = take_lock (self, LOCK_EX | LOCK_NB);

      if (fd >= 0)
        return fd;
      if (errno != EWOULDBLOCK)
        {
          set_errno_error (error, errno, _("lock the image store"));
          return -1;
        }
      g_usleep (100 * G_TIME_SPAN_MILLISECOND);
    }
  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
               _("The image store %s stayed busy for 30 s (an import or the creation of a "
                 "sandbox is under way); try again."), self->path);
  return -1;
}

/* Holds the store's lock shared until the descriptor is closed: while a
 * local sandbox is being created on an image, until its instance.json
 * records it, so that remove cannot take the image away meanwhile. */
int
_sandbox_image_store_hold (SandboxImageStore *self)
{
  return take_lock (self, LOCK_SH);
}

/* Drops the layers no image uses. The caller holds the lock exclusively:
 * no import is under way (it may be about to use one). */
static void
collect_layers (SandboxImageStore *self)
{
  g_autofree char *layers = g_build_filename (self->path, "layers", NULL);
  g_autoptr(GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) images = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;
  int layers_fd;

  images = sandbox_image_store_list (self, NULL, NULL);
  for (guint i = 0; images != NULL && i < images->len; i++)
    {
      const char * const *l = sandbox_image_get_layers (g_ptr_array_index (images, i));
      for (guint j = 0; l[j] != NULL; j++)
        if (digest_hex (l[j]) != NULL)
          g_hash_table_add (used, g_strdup (digest_hex (l[j])));
    }
  dir = g_dir_open (layers, 0, NULL);
  layers_fd = open (layers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (dir != NULL && layers_fd >= 0 && (name = g_dir_read_name (dir)) != NULL)
    if (!g_hash_table_contains (used, name))
      remove_at (layers_fd, name);
  if (layers_fd >= 0)
    close (layers_fd);
}

static gboolean
remove_sync (SandboxImageStore  *self,
             const char         *reference,
             GError            **error)
{
  g_autofree char *hex = resolve_reference (self, reference, error);
  g_autoptr(SandboxImage) image = NULL;
  g_autoptr(GHashTable) refs = NULL;
  g_autofree char *user = NULL;
  g_autofree char *refs_dir = NULL;
  g_autofree char *final = NULL;
  g_autofree char *trash = NULL;
  g_autofree char *by_name = NULL;
  const char * const *names;
  gboolean untag_only = FALSE;
  int lock_fd;

  if (hex == NULL)
    return FALSE;
  refs = read_refs (self);
  image = load_image (self, hex, refs, error);
  if (image == NULL)
    return FALSE;
  names = sandbox_image_get_names (image);

  /* A name of an image with other names: only that name goes. */
  {
    g_autofree char *normal = normalize_name (reference);
    if (g_strv_contains (names, normal))
      {
        by_name = g_steal_pointer (&normal);
        untag_only = g_strv_length ((char **) names) > 1;
      }
  }
  refs_dir = g_build_filename (self->path, "refs", NULL);
  if (untag_only)
    {
      g_autofree char *escaped = escape_name (by_name);
      g_autofree char *path = g_build_filename (refs_dir, escaped, NULL);
      if (unlink (path) != 0 && errno != ENOENT)
        return set_errno_error (error, errno, _("remove the name"));
      return TRUE;
    }

  /* Exclusive from the check to the rename: a sandbox being created on the
   * image holds the lock shared until it is recorded. */
  lock_fd = take_lock_exclusive (self, error);
  if (lock_fd < 0)
    return FALSE;
  user = sandbox_using (self, sandbox_image_get_rootfs (image));
  if (user != NULL)
    {
      close (lock_fd);
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("The image %s is the root of the running sandbox %s; destroy it first "
                     "(sandboxctl destroy %s)."), reference, user, user);
      return FALSE;
    }
  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autofree char *escaped = escape_name (names[i]);
      g_autofree char *path = g_build_filename (refs_dir, escaped, NULL);
      unlink (path);
    }
  /* Out of sight at once, then deleted. */
  final = g_build_filename (self->path, "images", hex, NULL);
  trash = make_tmp_dir (self, "rm", error);
  if (trash == NULL)
    {
      close (lock_fd);
      return FALSE;
    }
  {
    g_autofree char *target = g_build_filename (trash, "image", NULL);
    if (rename (final, target) != 0 && errno != ENOENT)
      {
        int errsv = errno;
        close (lock_fd);
        remove_path (trash);
        return set_errno_error (error, errsv, _("remove the image"));
      }
  }
  collect_layers (self);
  close (lock_fd);
  remove_path (trash);
  return TRUE;
}

static void
remove_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  GError *error = NULL;

  if (remove_sync (source_object, task_data, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * sandbox_image_store_remove_async:
 * @self: a #SandboxImageStore
 * @reference: `NAME:TAG`, an id or a unique id prefix (see
 *   [method@Sandbox.ImageStore.lookup])
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Removes a name, or an image. A `NAME:TAG` of an image that has other
 * names only removes that name. Otherwise the image and all its names go,
 * and then every layer that no image uses any more; but an image that a
 * running local sandbox uses as its root is refused with
 * %SANDBOX_ERROR_FAILED (the message names the sandbox).
 *
 * Since: 0.2
 */
void
sandbox_image_store_remove_async (SandboxImageStore   *self,
                                  const char          *reference,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (SANDBOX_IS_IMAGE_STORE (self));
  g_return_if_fail (reference != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, sandbox_image_store_remove_async);
  g_task_set_task_data (task, g_strdup (reference), g_free);
  g_task_set_return_on_cancel (task, FALSE);
  if (g_task_return_error_if_cancelled (task))
    return;
  g_task_run_in_thread (task, remove_thread);
}

/**
 * sandbox_image_store_remove_finish:
 * @self: a #SandboxImageStore
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.ImageStore.remove_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_image_store_remove_finish (SandboxImageStore  *self,
                                   GAsyncResult       *result,
                                   GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_image_store_remove_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_image_store_remove:
 * @self: a #SandboxImageStore
 * @reference: `NAME:TAG`, an id or a unique id prefix
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Removes a name or an image and waits. See
 * [method@Sandbox.ImageStore.remove_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_image_store_remove (SandboxImageStore  *self,
                            const char         *reference,
                            GCancellable       *cancellable,
                            GError            **error)
{
  g_return_val_if_fail (SANDBOX_IS_IMAGE_STORE (self), FALSE);
  g_return_val_if_fail (reference != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  return remove_sync (self, reference, error);
}

/* ------------------------------------------------------------------ */
/* For the local backend                                               */

/* Reads ROOTFS/REL without following any symbolic link on the way: the
 * image's /etc/passwd could otherwise lead to a host file. */
static char *
read_file_below (const char *rootfs,
                 const char *rel)
{
  g_auto(GStrv) parts = g_strsplit (rel, "/", -1);
  g_autoptr(GString) contents = g_string_new (NULL);
  int fd = open (rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  char buf[4096];
  ssize_t n;

  for (guint i = 0; fd >= 0 && parts[i] != NULL; i++)
    {
      int next = openat (fd, parts[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                         (parts[i + 1] ? O_DIRECTORY : 0));
      close (fd);
      fd = next;
    }
  if (fd < 0)
    return NULL;
  while ((n = read (fd, buf, sizeof buf)) > 0 && contents->len < 4 * 1024 * 1024)
    g_string_append_len (contents, buf, n);
  close (fd);
  return g_string_free (g_steal_pointer (&contents), FALSE);
}

/* Looks NAME up in the image's passwd or group file: field 3 (the id)
 * and, for passwd, field 4 (the primary group). */
static gboolean
lookup_db (const char *rootfs,
           const char *file,
           const char *name,
           gint64     *id,
           gint64     *group)
{
  g_autofree char *contents = read_file_below (rootfs, file);
  g_auto(GStrv) lines = contents ? g_strsplit (contents, "\n", -1) : NULL;

  for (guint i = 0; lines != NULL && lines[i] != NULL; i++)
    {
      g_auto(GStrv) f = g_strsplit (lines[i], ":", 5);

      if (g_strv_length (f) >= 3 && strcmp (f[0], name) == 0)
        {
          *id = g_ascii_strtoll (f[2], NULL, 10);
          if (group != NULL && g_strv_length (f) >= 4)
            *group = g_ascii_strtoll (f[3], NULL, 10);
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
parse_id (const char *s,
          gint64     *out)
{
  guint64 v;

  if (s == NULL || *s == '\0' || !g_ascii_string_to_unsigned (s, 10, 0, 65535, &v, NULL))
    return FALSE;
  *out = (gint64) v;
  return TRUE;
}

/* The uid and gid the image's User asks for, from its own passwd and
 * group files. The sandbox maps the caller to them: every file of the
 * image (all the caller's) then belongs to that user. */
gboolean
_sandbox_image_resolve_user (SandboxImage  *image,
                             gint64        *uid,
                             gint64        *gid,
                             GError       **error)
{
  g_auto(GStrv) parts = NULL;
  const char *user = sandbox_image_get_user (image);
  gint64 group = -1;

  if (user == NULL)
    return FALSE;
  parts = g_strsplit (user, ":", 2);
  if (!parse_id (parts[0], uid) && !lookup_db (image->rootfs, "etc/passwd", parts[0], uid, &group))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The image's user “%s” is not in its /etc/passwd."), parts[0]);
      return FALSE;
    }
  if (parts[1] != NULL)
    {
      if (!parse_id (parts[1], gid) && !lookup_db (image->rootfs, "etc/group", parts[1], gid, NULL))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The image's group “%s” is not in its /etc/group."), parts[1]);
          return FALSE;
        }
    }
  else
    *gid = group >= 0 ? group : *uid;
  if (*uid < 0 || *uid > 65535 || *gid < 0 || *gid > 65535)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The image's user “%s” has an id the sandbox cannot use."), user);
      return FALSE;
    }
  return TRUE;
}
