/* libsandbox - the OCI image store and images as local sandbox roots
 * (issue 16). Every image is built here, from files of this machine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <libsandbox/sandbox.h>

/* ------------------------------------------------------------------ */
/* Building layers and layouts                                         */

typedef struct
{
  struct archive *a;
  GByteArray     *bytes;
} Layer;

static la_ssize_t
layer_write (struct archive *a,
             void           *data,
             const void     *buffer,
             size_t          length)
{
  g_byte_array_append (((Layer *) data)->bytes, buffer, length);
  return (la_ssize_t) length;
}

static Layer *
layer_new_filtered (int filter)
{
  Layer *l = g_new0 (Layer, 1);

  l->bytes = g_byte_array_new ();
  l->a = archive_write_new ();
  archive_write_set_format_pax_restricted (l->a);
  if (filter != ARCHIVE_FILTER_NONE)
    g_assert_cmpint (archive_write_add_filter (l->a, filter), ==, ARCHIVE_OK);
  archive_write_set_bytes_in_last_block (l->a, 1);
  g_assert_cmpint (archive_write_open2 (l->a, l, NULL, layer_write, NULL, NULL), ==, ARCHIVE_OK);
  return l;
}

static Layer *
layer_new (gboolean gzip)
{
  return layer_new_filtered (gzip ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_NONE);
}

static void
layer_entry (Layer      *l,
             const char *path,
             mode_t      type,
             mode_t      perm,
             const char *data,
             gsize       len,
             const char *link,
             gboolean    hard)
{
  struct archive_entry *e = archive_entry_new ();

  archive_entry_set_pathname (e, path);
  archive_entry_set_filetype (e, type);
  archive_entry_set_perm (e, perm);
  archive_entry_set_uid (e, 0);
  archive_entry_set_gid (e, 0);
  archive_entry_set_mtime (e, 1700000000, 0);
  if (hard)
    archive_entry_set_hardlink (e, link);
  else if (link != NULL)
    archive_entry_set_symlink (e, link);
  if (type == AE_IFCHR)
    archive_entry_set_rdev (e, makedev (1, 3));
  archive_entry_set_size (e, type == AE_IFREG && !hard ? (la_int64_t) len : 0);
  g_assert_cmpint (archive_write_header (l->a, e), >=, ARCHIVE_WARN);
  if (type == AE_IFREG && !hard && len > 0)
    g_assert_cmpint (archive_write_data (l->a, data, len), ==, (la_ssize_t) len);
  archive_entry_free (e);
}

static void
layer_file (Layer      *l,
            const char *path,
            const char *text)
{
  layer_entry (l, path, AE_IFREG, 0644, text, strlen (text), NULL, FALSE);
}

static void
layer_dir (Layer      *l,
           const char *path)
{
  layer_entry (l, path, AE_IFDIR, 0755, NULL, 0, NULL, FALSE);
}

static void
layer_symlink (Layer      *l,
               const char *path,
               const char *target)
{
  layer_entry (l, path, AE_IFLNK, 0777, NULL, 0, target, FALSE);
}

static void
layer_host_file (Layer      *l,
                 const char *path,
                 const char *host)
{
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (host, &data, &len, NULL));
  layer_entry (l, path, AE_IFREG, 0755, data, len, NULL, FALSE);
}

static GBytes *
layer_end (Layer *l)
{
  GBytes *bytes;

  g_assert_cmpint (archive_write_close (l->a), ==, ARCHIVE_OK);
  archive_write_free (l->a);
  bytes = g_byte_array_free_to_bytes (l->bytes);
  g_free (l);
  return bytes;
}

/* A shell and its C library, from this machine: enough to run `sh -c`. */
static void
layer_add_shell (Layer *l)
{
  layer_dir (l, "usr");
  layer_dir (l, "usr/bin");
  layer_dir (l, "usr/lib");
  layer_dir (l, "usr/lib/x86_64-linux-gnu");
  layer_dir (l, "usr/lib64");
  layer_dir (l, "etc");
  layer_symlink (l, "bin", "usr/bin");
  layer_symlink (l, "lib", "usr/lib");
  layer_symlink (l, "lib64", "usr/lib64");
  layer_host_file (l, "usr/bin/sh", "/bin/dash");
  layer_host_file (l, "usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6");
  layer_host_file (l, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                   "/lib64/ld-linux-x86-64.so.2");
  /* Absolute, as in real images: resolved inside the sandbox only. */
  layer_symlink (l, "usr/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  layer_file (l, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1235::/app:/bin/sh\n");
  layer_file (l, "etc/group", "root:x:0:\napp:x:1235:\n");
}

static char *
write_blob (const char *layout,
            GBytes     *bytes)
{
  g_autofree char *hex = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
  g_autofree char *dir = g_build_filename (layout, "blobs", "sha256", NULL);
  g_autofree char *path = g_build_filename (dir, hex, NULL);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), NULL));
  return g_strconcat ("sha256:", hex, NULL);
}

static char *
config_json (const char *env,
             const char *workdir,
             const char *user,
             const char *cmd,
             guint       n_layers,
             GBytes    **layers)
{
  GString *s = g_string_new ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{");

  g_string_append_printf (s, "\"Env\":[%s],\"Cmd\":[%s]", env ? env : "", cmd ? cmd : "");
  if (workdir)
    g_string_append_printf (s, ",\"WorkingDir\":\"%s\"", workdir);
  if (user)
    g_string_append_printf (s, ",\"User\":\"%s\"", user);
  g_string_append (s, "},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[");
  for (guint i = 0; i < n_layers; i++)
    {
      g_autofree char *hex = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, layers[i]);
      g_string_append_printf (s, "%s\"sha256:%s\"", i ? "," : "", hex);
    }
  g_string_append (s, "]}}");
  return g_string_free (s, FALSE);
}

/* Writes an OCI image layout at LAYOUT (which may hold others already). */
static void
make_layout (const char  *layout,
             const char  *name,
             const char  *config,
             guint        n_layers,
             GBytes     **layers)
{
  g_autoptr(GBytes) config_bytes = g_bytes_new (config, strlen (config));
  g_autofree char *config_digest = write_blob (layout, config_bytes);
  g_autoptr(GString) manifest = g_string_new (NULL);
  g_autoptr(GBytes) manifest_bytes = NULL;
  g_autofree char *manifest_digest = NULL;
  g_autofree char *index = NULL;
  g_autofree char *index_path = g_build_filename (layout, "index.json", NULL);
  g_autofree char *oci = g_build_filename (layout, "oci-layout", NULL);

  g_string_append_printf (manifest,
                          "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                          "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                          "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
                          config_digest, strlen (config));
  for (guint i = 0; i < n_layers; i++)
    {
      g_autofree char *d = write_blob (layout, layers[i]);
      g_string_append_printf (manifest, "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
                              "\"digest\":\"%s\",\"size\":%zu}", i ? "," : "", d,
                              g_bytes_get_size (layers[i]));
    }
  g_string_append (manifest, "]}");
  manifest_bytes = g_bytes_new (manifest->str, manifest->len);
  manifest_digest = write_blob (layout, manifest_bytes);
  index = g_strdup_printf ("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
                           "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
                           "\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}"
                           "%s%s%s}]}",
                           manifest_digest, manifest->len,
                           name ? ",\"annotations\":{\"io.containerd.image.name\":\"" : "",
                           name ? name : "", name ? "\"}" : "");
  g_assert_true (g_file_set_contents (index_path, index, -1, NULL));
  g_assert_true (g_file_set_contents (oci, "{\"imageLayoutVersion\":\"1.0.0\"}", -1, NULL));
}

typedef struct
{
  char *tmp;       /* scratch, for layouts */
  char *store_dir;
  SandboxImageStore *store;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  f->tmp = g_dir_make_tmp ("test-image-XXXXXX", NULL);
  g_assert_nonnull (f->tmp);
  /* The default store: beside the local sandboxes' directory, in the
   * runtime directory G_TEST_OPTION_ISOLATE_DIRS made for this test. */
  f->store = sandbox_image_store_new (NULL);
  f->store_dir = g_strdup (sandbox_image_store_get_path (f->store));
  g_assert_true (g_str_has_suffix (f->store_dir, "/libsandbox/images"));
}

static void
rm_rf (const char *path)
{
  g_autofree char *quoted = g_shell_quote (path);
  g_autofree char *cmd = g_strdup_printf ("chmod -R u+rwX %s 2>/dev/null; rm -rf %s", quoted, quoted);
  const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  rm_rf (f->tmp);
  rm_rf (f->store_dir);
  g_free (f->tmp);
  g_free (f->store_dir);
  g_object_unref (f->store);
}

static guint
count_entries (const char *store,
               const char *sub)
{
  g_autofree char *path = g_build_filename (store, sub, NULL);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static char *
rootfs_path (SandboxImage *image,
             const char   *rel)
{
  return g_build_filename (sandbox_image_get_rootfs (image), rel, NULL);
}

static gboolean
exists (SandboxImage *image,
        const char   *rel)
{
  g_autofree char *path = rootfs_path (image, rel);
  struct stat st;

  return lstat (path, &st) == 0;
}

static ino_t
inode (SandboxImage *image,
       const char   *rel)
{
  g_autofree char *path = rootfs_path (image, rel);
  struct stat st;

  g_assert_cmpint (lstat (path, &st), ==, 0);
  return st.st_ino;
}

/* The two-layer image most tests use: a shell, then a layer with
 * whiteouts, an opaque directory, a hard link, an absolute symbolic link
 * and a device node. */
static char *
make_app_layout (Fixture    *f,
                 const char *subdir,
                 const char *name)
{
  g_autofree char *layout = g_build_filename (f->tmp, subdir, NULL);
  g_autofree char *config = NULL;
  GBytes *layers[2];
  Layer *l;

  l = layer_new (FALSE);
  layer_add_shell (l);
  layer_dir (l, "data");
  layer_file (l, "data/a", "a\n");
  layer_file (l, "data/b", "b\n");
  layer_dir (l, "opq");
  layer_file (l, "opq/old", "old\n");
  layers[0] = layer_end (l);

  l = layer_new (TRUE);   /* compressed, as registries serve them */
  layer_dir (l, "data");
  layer_file (l, "data/.wh.a", "");
  layer_file (l, "data/c", "c\n");
  layer_entry (l, "data/h", AE_IFREG, 0644, NULL, 0, "data/c", TRUE);
  layer_symlink (l, "data/passwd", "/etc/passwd");
  layer_dir (l, "opq");
  layer_file (l, "opq/.wh..wh..opq", "");
  layer_file (l, "opq/new", "new\n");
  layer_entry (l, "data/null", AE_IFCHR, 0666, NULL, 0, NULL, FALSE);
  layer_entry (l, "data/fifo", AE_IFIFO, 0666, NULL, 0, NULL, FALSE);
  layers[1] = layer_end (l);

  config = config_json ("\"FOO=bar\",\"PATH=/usr/bin:/bin\"", "/app", "app",
                        "\"/bin/sh\",\"-c\",\"echo from-cmd\"", 2, layers);
  make_layout (layout, name, config, 2, layers);
  g_bytes_unref (layers[0]);
  g_bytes_unref (layers[1]);
  return g_steal_pointer (&layout);
}

static SandboxImage *
import (Fixture    *f,
        const char *path,
        const char *name)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GError) error = NULL;
  SandboxImage *image = sandbox_image_store_import (f->store, file, name, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (image);
  return image;
}

/* ------------------------------------------------------------------ */
/* The store                                                           */

static void
test_multi_layer (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *layout = make_app_layout (f, "app", "example.org/app:1");
  g_autoptr(SandboxImage) image = import (f, layout, NULL);
  g_autoptr(SandboxImage) found = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *link = NULL;
  g_autofree char *passwd = NULL;
  const char * const expected_env[] = { "FOO=bar", "PATH=/usr/bin:/bin", NULL };

  g_assert_true (g_str_has_prefix (sandbox_image_get_id (image), "sha256:"));
  g_assert_cmpstrv (sandbox_image_get_names (image), ((const char * const[]) { "example.org/app:1", NULL }));
  g_assert_cmpuint (g_strv_length ((char **) sandbox_image_get_layers (image)), ==, 2);
  g_assert_cmpstrv (sandbox_image_get_env (image), expected_env);
  g_assert_cmpstr (sandbox_image_get_workdir (image), ==, "/app");
  g_assert_cmpstr (sandbox_image_get_user (image), ==, "app");
  g_assert_cmpuint (g_strv_length ((char **) sandbox_image_get_cmd (image)), ==, 3);
  g_assert_cmpuint (sandbox_image_get_size (image), >, 0);

  /* Whiteout and opaque directory applied; only the upper layer's files. */
  g_assert_false (exists (image, "data/a"));
  g_assert_true (exists (image, "data/b"));
  g_assert_false (exists (image, "data/.wh.a"));
  g_assert_false (exists (image, "opq/old"));
  g_assert_true (exists (image, "opq/new"));
  g_assert_false (exists (image, "opq/.wh..wh..opq"));
  /* A hard link stays one file; device nodes and fifos are skipped. */
  g_assert_cmpuint (inode (image, "data/h"), ==, inode (image, "data/c"));
  g_assert_false (exists (image, "data/null"));
  g_assert_false (exists (image, "data/fifo"));
  /* Symbolic links are kept as they are, never followed on the host. */
  passwd = rootfs_path (image, "data/passwd");
  link = g_file_read_link (passwd, NULL);
  g_assert_cmpstr (link, ==, "/etc/passwd");
  g_assert_true (exists (image, "app"));   /* WorkingDir made */

  /* By name (NAME alone means :latest, so give the tag), id and prefix. */
  found = sandbox_image_store_lookup (f->store, "example.org/app:1", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sandbox_image_get_id (found), ==, sandbox_image_get_id (image));
  g_clear_object (&found);
  found = sandbox_image_store_lookup (f->store, sandbox_image_get_id (image), NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&found);
  {
    g_autofree char *prefix = g_strndup (sandbox_image_get_id (image) + 7, 12);
    found = sandbox_image_store_lookup (f->store, prefix, NULL, &error);
    g_assert_no_error (error);
    g_clear_object (&found);
  }
  found = sandbox_image_store_lookup (f->store, "example.org/app", NULL, &error);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "sandboxctl image import"));
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

static void
test_shared_layer (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *layout_a = make_app_layout (f, "a", NULL);
  g_autofree char *layout_b = g_build_filename (f->tmp, "b", NULL);
  g_autofree char *config = NULL;
  g_autoptr(SandboxImage) a = NULL;
  g_autoptr(SandboxImage) b = NULL;
  g_autoptr(SandboxImage) again = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  GBytes *layers[2];
  Layer *l;

  l = layer_new (FALSE);
  layer_add_shell (l);
  layer_dir (l, "data");
  layer_file (l, "data/a", "a\n");
  layer_file (l, "data/b", "b\n");
  layer_dir (l, "opq");
  layer_file (l, "opq/old", "old\n");
  layers[0] = layer_end (l);   /* the same bytes as a's first layer */
  l = layer_new (FALSE);
  layer_file (l, "only-in-b", "b\n");
  layers[1] = layer_end (l);
  config = config_json (NULL, NULL, NULL, NULL, 2, layers);
  make_layout (layout_b, NULL, config, 2, layers);
  g_bytes_unref (layers[0]);
  g_bytes_unref (layers[1]);

  a = import (f, layout_a, "a:1");
  b = import (f, layout_b, "b");
  g_assert_cmpstr (sandbox_image_get_layers (a)[0], ==, sandbox_image_get_layers (b)[0]);
  g_assert_cmpuint (count_entries (f->store_dir, "layers"), ==, 3);
  /* Stored once: the two roots share the layer's files. */
  g_assert_cmpuint (inode (a, "usr/bin/sh"), ==, inode (b, "usr/bin/sh"));
  g_assert_true (exists (b, "only-in-b"));
  g_assert_false (exists (a, "only-in-b"));

  /* A second name for a: the same image. */
  again = import (f, layout_a, "a:2");
  g_assert_cmpstr (sandbox_image_get_id (again), ==, sandbox_image_get_id (a));
  g_assert_cmpstrv (sandbox_image_get_names (again), ((const char * const[]) { "a:1", "a:2", NULL }));
  list = sandbox_image_store_list (f->store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);

  /* rm of one name of two only untags; of the last, removes the image and
   * the layers only it used. */
  g_assert_true (sandbox_image_store_remove (f->store, "a:2", NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_entries (f->store_dir, "images"), ==, 2);
  g_assert_true (sandbox_image_store_remove (f->store, "a:1", NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_entries (f->store_dir, "images"), ==, 1);
  g_assert_cmpuint (count_entries (f->store_dir, "layers"), ==, 2);
  /* b's root does not depend on the layer directories. */
  g_assert_true (exists (b, "data/a"));
  g_assert_true (sandbox_image_store_remove (f->store, "b:latest", NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_entries (f->store_dir, "images"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "layers"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "refs"), ==, 0);
  g_assert_false (sandbox_image_store_remove (f->store, "b", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
}

static void
test_tar_and_docker (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *layout = make_app_layout (f, "layout", NULL);
  g_autofree char *tar = g_build_filename (f->tmp, "layout.tar", NULL);
  g_autofree char *docker = g_build_filename (f->tmp, "docker", NULL);
  g_autofree char *docker_tar = g_build_filename (f->tmp, "docker.tar", NULL);
  g_autoptr(GFile) base = g_file_new_for_path (layout);
  g_autoptr(GFile) tar_file = g_file_new_for_path (tar);
  g_autoptr(GFileOutputStream) out = g_file_replace (tar_file, NULL, FALSE, 0, NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxImage) from_tar = NULL;
  g_autoptr(SandboxImage) from_docker = NULL;
  g_autofree char *config = NULL;
  GBytes *layers[1];
  Layer *l;

  /* An OCI layout as a tar. */
  g_assert_true (sandbox_archive_write (base, NULL, G_OUTPUT_STREAM (out), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (G_OUTPUT_STREAM (out), NULL, NULL));
  from_tar = import (f, tar, "from-tar:1");
  g_assert_false (exists (from_tar, "data/a"));
  g_assert_true (exists (from_tar, "opq/new"));

  /* A docker save archive: manifest.json, the config, uncompressed layer
   * tars named by path and checked against rootfs.diff_ids. */
  l = layer_new (FALSE);
  layer_add_shell (l);
  layer_file (l, "hello", "from docker\n");
  layers[0] = layer_end (l);
  config = config_json ("\"X=1\"", NULL, NULL, NULL, 1, layers);
  {
    g_autofree char *layer_dir_path = g_build_filename (docker, "abc", NULL);
    g_autofree char *layer_path = g_build_filename (layer_dir_path, "layer.tar", NULL);
    g_autofree char *config_path = g_build_filename (docker, "cfg.json", NULL);
    g_autofree char *manifest_path = g_build_filename (docker, "manifest.json", NULL);
    g_autoptr(GFile) docker_dir = g_file_new_for_path (docker);
    g_autoptr(GFile) docker_file = g_file_new_for_path (docker_tar);
    g_autoptr(GFileOutputStream) dout = NULL;

    g_assert_cmpint (g_mkdir_with_parents (layer_dir_path, 0755), ==, 0);
    g_assert_true (g_file_set_contents (layer_path, g_bytes_get_data (layers[0], NULL),
                                        g_bytes_get_size (layers[0]), NULL));
    g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
    g_assert_true (g_file_set_contents (manifest_path,
                                        "[{\"Config\":\"cfg.json\",\"RepoTags\":[\"docker-img:5\"],"
                                        "\"Layers\":[\"abc/layer.tar\"]}]", -1, NULL));
    dout = g_file_replace (docker_file, NULL, FALSE, 0, NULL, NULL);
    g_assert_true (sandbox_archive_write (docker_dir, NULL, G_OUTPUT_STREAM (dout), NULL, &error));
    g_assert_no_error (error);
    g_assert_true (g_output_stream_close (G_OUTPUT_STREAM (dout), NULL, NULL));
  }
  g_bytes_unref (layers[0]);
  from_docker = import (f, docker_tar, NULL);
  g_assert_cmpstrv (sandbox_image_get_names (from_docker), ((const char * const[]) { "docker-img:5", NULL }));
  g_assert_true (exists (from_docker, "hello"));
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

/* An image names itself (index.json's annotation, a docker save's
 * RepoTags), and an image file is hostile content: a name made of escape
 * sequences and a line feed became one of the store's, which `sandboxctl
 * image ls` printed on the user's terminal as it was (its title set, the
 * clipboard filled, a line of the listing forged). Only names that are
 * references are taken; the import goes on without the others. Control:
 * a registry's name with a port and a path is taken. */
static void
test_hostile_names (Fixture       *f,
                    gconstpointer  data)
{
  static const char * const hostile[] = {
    "evil\\u001b]0;TITLE\\u0007:1",
    "evil:1\\nsha256:0000 fake:2",
    "evil\\u009b31m:3",
  };
  Layer *l = layer_new (FALSE);
  GBytes *layers[1];
  g_autofree char *config = NULL;

  layer_file (l, "hello", "hi\n");
  layers[0] = layer_end (l);
  config = config_json (NULL, NULL, NULL, NULL, 1, layers);
  for (guint i = 0; i <= G_N_ELEMENTS (hostile); i++)
    {
      g_autofree char *dir = g_strdup_printf ("named-%u", i);
      g_autofree char *layout = g_build_filename (f->tmp, dir, NULL);
      g_autoptr(SandboxImage) image = NULL;
      const char * const *names;

      make_layout (layout, i < G_N_ELEMENTS (hostile) ? hostile[i] : "registry.example:5000/team/app:2",
                   config, 1, layers);
      image = import (f, layout, NULL);
      names = sandbox_image_get_names (image);
      if (i < G_N_ELEMENTS (hostile))
        g_assert_cmpuint (g_strv_length ((char **) names), ==, 0);
      else
        g_assert_cmpstrv (names, ((const char * const[]) { "registry.example:5000/team/app:2", NULL }));
    }
  g_bytes_unref (layers[0]);
}

/* Layers as registries and builders compress them: gzip, zstd, xz. */
static void
test_compressed (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *layout = g_build_filename (f->tmp, "compressed", NULL);
  g_autofree char *config = NULL;
  g_autoptr(SandboxImage) image = NULL;
  const int filters[] = { ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_XZ };
  const char *names[] = { "gz", "zst", "xz" };
  GBytes *layers[3];

  for (guint i = 0; i < 3; i++)
    {
      Layer *l = layer_new_filtered (filters[i]);
      layer_file (l, names[i], names[i]);
      layers[i] = layer_end (l);
    }
  config = config_json (NULL, NULL, NULL, NULL, 3, layers);
  make_layout (layout, NULL, config, 3, layers);
  image = import (f, layout, "compressed:1");
  for (guint i = 0; i < 3; i++)
    {
      g_assert_true (exists (image, names[i]));
      g_bytes_unref (layers[i]);
    }
}

/* ------------------------------------------------------------------ */
/* Hostile layers                                                      */

static void
assert_refused (Fixture    *f,
                GBytes     *bad,
                const char *what)
{
  g_autofree char *layout = g_build_filename (f->tmp, what, NULL);
  g_autofree char *config = NULL;
  g_autoptr(GFile) file = g_file_new_for_path (layout);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxImage) image = NULL;
  GBytes *layers[1] = { bad };

  config = config_json (NULL, NULL, NULL, NULL, 1, layers);
  make_layout (layout, NULL, config, 1, layers);
  image = sandbox_image_store_import (f->store, file, "hostile:1", NULL, &error);
  g_test_message ("%s: %s", what, error ? error->message : "(imported)");
  g_assert_null (image);
  g_assert_nonnull (error);
  /* Nothing half-visible: no image, layer, name or work directory. */
  g_assert_cmpuint (count_entries (f->store_dir, "images"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "layers"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "refs"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

static void
test_hostile (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *outside = g_build_filename (f->tmp, "outside", NULL);
  g_autofree char *victim = g_build_filename (outside, "victim", NULL);
  g_autofree char *long_name = NULL;
  Layer *l;

  g_assert_cmpint (g_mkdir (outside, 0755), ==, 0);

  l = layer_new (FALSE);
  layer_file (l, "ok", "ok\n");
  layer_file (l, "../escape", "x\n");
  {
    g_autoptr(GBytes) b = layer_end (l);
    assert_refused (f, b, "dotdot");
  }

  l = layer_new (FALSE);
  layer_file (l, "/tmp/absolute-from-layer", "x\n");
  {
    g_autoptr(GBytes) b = layer_end (l);
    assert_refused (f, b, "absolute");
  }
  g_assert_false (g_file_test ("/tmp/absolute-from-layer", G_FILE_TEST_EXISTS));

  /* A link out, then a file through it. */
  l = layer_new (FALSE);
  layer_symlink (l, "evil", outside);
  layer_file (l, "evil/victim", "pwned\n");
  {
    g_autoptr(GBytes) b = layer_end (l);
    assert_refused (f, b, "through-link");
  }
  g_assert_false (g_file_test (victim, G_FILE_TEST_EXISTS));

  /* A hard link to a file outside. */
  l = layer_new (FALSE);
  layer_entry (l, "h", AE_IFREG, 0644, NULL, 0, "../../../../../../etc/passwd", TRUE);
  {
    g_autoptr(GBytes) b = layer_end (l);
    assert_refused (f, b, "hardlink-out");
  }
  l = layer_new (FALSE);
  layer_entry (l, "h", AE_IFREG, 0644, NULL, 0, "/etc/passwd", TRUE);
  {
    g_autoptr(GBytes) b = layer_end (l);
    assert_refused (f, b, "hardlink-absolute");
  }

  /* Huge headers: a 1 MiB pax path. */
  long_name = g_strnfill (1024 * 1024, 'n');
  l = layer_new (FALSE);
  layer_file (l, long_name, "x\n");
  {
    g_autoptr(GBytes) b = layer_end (l);
    assert_refused (f, b, "huge-header");
  }

  /* Garbage and a truncated stream. */
  {
    g_autoptr(GBytes) b = g_bytes_new_static ("this is not a tar stream at all, not even close....", 52);
    assert_refused (f, b, "garbage");
  }
  l = layer_new (FALSE);
  layer_host_file (l, "sh", "/bin/dash");
  {
    g_autoptr(GBytes) whole = layer_end (l);
    g_autoptr(GBytes) cut = g_bytes_new_from_bytes (whole, 0, 5000);
    assert_refused (f, cut, "truncated");
  }
}

static void
test_digest_mismatch (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *layout = make_app_layout (f, "bad", NULL);
  g_autoptr(GFile) file = g_file_new_for_path (layout);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxImage) image = NULL;
  g_autoptr(GBytes) other = g_bytes_new_static ("tampered", 8);
  g_autofree char *blobs = g_build_filename (layout, "blobs", "sha256", NULL);
  g_autoptr(GDir) dir = g_dir_open (blobs, 0, NULL);
  const char *name;

  /* Replace every blob bigger than 4 KiB (the layers) with other bytes. */
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (blobs, name, NULL);
      struct stat st;

      g_assert_cmpint (stat (path, &st), ==, 0);
      if (st.st_size > 4096)
        g_assert_true (g_file_set_contents (path, "tampered", 8, NULL));
    }
  image = sandbox_image_store_import (f->store, file, NULL, NULL, &error);
  g_assert_null (image);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_assert_cmpuint (count_entries (f->store_dir, "images"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "layers"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

static void
assert_source_refused (Fixture    *f,
                       const char *layout,
                       const char *why)
{
  g_autoptr(GFile) file = g_file_new_for_path (layout);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxImage) image = sandbox_image_store_import (f->store, file, NULL, NULL, &error);

  g_assert_null (image);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, why));
  g_assert_cmpuint (count_entries (f->store_dir, "images"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

/* An image directory may be one a sandbox wrote (a read-write mount, a
 * build's output): its index.json as a FIFO made the import wait in open()
 * for good (sandboxctl survived SIGTERM), and as a link to /dev/zero read
 * until memory ran out (here: the 2 GiB the subprocess may have); a link
 * to a host file was read too. Each is refused now; a link within the
 * image (docker save links a repeated layer to the first) still works. */
static void
test_hostile_source_files (Fixture       *f,
                           gconstpointer  data)
{
  g_autofree char *fifo = NULL, *zero = NULL, *host = NULL, *docker = NULL;
  g_autofree char *index = NULL, *config = NULL;
  g_autoptr(SandboxImage) image = NULL;
  struct rlimit as = { 2UL << 30, 2UL << 30 };
  GBytes *layers[1];
  Layer *l;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }
  g_assert_cmpint (setrlimit (RLIMIT_AS, &as), ==, 0);

  fifo = make_app_layout (f, "fifo", NULL);
  index = g_build_filename (fifo, "index.json", NULL);
  g_assert_cmpint (g_unlink (index), ==, 0);
  g_assert_cmpint (mkfifo (index, 0644), ==, 0);
  assert_source_refused (f, fifo, "index.json is not a regular file");

  zero = make_app_layout (f, "zero", NULL);
  g_free (index);
  index = g_build_filename (zero, "index.json", NULL);
  g_assert_cmpint (g_unlink (index), ==, 0);
  g_assert_cmpint (symlink ("/dev/zero", index), ==, 0);
  assert_source_refused (f, zero, "index.json leads out of the image");

  host = make_app_layout (f, "host", NULL);
  g_free (index);
  index = g_build_filename (host, "index.json", NULL);
  g_assert_cmpint (g_unlink (index), ==, 0);
  g_assert_cmpint (symlink ("../../../../../../../../etc/passwd", index), ==, 0);
  assert_source_refused (f, host, "index.json leads out of the image");

  /* Control: a docker save directory whose second layer is a link to the
   * first, within it. */
  docker = g_build_filename (f->tmp, "docker", NULL);
  l = layer_new (FALSE);
  layer_add_shell (l);
  layers[0] = layer_end (l);
  {
    GBytes *both[2] = { layers[0], layers[0] };
    g_autofree char *abc = g_build_filename (docker, "abc", NULL);
    g_autofree char *def = g_build_filename (docker, "def", NULL);
    g_autofree char *abc_tar = g_build_filename (abc, "layer.tar", NULL);
    g_autofree char *def_tar = g_build_filename (def, "layer.tar", NULL);
    g_autofree char *config_path = g_build_filename (docker, "cfg.json", NULL);
    g_autofree char *manifest = g_build_filename (docker, "manifest.json", NULL);

    config = config_json (NULL, NULL, NULL, NULL, 2, both);
    g_assert_cmpint (g_mkdir_with_parents (abc, 0755), ==, 0);
    g_assert_cmpint (g_mkdir_with_parents (def, 0755), ==, 0);
    g_assert_true (g_file_set_contents (abc_tar, g_bytes_get_data (layers[0], NULL),
                                        g_bytes_get_size (layers[0]), NULL));
    g_assert_cmpint (symlink ("../abc/layer.tar", def_tar), ==, 0);
    g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
    g_assert_true (g_file_set_contents (manifest,
                                        "[{\"Config\":\"cfg.json\",\"RepoTags\":[\"linked:1\"],"
                                        "\"Layers\":[\"abc/layer.tar\",\"def/layer.tar\"]}]", -1, NULL));
  }
  g_bytes_unref (layers[0]);
  image = import (f, docker, NULL);
  g_assert_cmpstrv (sandbox_image_get_names (image), ((const char * const[]) { "linked:1", NULL }));
}

/* A root file system (a docker export or debootstrap tar, or its
 * directory) is not an image: refused with what to do instead, not with
 * "manifest.json: No such file or directory"; a directory of anything
 * else with what the store takes. */
static void
test_rootfs_refused (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *rootfs = g_build_filename (f->tmp, "rootfs", NULL);
  g_autofree char *bin = g_build_filename (rootfs, "bin", NULL);
  g_autofree char *sh = g_build_filename (bin, "sh", NULL);
  g_autofree char *tar = g_build_filename (f->tmp, "rootfs.tar", NULL);
  g_autofree char *other = g_build_filename (f->tmp, "other", NULL);
  g_autofree char *other_file = g_build_filename (other, "README", NULL);
  g_autoptr(GFile) dir = g_file_new_for_path (rootfs);
  g_autoptr(GFile) tar_file = g_file_new_for_path (tar);
  g_autoptr(GFile) other_dir = g_file_new_for_path (other);
  g_autoptr(GFileOutputStream) out = NULL;
  GFile *sources[] = { dir, tar_file };
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (bin, 0755), ==, 0);
  g_assert_true (g_file_set_contents (sh, "#!/bin/false\n", -1, NULL));
  out = g_file_replace (tar_file, NULL, FALSE, 0, NULL, NULL);
  g_assert_true (sandbox_archive_write (dir, NULL, G_OUTPUT_STREAM (out), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (G_OUTPUT_STREAM (out), NULL, NULL));

  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    {
      g_autoptr(SandboxImage) image = sandbox_image_store_import (f->store, sources[i], "r:1", NULL, &error);

      g_assert_null (image);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, "is a root file system, not an image"));
      g_assert_nonnull (strstr (error->message, "--image /path/to/rootfs"));
      g_assert_null (strstr (error->message, "No such file"));
      g_clear_error (&error);
    }

  g_assert_cmpint (g_mkdir_with_parents (other, 0755), ==, 0);
  g_assert_true (g_file_set_contents (other_file, "not an image\n", -1, NULL));
  g_assert_null (sandbox_image_store_import (f->store, other_dir, "r:1", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "neither index.json nor manifest.json"));
  g_assert_cmpuint (count_entries (f->store_dir, "images"), ==, 0);
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

/* ------------------------------------------------------------------ */
/* Concurrency and atomicity                                           */

typedef struct
{
  guint pending;
  guint failed;
} Imports;

static void
imported (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Imports *imports = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxImage) image = sandbox_image_store_import_finish (SANDBOX_IMAGE_STORE (source),
                                                                     result, &error);

  g_assert_no_error (error);
  if (image == NULL)
    imports->failed++;
  imports->pending--;
}

static void
test_concurrent (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *layout = make_app_layout (f, "c", NULL);
  g_autoptr(GPtrArray) list = NULL;
  Imports imports = { 0 };
  /* Two stores on one directory: as two processes would be. */
  g_autoptr(SandboxImageStore) other = sandbox_image_store_new (f->store_dir);

  for (guint i = 0; i < 6; i++)
    {
      g_autoptr(GFile) file = g_file_new_for_path (layout);
      g_autofree char *name = g_strdup_printf ("c:%u", i);

      imports.pending++;
      sandbox_image_store_import_async (i % 2 ? other : f->store, file, name, NULL, imported, &imports);
    }
  while (imports.pending > 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (imports.failed, ==, 0);
  list = sandbox_image_store_list (f->store, NULL, NULL);
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_cmpuint (g_strv_length ((char **) sandbox_image_get_names (g_ptr_array_index (list, 0))), ==, 6);
  g_assert_cmpuint (count_entries (f->store_dir, "layers"), ==, 2);
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

/* An import killed midway leaves its work directory, named by its pid:
 * invisible to lookups, and removed by the next import. */
static void
test_killed_import (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *layout = make_app_layout (f, "k", NULL);
  g_autofree char *stale = NULL;
  g_autoptr(SandboxImage) image = NULL;
  g_autoptr(GPtrArray) list = NULL;
  pid_t pid = fork ();

  if (pid == 0)
    {
      kill (getpid (), SIGKILL);   /* a pid that is surely gone */
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, NULL, 0), ==, pid);
  /* What a kill at any point leaves: a work directory of a dead pid. */
  stale = g_strdup_printf ("%s/tmp/import-%d-deadbeef/image/rootfs", f->store_dir, (int) pid);
  g_assert_cmpint (g_mkdir_with_parents (stale, 0700), ==, 0);
  list = sandbox_image_store_list (f->store, NULL, NULL);
  g_assert_cmpuint (list->len, ==, 0);
  image = import (f, layout, "k:2");
  g_assert_cmpuint (count_entries (f->store_dir, "tmp"), ==, 0);
}

/* ------------------------------------------------------------------ */
/* Images as local sandbox roots                                       */

static gboolean
local_ready (void)
{
  g_autofree char *bwrap = g_find_program_in_path ("bwrap");

  if (bwrap == NULL)
    {
      g_test_skip ("bwrap is not installed");
      return FALSE;
    }
  return TRUE;
}

static char *
run (SandboxInstance *instance,
     const char      *script,
     const char      *cwd)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  GBytes *out;

  if (cwd != NULL)
    sandbox_command_set_cwd (cmd, cwd);
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_no_error (error);
  out = sandbox_exec_result_get_stdout (result);
  return g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
}

static void
test_local_config (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *layout = NULL;
  g_autoptr(SandboxImage) image = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  if (!local_ready ())
    return;
  layout = make_app_layout (f, "run", "app:1");
  image = import (f, layout, NULL);
  backend = sandbox_backend_new_for_name ("local", &error);
  g_assert_no_error (error);

  sandbox_spec_set_image (spec, "app:1");
  sandbox_spec_set_env (spec, "SPEC", "yes");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);

  /* Env (under the spec's), WorkingDir as the default cwd, User mapped
   * (app is 1234:1235 in the image's passwd), and only the image's files. */
  out = run (instance,
             "echo $FOO $SPEC $PATH; pwd; "
             "while read k a b; do case $k in Uid:|Gid:) echo $k $a;; esac; done < /proc/self/status; "
             "test -e /usr/bin/sh && echo has-sh; test -e /etc/hostname || echo no-host-files; "
             "test -e /data/a || echo whited-out; read x < /data/c; echo $x",
             NULL);
  g_assert_cmpstr (out, ==, "bar yes /usr/bin:/bin\n/app\nUid: 1234\nGid: 1235\nhas-sh\n"
                            "no-host-files\nwhited-out\nc\n");
  g_clear_pointer (&out, g_free);
  /* The workdir stays the writable scratch directory. */
  out = run (instance, "echo hi > /workspace/f && read x < /workspace/f && echo $x; "
                       "echo x > /usr/bin/new 2>/dev/null || echo read-only", "/workspace");
  g_assert_cmpstr (out, ==, "hi\nread-only\n");

  /* rm is refused while the sandbox runs. */
  g_assert_false (sandbox_image_store_remove (f->store, "app:1", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, sandbox_instance_get_id (instance)));
  g_clear_error (&error);
  g_assert_true (g_file_test (sandbox_image_get_rootfs (image), G_FILE_TEST_IS_DIR));

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (sandbox_image_store_remove (f->store, "app:1", NULL, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (sandbox_image_get_rootfs (image), G_FILE_TEST_EXISTS));
}

static void
test_local_run_as_root_and_digest (Fixture       *f,
                                   gconstpointer  data)
{
  g_autofree char *layout = NULL;
  g_autoptr(SandboxImage) image = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  if (!local_ready ())
    return;
  layout = make_app_layout (f, "root", NULL);
  image = import (f, layout, NULL);
  backend = sandbox_backend_new_for_name ("local", &error);
  g_assert_no_error (error);
  /* By digest; run-as-root wins over the image's User; a spec workdir
   * wins over its WorkingDir. */
  sandbox_spec_set_image (spec, sandbox_image_get_id (image));
  sandbox_spec_set_run_as_root (spec, TRUE);
  sandbox_spec_set_workdir (spec, "/work");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  out = run (instance, "pwd; while read k a b; do case $k in Uid:) echo $a;; esac; done < /proc/self/status", NULL);
  g_assert_cmpstr (out, ==, "/work\n0\n");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_object_unref (g_steal_pointer (&instance));
}

typedef struct
{
  SandboxImageStore *store;
  GError            *error;
  gboolean           removed;
} RemoveCall;

static gpointer
remove_in_thread (gpointer data)
{
  RemoveCall *call = data;

  call->removed = sandbox_image_store_remove (call->store, "race:1", NULL, &call->error);
  return NULL;
}

static void
created (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* An rm that starts while a sandbox is being created on the image waits
 * until the sandbox is recorded, and is then refused: it never takes the
 * root away from a starting sandbox. */
static void
test_local_rm_during_create (Fixture       *f,
                             gconstpointer  data)
{
  g_autofree char *layout = NULL;
  g_autoptr(SandboxImage) image = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  RemoveCall call = { f->store, NULL, FALSE };
  GThread *thread;

  if (!local_ready ())
    return;
  layout = make_app_layout (f, "race", "race:1");
  image = import (f, layout, NULL);
  backend = sandbox_backend_new_for_name ("local", &error);
  g_assert_no_error (error);
  sandbox_spec_set_image (spec, "race:1");

  /* The image is looked up (and held) before create_async returns. */
  sandbox_backend_create_async (backend, spec, NULL, created, &result);
  thread = g_thread_new ("rm", remove_in_thread, &call);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  instance = sandbox_backend_create_finish (backend, result, &error);
  g_assert_no_error (error);
  g_thread_join (thread);
  g_assert_false (call.removed);
  g_assert_error (call.error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_assert_nonnull (strstr (call.error->message, sandbox_instance_get_id (instance)));
  g_clear_error (&call.error);
  out = run (instance, "read x < /data/c; echo $x", NULL);
  g_assert_cmpstr (out, ==, "c\n");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
}

static void
test_local_unknown (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;

  sandbox_spec_set_image (spec, "python:3.11-slim");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "sandboxctl image import FILE --name python:3.11-slim"));
}

/* A store in a directory that another user owns: that user could swap an
 * image's root for one of theirs (root under `sudo -E` keeps the invoking
 * user's HOME, and the store may be in its cache). Refused before any
 * record there is read: lookup and import fail, naming the directory.
 * Root only (it makes a directory of uid 65534). */
static void
test_foreign_store (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *top = g_build_filename (g_get_tmp_dir (), "test-image-XXXXXX", NULL);
  g_autofree char *path = NULL, *rm = NULL;
  g_autoptr(SandboxImageStore) store = NULL;
  g_autoptr(SandboxImage) image = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root, to make a directory of another user");
      return;
    }
  g_assert_nonnull (g_mkdtemp (top));
  rm = g_strdup_printf ("rm -rf %s", top);
  path = g_build_filename (top, "images", NULL);
  g_assert_cmpint (g_mkdir (path, 0700), ==, 0);
  g_assert_cmpint (chown (top, 65534, 65534), ==, 0);
  store = sandbox_image_store_new (path);
  image = sandbox_image_store_lookup (store, "planted:latest", NULL, &error);
  g_assert_null (image);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_assert_nonnull (strstr (error->message, top));
  g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
}

int
main (int argc, char **argv)
{
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_unsetenv ("SANDBOX_IMAGE_STORE");
  g_unsetenv ("SANDBOX_LOCAL_ROOT");
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(name, func) g_test_add ("/image/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("store/multi-layer", test_multi_layer);
  ADD ("store/shared-layer-and-rm", test_shared_layer);
  ADD ("store/tar-and-docker", test_tar_and_docker);
  ADD ("store/compressed-layers", test_compressed);
  ADD ("store/hostile-layers", test_hostile);
  ADD ("store/hostile-names", test_hostile_names);
  ADD ("store/digest-mismatch", test_digest_mismatch);
  ADD ("store/hostile-source-files", test_hostile_source_files);
  ADD ("store/rootfs-refused", test_rootfs_refused);
  ADD ("store/concurrent", test_concurrent);
  ADD ("store/killed-import", test_killed_import);
  ADD ("local/config-applied-and-rm-in-use", test_local_config);
  ADD ("local/digest-and-overrides", test_local_run_as_root_and_digest);
  ADD ("local/rm-during-create", test_local_rm_during_create);
  ADD ("local/unknown-image", test_local_unknown);
#undef ADD
  g_test_add_func ("/image/store/foreign-directory", test_foreign_store);

  return g_test_run ();
}
