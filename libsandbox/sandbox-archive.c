/* libsandbox - directory trees as tar streams
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE   /* O_PATH */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox-private.h"
#include "sandbox-archive.h"

#define CHUNK_SIZE (64 * 1024)

/* --------------------------------------------------------------------------
 * libarchive, loaded at first use
 *
 * libarchive pulls in libxml2, ICU, libstdc++ and a dozen compression
 * libraries: binding them all costs a program that never touches a tar
 * stream (sandboxctl run, a Metaflow task) most of its start. So libsandbox
 * does not link it; the first archive call dlopen()s it and looks up the
 * functions below, and every archive_* call in this file goes through that
 * table. The soname is fixed at configure time (SANDBOX_LIBARCHIVE_SONAME);
 * SANDBOX_LIBARCHIVE names another file (tests, unusual installs). */

#define LIBARCHIVE_FUNCTIONS(F) \
  F (archive_entry_copy_stat) \
  F (archive_entry_filetype) \
  F (archive_entry_free) \
  F (archive_entry_hardlink) \
  F (archive_entry_mtime) \
  F (archive_entry_mtime_nsec) \
  F (archive_entry_new) \
  F (archive_entry_pathname) \
  F (archive_entry_perm) \
  F (archive_entry_set_gid) \
  F (archive_entry_set_gname) \
  F (archive_entry_set_pathname) \
  F (archive_entry_set_symlink) \
  F (archive_entry_set_uid) \
  F (archive_entry_set_uname) \
  F (archive_entry_size) \
  F (archive_entry_size_is_set) \
  F (archive_entry_symlink) \
  F (archive_error_string) \
  F (archive_read_data) \
  F (archive_read_data_block) \
  F (archive_read_data_skip) \
  F (archive_read_free) \
  F (archive_read_new) \
  F (archive_read_next_header) \
  F (archive_read_open) \
  F (archive_read_support_filter_all) \
  F (archive_read_support_format_tar) \
  F (archive_set_error) \
  F (archive_write_close) \
  F (archive_write_data) \
  F (archive_write_free) \
  F (archive_write_header) \
  F (archive_write_new) \
  F (archive_write_open2) \
  F (archive_write_set_bytes_in_last_block) \
  F (archive_write_set_format_pax_restricted) \

static struct
{
#define F(name) __typeof__ (name) *name;
  LIBARCHIVE_FUNCTIONS (F)
#undef F
} libarchive;

static char *libarchive_error;

static gboolean
ensure_libarchive (GError **error)
{
  static gsize state = 0;  /* 1: loaded, 2: failed (libarchive_error says why) */

  if (g_once_init_enter (&state))
    {
      const char *file = g_getenv ("SANDBOX_LIBARCHIVE");
      gsize result = 1;
      void *handle;

      if (file == NULL || *file == '\0')
        file = SANDBOX_LIBARCHIVE_SONAME;
      /* Never closed: the functions stay in use for the life of the process. */
      handle = dlopen (file, RTLD_NOW | RTLD_LOCAL);
      if (handle == NULL)
        {
          libarchive_error = g_strdup (dlerror ());
          result = 2;
        }
#define F(name) \
      else if ((libarchive.name = dlsym (handle, #name)) == NULL) \
        { \
          libarchive_error = g_strdup_printf ("%s has no %s", file, #name); \
          result = 2; \
        }
      LIBARCHIVE_FUNCTIONS (F)
#undef F
      g_once_init_leave (&state, result);
    }

  if (state == 1)
    return TRUE;
  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
               _("Tar archives need libarchive (%s), which could not be loaded: %s. "
                 "Install it (Debian and Ubuntu: apt install libarchive13; "
                 "Fedora: dnf install libarchive)."),
               SANDBOX_LIBARCHIVE_SONAME, libarchive_error);
  return FALSE;
}

/* From here on, archive_foo (...) calls the loaded function. */
#define archive_entry_copy_stat (*libarchive.archive_entry_copy_stat)
#define archive_entry_filetype (*libarchive.archive_entry_filetype)
#define archive_entry_free (*libarchive.archive_entry_free)
#define archive_entry_hardlink (*libarchive.archive_entry_hardlink)
#define archive_entry_mtime (*libarchive.archive_entry_mtime)
#define archive_entry_mtime_nsec (*libarchive.archive_entry_mtime_nsec)
#define archive_entry_new (*libarchive.archive_entry_new)
#define archive_entry_pathname (*libarchive.archive_entry_pathname)
#define archive_entry_perm (*libarchive.archive_entry_perm)
#define archive_entry_set_gid (*libarchive.archive_entry_set_gid)
#define archive_entry_set_gname (*libarchive.archive_entry_set_gname)
#define archive_entry_set_pathname (*libarchive.archive_entry_set_pathname)
#define archive_entry_set_symlink (*libarchive.archive_entry_set_symlink)
#define archive_entry_set_uid (*libarchive.archive_entry_set_uid)
#define archive_entry_set_uname (*libarchive.archive_entry_set_uname)
#define archive_entry_size (*libarchive.archive_entry_size)
#define archive_entry_size_is_set (*libarchive.archive_entry_size_is_set)
#define archive_entry_symlink (*libarchive.archive_entry_symlink)
#define archive_error_string (*libarchive.archive_error_string)
#define archive_read_data (*libarchive.archive_read_data)
#define archive_read_data_block (*libarchive.archive_read_data_block)
#define archive_read_data_skip (*libarchive.archive_read_data_skip)
#define archive_read_free (*libarchive.archive_read_free)
#define archive_read_new (*libarchive.archive_read_new)
#define archive_read_next_header (*libarchive.archive_read_next_header)
#define archive_read_open (*libarchive.archive_read_open)
#define archive_read_support_filter_all (*libarchive.archive_read_support_filter_all)
#define archive_read_support_format_tar (*libarchive.archive_read_support_format_tar)
#define archive_set_error (*libarchive.archive_set_error)
#define archive_write_close (*libarchive.archive_write_close)
#define archive_write_data (*libarchive.archive_write_data)
#define archive_write_free (*libarchive.archive_write_free)
#define archive_write_header (*libarchive.archive_write_header)
#define archive_write_new (*libarchive.archive_write_new)
#define archive_write_open2 (*libarchive.archive_write_open2)
#define archive_write_set_bytes_in_last_block (*libarchive.archive_write_set_bytes_in_last_block)
#define archive_write_set_format_pax_restricted (*libarchive.archive_write_set_format_pax_restricted)

/* --------------------------------------------------------------------------
 * libarchive <-> GIO glue */

typedef struct
{
  GInputStream  *in;
  GOutputStream *out;
  GCancellable  *cancellable;
  GError        *error;
  GChecksum     *checksum;     /* of every byte read, if set (image layers) */
  gboolean       layer;        /* an image layer: see _sandbox_archive_extract_layer() */
  GHashTable    *only;         /* if set: the only paths that may be written */
  guint8         buffer[CHUNK_SIZE];  /* what libarchive reads from */
  guint8         data[CHUNK_SIZE];    /* file contents, in and out */
} StreamGlue;

static la_ssize_t
glue_read (struct archive *a,
           void           *data,
           const void    **buffer)
{
  StreamGlue *glue = data;
  gssize n;

  n = g_input_stream_read (glue->in, glue->buffer, sizeof glue->buffer, glue->cancellable,
                           glue->error ? NULL : &glue->error);
  if (n < 0)
    {
      archive_set_error (a, EIO, "read failed");
      return -1;
    }
  if (glue->checksum != NULL && n > 0)
    g_checksum_update (glue->checksum, glue->buffer, n);
  *buffer = glue->buffer;
  return n;
}

static la_ssize_t
glue_write (struct archive *a,
            void           *data,
            const void     *buffer,
            size_t          length)
{
  StreamGlue *glue = data;

  if (!g_output_stream_write_all (glue->out, buffer, length, NULL, glue->cancellable,
                                  glue->error ? NULL : &glue->error))
    {
      archive_set_error (a, EIO, "write failed");
      return -1;
    }
  return (la_ssize_t) length;
}

static gboolean
archive_failed (struct archive  *a,
                StreamGlue      *glue,
                GError         **error,
                gboolean         writing)
{
  /* libarchive's own words may quote a name of the archive. */
  g_autofree char *detail = _sandbox_display_text (archive_error_string (a) ? archive_error_string (a)
                                                                         : g_strerror (EIO));

  if (glue->error != NULL)
    g_propagate_error (error, g_steal_pointer (&glue->error));
  else if (writing)
    g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                 _("Could not write the archive: %s"), detail);
  else
    g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                 _("Could not read the archive: %s. Check that it is an uncorrupted tar stream."),
                 detail);
  return FALSE;
}

/* A relative path that stays below its base: no "..", not absolute. */
static gboolean
path_is_safe (const char *path)
{
  g_auto(GStrv) parts = NULL;

  if (path == NULL || *path == '\0' || g_path_is_absolute (path))
    return FALSE;
  parts = g_strsplit (path, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (strcmp (parts[i], "..") == 0)
      return FALSE;
  return TRUE;
}

/* --------------------------------------------------------------------------
 * Writing */

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* Fails the archive naming REL, which is beneath the base: a name the
 * directory's writer chose, so shown escaped. */
static gboolean
write_failed (GError     **error,
              const char  *rel,
              int          errsv)
{
  g_autofree char *shown = _sandbox_display_text (rel);

  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
               _("Cannot archive %s: %s"), shown, g_strerror (errsv));
  return FALSE;
}

/* Adds NAME of directory DIRFD, stored as REL, and for a directory
 * everything under it. Each name is opened relative to its directory's
 * descriptor without following links, and what goes into the archive is
 * what the descriptor shows (fstat), never a path resolved again: the
 * tree may be one a sandbox writes too (a read-write mount), which could
 * swap a directory for a link to a host directory, or a file for a FIFO,
 * between two looks. A FIFO is opened without blocking and refused. */
static gboolean
write_path (struct archive  *a,
            StreamGlue      *glue,
            int              parent_fd,
            const char      *name,
            const char      *rel,
            GError         **error)
{
  struct archive_entry *entry;
  struct stat st;
  g_autofree char *target = NULL;
  int fd = -1;
  gboolean ok = TRUE;

  if (g_cancellable_set_error_if_cancelled (glue->cancellable, error))
    return FALSE;
  /* No deeper than a path can name (the old walk by paths stopped there too). */
  if (strlen (rel) >= PATH_MAX)
    return write_failed (error, rel, ENAMETOOLONG);
  if (fstatat (parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return write_failed (error, rel, errno);
  if (S_ISLNK (st.st_mode))
    {
      ssize_t n;

      target = g_malloc (PATH_MAX + 1);
      n = readlinkat (parent_fd, name, target, PATH_MAX);
      if (n < 0)
        return write_failed (error, rel, errno);
      target[n] = '\0';
    }
  else if (S_ISREG (st.st_mode) || S_ISDIR (st.st_mode))
    {
      int flags = S_ISDIR (st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK | O_NOCTTY;

      fd = openat (parent_fd, name, flags | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno != ELOOP)
        return write_failed (error, rel, errno);
      if (fd < 0 || fstat (fd, &st) != 0 ||
          (st.st_mode & S_IFMT) != (flags & O_DIRECTORY ? S_IFDIR : S_IFREG))
        {
          /* Swapped for a link or another kind of file since the
           * fstatat() above: refused, as a tree being changed. */
          g_autofree char *shown = _sandbox_display_text (rel);

          if (fd >= 0)
            close (fd);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       _("Cannot archive %s: it changed while it was read (a link or another "
                         "kind of file took its place). Archive it again once nothing changes "
                         "that directory."), shown);
          return FALSE;
        }
    }
  else
    return TRUE; /* devices, sockets, fifos: not part of a tree we copy */

  entry = archive_entry_new ();
  archive_entry_copy_stat (entry, &st);
  archive_entry_set_pathname (entry, rel);
  archive_entry_set_uid (entry, 0);
  archive_entry_set_gid (entry, 0);
  archive_entry_set_uname (entry, NULL);
  archive_entry_set_gname (entry, NULL);
  if (target != NULL)
    archive_entry_set_symlink (entry, target);
  if (archive_write_header (a, entry) != ARCHIVE_OK)
    {
      archive_entry_free (entry);
      if (fd >= 0)
        close (fd);
      return archive_failed (a, glue, error, TRUE);
    }
  archive_entry_free (entry);

  if (S_ISREG (st.st_mode))
    {
      off_t left = st.st_size;
      gssize n = 0;

      fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
      /* What the header says, no more: libarchive pads a shorter file. */
      while (left > 0 && (n = read (fd, glue->data, MIN ((off_t) sizeof glue->data, left))) > 0)
        {
          if (archive_write_data (a, glue->data, n) != n)
            {
              close (fd);
              return archive_failed (a, glue, error, TRUE);
            }
          left -= n;
        }
      close (fd);
      if (n < 0)
        return write_failed (error, rel, EIO);
    }
  else if (S_ISDIR (st.st_mode))
    {
      DIR *dir = fdopendir (fd);
      g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      struct dirent *d;

      if (dir == NULL)
        {
          int errsv = errno;

          close (fd);
          return write_failed (error, rel, errsv);
        }
      while ((d = readdir (dir)) != NULL)
        if (strcmp (d->d_name, ".") != 0 && strcmp (d->d_name, "..") != 0)
          g_ptr_array_add (names, g_strdup (d->d_name));
      g_ptr_array_sort (names, compare_names);
      for (guint i = 0; ok && i < names->len; i++)
        {
          const char *child_name = g_ptr_array_index (names, i);
          g_autofree char *child = strcmp (rel, ".") == 0
            ? g_strdup (child_name)
            : g_build_filename (rel, child_name, NULL);
          ok = write_path (a, glue, dirfd (dir), child_name, child, error);
        }
      closedir (dir);
    }
  return ok;
}

/* Adds PATH (relative, checked by path_is_safe()) below BASE_FD: its
 * directories are walked one name at a time without following links, as
 * everything below them is. */
static gboolean
write_top_path (struct archive  *a,
                StreamGlue      *glue,
                int              base_fd,
                const char      *path,
                GError         **error)
{
  g_auto(GStrv) parts = g_strsplit (path, "/", -1);
  g_autofree char *last = NULL;
  GString *walked = g_string_new (NULL);
  int dirfd = fcntl (base_fd, F_DUPFD_CLOEXEC, 3);
  gboolean ok;
  guint n = 0;

  /* "a//b/./c/" names a/b/c. */
  for (guint i = 0; parts[i] != NULL; i++)
    if (*parts[i] != '\0' && strcmp (parts[i], ".") != 0)
      parts[n++] = parts[i];
    else
      g_free (parts[i]);
  parts[n] = NULL;
  if (n == 0)
    {
      g_string_free (walked, TRUE);
      ok = write_path (a, glue, dirfd, ".", ".", error);
      close (dirfd);
      return ok;
    }
  for (guint i = 0; dirfd >= 0 && i + 1 < n; i++)
    {
      int next;

      g_string_append_printf (walked, "%s%s", i > 0 ? "/" : "", parts[i]);
      /* O_PATH: a directory on the way needs only search permission. */
      next = openat (dirfd, parts[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        {
          int errsv = errno;

          close (dirfd);
          ok = write_failed (error, walked->str, errsv == ELOOP ? ENOTDIR : errsv);
          g_string_free (walked, TRUE);
          return ok;
        }
      close (dirfd);
      dirfd = next;
    }
  g_string_free (walked, TRUE);
  if (dirfd < 0)
    return write_failed (error, path, errno);
  last = g_strjoinv ("/", parts);
  ok = write_path (a, glue, dirfd, parts[n - 1], last, error);
  close (dirfd);
  return ok;
}

/**
 * sandbox_archive_write:
 * @base_dir: the local directory @paths are relative to
 * @paths: (array zero-terminated=1) (nullable): relative paths of files or
 *   directories (taken recursively), in the order they go into the archive;
 *   %NULL or empty for the whole of @base_dir
 * @archive: where the tar stream goes; it is not closed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Writes a tar (POSIX pax) stream of part of a local directory tree to
 * @archive, one block at a time: nothing is held whole in memory. Symbolic
 * links are stored as links; owners are not recorded. The entries appear in
 * the order of @paths, which lets a reader rely on it (for example, a marker
 * file written last).
 *
 * This blocks; run it in a thread to feed a pipe that another call reads,
 * such as [method@Sandbox.Instance.upload_archive].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_archive_write (GFile               *base_dir,
                       const char * const  *paths,
                       GOutputStream       *archive,
                       GCancellable        *cancellable,
                       GError             **error)
{
  g_autofree char *base = NULL;
  g_autofree StreamGlue *glue = g_new0 (StreamGlue, 1);
  struct archive *a;
  int base_fd;
  static const char * const whole[] = { ".", NULL };
  gboolean ok = TRUE;

  g_return_val_if_fail (G_IS_FILE (base_dir), FALSE);
  g_return_val_if_fail (G_IS_OUTPUT_STREAM (archive), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!ensure_libarchive (error))
    return FALSE;

  base = g_file_get_path (base_dir);
  if (base == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The archive base must be a local directory."));
      return FALSE;
    }
  if (paths == NULL || paths[0] == NULL)
    paths = whole;
  for (guint i = 0; paths[i] != NULL; i++)
    if (!path_is_safe (paths[i]))
      {
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                     _("Archive path “%s” must be relative and must not contain “..”."), paths[i]);
        return FALSE;
      }

  /* The base is the caller's to name: opened as given (links followed). */
  base_fd = open (base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (base_fd < 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot archive %s: %s"), base, g_strerror (errsv));
      return FALSE;
    }

  glue->out = archive;
  glue->cancellable = cancellable;
  a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  archive_write_set_bytes_in_last_block (a, 1);
  if (archive_write_open2 (a, glue, NULL, glue_write, NULL, NULL) != ARCHIVE_OK)
    ok = archive_failed (a, glue, error, TRUE);
  for (guint i = 0; ok && paths[i] != NULL; i++)
    ok = write_top_path (a, glue, base_fd, paths[i], error);
  if (ok && archive_write_close (a) != ARCHIVE_OK)
    ok = archive_failed (a, glue, error, TRUE);
  archive_write_free (a);
  close (base_fd);
  g_clear_error (&glue->error);
  return ok;
}

/* --------------------------------------------------------------------------
 * Extracting */

/* TEXT as a message shows it (_sandbox_display_text), kept in *SLOT: an
 * archive's names are the sandbox's or the image's, any bytes. */
static const char *
shown (char       **slot,
       const char  *text)
{
  g_free (*slot);
  *slot = _sandbox_display_text (text);
  return *slot;
}

/* Opens (creating as needed) the directory @rel below @root_fd without
 * following symbolic links, so that no entry can lead outside the root. */
static int
open_dir_below (int          root_fd,
                const char  *rel,
                const char  *entry,
                GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (rel, "/", -1);
  g_autofree char *shown_entry = NULL, *shown_rel = NULL;
  int fd = dup (root_fd);

  for (guint i = 0; fd >= 0 && parts[i] != NULL; i++)
    {
      int next, errsv;

      if (*parts[i] == '\0' || strcmp (parts[i], ".") == 0)
        continue;
      if (mkdirat (fd, parts[i], 0755) != 0 && errno != EEXIST)
        {
          errsv = errno;
          close (fd);
          errno = errsv;
          fd = -1;
          break;
        }
      next = openat (fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      errsv = errno;
      close (fd);
      errno = errsv;
      fd = next;
    }
  if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
    /* Never through a link (it could lead anywhere), nor a file. */
    g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                 _("The archive entry “%s” goes through “%s”, which is a symbolic link or a file "
                   "in the destination; nothing after it was extracted."),
                 shown (&shown_entry, entry), shown (&shown_rel, rel));
  else if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot create directory “%s” from the archive: %s (a symbolic link or a "
                     "file is in the way?)"), shown (&shown_rel, rel), g_strerror (errsv));
    }
  return fd;
}

/* Does @target, relative to the directory @dir, stay in the root?
 *
 * Lexically, and also whatever symbolic links the root holds or will hold:
 * ".." may only lead the target ("../../a/b"), never follow a name
 * ("a/../b"), because "a" may be (or later become) a symbolic link and
 * "a/.." then is not the directory the target was written in. Climbing
 * goes through real directories only (the link's own parents, which
 * open_dir_below() opened without following links), and every name after
 * that only descends: into a real directory, or through a link that obeys
 * the same rule. So no chain of links leaves the root. */
static gboolean
link_target_is_safe (const char *dir,
                     const char *target)
{
  g_auto(GStrv) dparts = NULL;
  g_auto(GStrv) tparts = NULL;
  gboolean descending = FALSE;
  int depth = 0;

  if (target == NULL || *target == '\0' || g_path_is_absolute (target))
    return FALSE;
  dparts = g_strsplit (dir, "/", -1);
  for (guint i = 0; dparts[i] != NULL; i++)
    if (*dparts[i] != '\0' && strcmp (dparts[i], ".") != 0)
      depth++;
  tparts = g_strsplit (target, "/", -1);
  for (guint i = 0; tparts[i] != NULL; i++)
    {
      if (strcmp (tparts[i], "..") == 0)
        {
          if (descending)
            return FALSE;
          depth--;
        }
      else if (*tparts[i] != '\0' && strcmp (tparts[i], ".") != 0)
        descending = TRUE;
      if (depth < 0)
        return FALSE;
    }
  return TRUE;
}

static gboolean
extract_entry (struct archive        *a,
               StreamGlue            *glue,
               struct archive_entry  *entry,
               int                    root_fd,
               SandboxArchiveFlags    flags,
               GError               **error)
{
  const char *path = archive_entry_pathname (entry);
  mode_t type = archive_entry_filetype (entry);
  g_autofree char *dir = NULL;
  g_autofree char *name = NULL;
  g_autofree char *tmp = NULL;
  int dir_fd, fd = -1, hard_fd = -1;
  g_autofree char *hard_name = NULL;
  g_autofree char *shown_path = NULL, *shown_target = NULL;
  gboolean ok = FALSE;
  struct stat st;

  while (path != NULL && g_str_has_prefix (path, "./"))
    path += 2;
  if (path == NULL || *path == '\0' || strcmp (path, ".") == 0)
    return TRUE;
  if (!path_is_safe (path))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The archive entry “%s” would be written outside the destination; "
                     "nothing after it was extracted."), shown (&shown_path, path));
      return FALSE;
    }

  /* Only the files asked for: a regular file among @only, nothing else
   * (no directory, link or hard link of its own; a file's directories are
   * made below). The archive comes from whoever wrote it, the listing from
   * the caller. */
  if (glue->only != NULL)
    {
      g_autofree char *trimmed = g_strdup (path);

      while (g_str_has_suffix (trimmed, "/"))
        trimmed[strlen (trimmed) - 1] = '\0';
      if (type == AE_IFDIR)
        return TRUE;
      if (type != AE_IFREG || archive_entry_hardlink (entry) != NULL ||
          !g_hash_table_contains (glue->only, trimmed))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                       _("The archive entry “%s” is not one of the files to extract; "
                         "nothing after it was extracted."), shown (&shown_path, path));
          return FALSE;
        }
    }

  if (type == AE_IFDIR)
    {
      dir_fd = open_dir_below (root_fd, path, path, error);
      if (dir_fd < 0)
        return FALSE;
      close (dir_fd);
      return TRUE;
    }
  /* Hard links (a tar stores them as regular files naming their target),
   * devices, fifos: skipped. A hard link could name any file the process
   * can reach, inside the destination or not. */
  if (archive_entry_hardlink (entry) != NULL)
    {
      if (!glue->layer)
        return TRUE;
      type = AE_IFREG;   /* whatever the header's type field said */
    }
  if (type != AE_IFREG && type != AE_IFLNK)
    return TRUE;

  {
    g_autofree char *trimmed = g_strdup (path);
    while (g_str_has_suffix (trimmed, "/"))
      trimmed[strlen (trimmed) - 1] = '\0';
    dir = g_path_get_dirname (trimmed);
    name = g_path_get_basename (trimmed);
  }
  /* In an image layer a symbolic link is data for the sandbox, where the
   * image is the root: any target is kept (absolute ones are common), and
   * it is never followed here (every path is opened without following). */
  if (type == AE_IFLNK && !glue->layer && !link_target_is_safe (dir, archive_entry_symlink (entry)))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The archive entry “%s” is a symbolic link leading outside the destination "
                     "(“%s”); nothing after it was extracted."),
                   shown (&shown_path, path), shown (&shown_target, archive_entry_symlink (entry)));
      return FALSE;
    }

  dir_fd = open_dir_below (root_fd, dir, path, error);
  if (dir_fd < 0)
    return FALSE;

  if ((flags & SANDBOX_ARCHIVE_KEEP_EXISTING) &&
      fstatat (dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      close (dir_fd);
      return archive_read_data_skip (a) == ARCHIVE_OK || archive_failed (a, glue, error, FALSE);
    }

  if (archive_entry_hardlink (entry) != NULL)
    {
      g_autofree char *target = g_strdup (archive_entry_hardlink (entry));
      g_autofree char *target_dir = NULL;
      char *t = target;

      while (g_str_has_prefix (t, "./"))
        t += 2;
      while (g_str_has_suffix (t, "/"))
        t[strlen (t) - 1] = '\0';
      if (!path_is_safe (t))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                       _("The archive entry “%s” is a hard link to “%s”, outside the "
                         "destination; nothing after it was extracted."),
                       shown (&shown_path, path), shown (&shown_target, t));
          close (dir_fd);
          return FALSE;
        }
      target_dir = g_path_get_dirname (t);
      hard_name = g_path_get_basename (t);
      hard_fd = open_dir_below (root_fd, target_dir, path, error);
      if (hard_fd < 0)
        {
          close (dir_fd);
          return FALSE;
        }
      type = AE_IFLNK; /* nothing to read: no data follows a hard link */
    }

  /* A temporary name in the same directory, then rename: readers never
   * see a partly written file, and a failure leaves nothing behind. */
  for (int attempt = 0; attempt < 100; attempt++)
    {
      g_free (tmp);
      tmp = g_strdup_printf (".%s.sbx-%08x", name, g_random_int ());
      if (hard_fd >= 0)
        {
          /* A hard link within the layer: to what an earlier entry of the
           * same layer wrote (the link itself if that is a symlink). */
          if (linkat (hard_fd, hard_name, dir_fd, tmp, 0) == 0)
            break;
        }
      else if (type == AE_IFLNK)
        {
          const char *target = archive_entry_symlink (entry);

          /* A symbolic link without a target: a malformed archive (found
           * by fuzz-tar; symlinkat (NULL, ...) is undefined). */
          if (target == NULL || *target == '\0')
            {
              g_clear_pointer (&tmp, g_free);
              errno = EINVAL;
              break;
            }
          if (symlinkat (target, dir_fd, tmp) == 0)
            break;
        }
      else if ((fd = openat (dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                             0600)) >= 0)
        break;
      if (errno != EEXIST)
        break;
    }
  if (hard_fd >= 0 && (tmp == NULL || fstatat (dir_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0))
    {
      /* The target is not in this layer (nor anywhere we may look). */
      g_debug ("Skipping the hard link %s to %s: %s", path, archive_entry_hardlink (entry),
               g_strerror (errno));
      g_clear_pointer (&tmp, g_free);
      ok = TRUE;
      goto out;
    }
  if (type == AE_IFREG && fd < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot write “%s” from the archive: %s"), shown (&shown_path, path), g_strerror (errsv));
      g_clear_pointer (&tmp, g_free);
      goto out;
    }

  if (type == AE_IFREG)
    {
      struct timespec times[2];
      const void *block;
      size_t size;
      la_int64_t offset, end = 0;
      int r;

      /* Block by block at the offsets the archive gives: a sparse entry's
       * holes stay holes. archive_read_data() filled them with zeros, so a
       * 10 KiB tar that a sandbox made (its task's logs, its outputs, a
       * layer) had this machine write 1 GiB of zeros, or fill its disk. */
      while ((r = archive_read_data_block (a, &block, &size, &offset)) == ARCHIVE_OK)
        {
          const guint8 *p = block;
          while (size > 0)
            {
              ssize_t w = pwrite (fd, p, size, offset);
              if (w < 0 && errno == EINTR)
                continue;
              if (w < 0)
                {
                  int errsv = errno;
                  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                               _("Cannot write “%s” from the archive: %s"), shown (&shown_path, path), g_strerror (errsv));
                  goto out;
                }
              p += w;
              size -= w;
              offset += w;
            }
          end = MAX (end, offset);
        }
      if (r != ARCHIVE_EOF)
        {
          archive_failed (a, glue, error, FALSE);
          goto out;
        }
      /* A hole at the end: the size, with no block. */
      if (archive_entry_size_is_set (entry) && archive_entry_size (entry) > end &&
          ftruncate (fd, archive_entry_size (entry)) != 0)
        {
          int errsv = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Cannot write “%s” from the archive: %s"), shown (&shown_path, path), g_strerror (errsv));
          goto out;
        }
      /* A layer's files all belong to the sandbox's user: let it read them. */
      fchmod (fd, (archive_entry_perm (entry) & 0777) | (glue->layer ? 0400 : 0));
      times[0].tv_sec = times[1].tv_sec = archive_entry_mtime (entry);
      times[0].tv_nsec = times[1].tv_nsec = archive_entry_mtime_nsec (entry);
      futimens (fd, times);
      if (close (fd) != 0)
        {
          fd = -1;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       _("Cannot write “%s” from the archive: %s"), shown (&shown_path, path), g_strerror (errno));
          goto out;
        }
      fd = -1;
    }
  else if (tmp == NULL || fstatat (dir_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("Cannot create the symbolic link “%s”: %s"), shown (&shown_path, path), g_strerror (errno));
      g_clear_pointer (&tmp, g_free);
      goto out;
    }

  if (renameat (dir_fd, tmp, dir_fd, name) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot write “%s” from the archive: %s"), shown (&shown_path, path), g_strerror (errsv));
      goto out;
    }
  g_clear_pointer (&tmp, g_free);
  ok = TRUE;

out:
  if (hard_fd >= 0)
    close (hard_fd);
  if (fd >= 0)
    close (fd);
  if (tmp != NULL)
    unlinkat (dir_fd, tmp, 0);
  close (dir_fd);
  return ok;
}

static gboolean
extract_common (GInputStream         *archive,
                GFile                *dest_dir,
                SandboxArchiveFlags   flags,
                gboolean              layer,
                const char * const   *only,
                GChecksum            *checksum,
                GCancellable         *cancellable,
                GError              **error)
{
  g_autofree char *dest = NULL;
  g_autofree StreamGlue *glue = g_new0 (StreamGlue, 1);
  struct archive *a;
  struct archive_entry *entry;
  gboolean ok = TRUE;
  int root_fd, r;

  g_return_val_if_fail (G_IS_INPUT_STREAM (archive), FALSE);
  g_return_val_if_fail (G_IS_FILE (dest_dir), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!ensure_libarchive (error))
    return FALSE;

  dest = g_file_get_path (dest_dir);
  if (dest == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The extraction destination must be a local directory."));
      return FALSE;
    }
  if (g_mkdir_with_parents (dest, 0755) != 0 ||
      (root_fd = open (dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Cannot open the directory %s: %s"), dest, g_strerror (errsv));
      return FALSE;
    }

  glue->in = archive;
  glue->cancellable = cancellable;
  glue->layer = layer;
  if (only != NULL)
    {
      glue->only = g_hash_table_new (g_str_hash, g_str_equal);
      for (guint i = 0; only[i] != NULL; i++)
        {
          const char *p = only[i];
          while (g_str_has_prefix (p, "./"))
            p += 2;
          g_hash_table_add (glue->only, (gpointer) p);
        }
    }
  glue->checksum = checksum;
  a = archive_read_new ();
  archive_read_support_format_tar (a);
  archive_read_support_filter_all (a);
  if (archive_read_open (a, glue, NULL, glue_read, NULL) != ARCHIVE_OK)
    ok = archive_failed (a, glue, error, FALSE);
  while (ok && (r = archive_read_next_header (a, &entry)) != ARCHIVE_EOF)
    {
      if (r < ARCHIVE_WARN)
        ok = archive_failed (a, glue, error, FALSE);
      else if (g_cancellable_set_error_if_cancelled (cancellable, error))
        ok = FALSE;
      else
        ok = extract_entry (a, glue, entry, root_fd, flags, error);
    }
  archive_read_free (a);
  close (root_fd);
  g_clear_error (&glue->error);
  g_clear_pointer (&glue->only, g_hash_table_unref);

  /* Read to the end: tar pads its output after the end-of-archive blocks,
   * and a writer feeding a pipe must not get EPIPE for that padding. */
  while (ok)
    {
      gssize n = checksum != NULL
        ? g_input_stream_read (archive, glue->buffer, sizeof glue->buffer, cancellable, error)
        : g_input_stream_skip (archive, CHUNK_SIZE, cancellable, error);

      if (checksum != NULL && n > 0)
        g_checksum_update (checksum, glue->buffer, n);
      if (n < 0)
        ok = FALSE;
      else if (n == 0)
        break;
    }
  return ok;
}


/**
 * sandbox_archive_extract:
 * @archive: a tar stream (optionally compressed); read to its end, not closed
 * @dest_dir: the local directory to extract into (created if missing)
 * @flags: #SandboxArchiveFlags
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Extracts a tar stream into @dest_dir, one block at a time.
 *
 * Every file is written under a temporary name in its directory and renamed
 * into place when complete, in the order of the archive: a reader never sees
 * a partly written file, and if the stream breaks off, the files after the
 * break are simply absent (so a marker file stored last appears only when
 * everything before it is complete). Entries with absolute paths or “..”,
 * symbolic links pointing outside @dest_dir (absolute, climbing above it,
 * or with “..” after a name, which another link could redirect) and paths
 * through symbolic links are refused with %SANDBOX_ERROR_PROTOCOL. Owners,
 * devices and hard links are not restored (hard links are skipped).
 *
 * This blocks; run it in a thread to consume a pipe that another call writes,
 * such as [method@Sandbox.Instance.download_archive].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_archive_extract (GInputStream         *archive,
                         GFile                *dest_dir,
                         SandboxArchiveFlags   flags,
                         GCancellable         *cancellable,
                         GError              **error)
{
  return extract_common (archive, dest_dir, flags, FALSE, NULL, NULL, cancellable, error);
}

/**
 * sandbox_archive_extract_paths:
 * @archive: a tar stream (optionally compressed); read to its end, not closed
 * @dest_dir: the local directory to extract into (created if missing)
 * @paths: (array zero-terminated=1): the relative paths of the regular files
 *   that may be extracted
 * @flags: #SandboxArchiveFlags
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Extracts from a tar stream, as [func@Sandbox.archive_extract] does, only
 * the regular files named in @paths: for an archive that someone else made
 * (a sandbox's command, the sandbox's own `tar`) and a listing that the
 * caller checked. An entry that is neither one of @paths nor a directory
 * (another file, a symbolic or hard link, even under a listed name) is
 * refused with %SANDBOX_ERROR_PROTOCOL and nothing after it is extracted;
 * directory entries make nothing (a file's directories are made for it).
 * Files of @paths that the archive lacks are not an error.
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_archive_extract_paths (GInputStream         *archive,
                               GFile                *dest_dir,
                               const char * const   *paths,
                               SandboxArchiveFlags   flags,
                               GCancellable         *cancellable,
                               GError              **error)
{
  g_return_val_if_fail (paths != NULL, FALSE);
  return extract_common (archive, dest_dir, flags, FALSE, paths, NULL, cancellable, error);
}

/* Unpacks one image layer (a tar stream, possibly compressed) into
 * @dest_dir with the same refusals as sandbox_archive_extract() for paths
 * (absolute, "..", through a symbolic link), except that symbolic links
 * keep any target (they are only ever resolved inside the sandbox, where
 * the image is the root; nothing here follows them) and hard links within
 * the layer are made. Whiteout files (".wh.NAME", ".wh..wh..opq") are
 * stored as the empty files they are; the image store applies them when
 * it stacks the layers. Devices, fifos and sockets are skipped; owners are
 * not restored (every file belongs to the caller, which the sandbox maps to
 * its user). Every byte of the stream, up to its end, goes into @checksum. */
gboolean
_sandbox_archive_extract_layer (GInputStream   *archive,
                                GFile          *dest_dir,
                                GChecksum      *checksum,
                                GCancellable   *cancellable,
                                GError        **error)
{
  return extract_common (archive, dest_dir, SANDBOX_ARCHIVE_NONE, TRUE, NULL, checksum, cancellable, error);
}

/* --------------------------------------------------------------------------
 * Through a sandbox's file API: one temporary tar file on each side */

typedef struct
{
  GInputStream  *in;
  GOutputStream *out;
  char          *destination;  /* upload: directory in the sandbox */
  char          *source;       /* download: directory in the sandbox */
  GStrv          paths;
  GFile         *local_tmp;
  GFileIOStream *io;
  char          *remote_tmp;
  GError        *error;
} ArchiveOp;

static void
archive_op_free (ArchiveOp *op)
{
  g_clear_object (&op->in);
  g_clear_object (&op->out);
  g_clear_object (&op->io);
  g_free (op->destination);
  g_free (op->source);
  g_strfreev (op->paths);
  if (op->local_tmp != NULL)
    g_file_delete (op->local_tmp, NULL, NULL);
  g_clear_object (&op->local_tmp);
  g_free (op->remote_tmp);
  g_clear_error (&op->error);
  g_free (op);
}

static char *
new_remote_tmp (void)
{
  return g_strdup_printf ("/tmp/.sandbox-archive-%08x%08x.tar", g_random_int (), g_random_int ());
}

/* Completes @task from the result of a shell step: exit 0 or an error
 * quoting the command's stderr. */
static gboolean
shell_step_ok (SandboxExecResult  *result,
               gboolean            packing,
               GError            **error)
{
  GBytes *err;
  g_autofree char *raw = NULL;
  g_autofree char *text = NULL;

  if (sandbox_exec_result_get_success (result))
    return TRUE;
  err = sandbox_exec_result_get_stderr (result);
  /* The sandbox's tar wrote it: any bytes (escape sequences for the
   * terminal that shows the message, a cut in a UTF-8 sequence), shown
   * escaped. */
  if (err != NULL)
    raw = g_strndup (g_bytes_get_data (err, NULL), MIN (g_bytes_get_size (err), 2000));
  if (raw != NULL)
    text = _sandbox_display_text (g_strstrip (raw));
  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
               packing
               ? _("Packing the directory failed in the sandbox (exit code %d): %s. The sandbox "
                   "needs tar, and /tmp must be writable.")
               : _("Extracting the archive failed in the sandbox (exit code %d): %s. The sandbox "
                   "needs tar, and /tmp must be writable."),
               sandbox_exec_result_get_exit_code (result),
               text != NULL && *text != '\0' ? text : "-");
  return FALSE;
}

/* upload: splice -> upload -> tar -x -> done */

static void
upload_extracted (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(SandboxExecResult) res = NULL;
  GError *error = NULL;

  res = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), result, &error);
  if (res == NULL || !shell_step_ok (res, FALSE, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
upload_sent (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ArchiveOp *op = g_task_get_task_data (task);
  g_autoptr(SandboxCommand) command = NULL;
  GCancellable *cancellable;
  GError *error = NULL;
  const char *argv[] = {
    "/bin/sh", "-c",
    "mkdir -p -- \"$1\" && tar -x --no-same-owner -f \"$2\" -C \"$1\"; rc=$?; rm -f -- \"$2\"; exit $rc",
    "sh", op->destination, op->remote_tmp, NULL
  };

  if (!sandbox_instance_upload_finish (SANDBOX_INSTANCE (source), result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_file_delete (op->local_tmp, NULL, NULL);
  g_clear_object (&op->local_tmp);
  command = sandbox_command_new (argv);
  cancellable = g_task_get_cancellable (task);
  sandbox_instance_exec_async (SANDBOX_INSTANCE (source), command, cancellable,
                               upload_extracted, g_steal_pointer (&task));
}

static void
upload_spliced (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ArchiveOp *op = g_task_get_task_data (task);
  SandboxInstance *self;
  GCancellable *cancellable;
  GError *error = NULL;

  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error) < 0)
    {
      g_task_return_error (task, error);
      return;
    }
  op->remote_tmp = new_remote_tmp ();
  self = g_task_get_source_object (task);
  cancellable = g_task_get_cancellable (task);
  sandbox_instance_upload_async (self, op->local_tmp, op->remote_tmp,
                                 cancellable, upload_sent, g_steal_pointer (&task));
}

/**
 * sandbox_instance_upload_archive_async:
 * @self: a #SandboxInstance
 * @archive: a tar stream (for example from [func@Sandbox.archive_write]
 *   through a pipe); read to its end, not closed
 * @destination: an absolute directory in the sandbox, created if missing
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the tree is in place
 * @user_data: data for @callback
 *
 * Extracts a tar stream into a directory of the sandbox. This works on
 * every backend: the stream is spooled to a local temporary file (never held
 * in memory), sent with one [method@Sandbox.Instance.upload_async] and
 * unpacked with `tar` in the sandbox, which therefore needs `tar` and a
 * writable `/tmp`. Owners are not restored; modification times are.
 *
 * Since: 0.1
 */
void
sandbox_instance_upload_archive_async (SandboxInstance     *self,
                                       GInputStream        *archive,
                                       const char          *destination,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  ArchiveOp *op;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (G_IS_INPUT_STREAM (archive));
  g_return_if_fail (destination != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_instance_upload_archive_async);
  op = g_new0 (ArchiveOp, 1);
  op->in = g_object_ref (archive);
  op->destination = g_strdup (destination);
  g_task_set_task_data (task, op, (GDestroyNotify) archive_op_free);

  if (!g_path_is_absolute (destination))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("The destination “%s” must be an absolute path in the sandbox."),
                               destination);
      return;
    }
  op->local_tmp = g_file_new_tmp ("sandbox-archive-XXXXXX.tar", &op->io, &error);
  if (op->local_tmp == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  /* op keeps the stream alive (finalizing it would close it) */
  g_output_stream_splice_async (g_io_stream_get_output_stream (G_IO_STREAM (op->io)), archive,
                                G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, G_PRIORITY_DEFAULT,
                                cancellable, upload_spliced, g_steal_pointer (&task));
}

/**
 * sandbox_instance_upload_archive_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.upload_archive_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_upload_archive_finish (SandboxInstance  *self,
                                        GAsyncResult     *result,
                                        GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_upload_archive_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_instance_upload_archive:
 * @self: a #SandboxInstance
 * @archive: a tar stream; read to its end, not closed
 * @destination: an absolute directory in the sandbox, created if missing
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Extracts a tar stream into a directory of the sandbox and waits. See
 * [method@Sandbox.Instance.upload_archive_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_upload_archive (SandboxInstance  *self,
                                 GInputStream     *archive,
                                 const char       *destination,
                                 GCancellable     *cancellable,
                                 GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_upload_archive_async (self, archive, destination, cancellable,
                                         _sandbox_sync_call_done, &call);
  return sandbox_instance_upload_archive_finish (self, _sandbox_sync_call_wait (&call), error);
}

/* download: tar -c -> download -> rm -> splice -> done */

static void
download_spliced (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error) < 0)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
download_removed (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ArchiveOp *op = g_task_get_task_data (task);
  g_autoptr(SandboxExecResult) res = NULL;
  g_autoptr(GFileInputStream) in = NULL;
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  /* Best effort: a leftover file in the sandbox's /tmp is harmless. */
  res = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), result, NULL);

  if (op->error != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&op->error));
      return;
    }
  in = g_file_read (op->local_tmp, cancellable, &error);
  if (in == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_output_stream_splice_async (op->out, G_INPUT_STREAM (in), G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE,
                                G_PRIORITY_DEFAULT, cancellable, download_spliced,
                                g_steal_pointer (&task));
}

static void
download_received (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ArchiveOp *op = g_task_get_task_data (task);
  g_autoptr(SandboxCommand) rm = NULL;
  const char *argv[] = { "rm", "-f", "--", op->remote_tmp, NULL };

  sandbox_instance_download_finish (SANDBOX_INSTANCE (source), result, &op->error);
  /* Wait for it: the task's main context may not be iterated afterwards. */
  rm = sandbox_command_new (argv);
  sandbox_instance_exec_async (SANDBOX_INSTANCE (source), rm, NULL, download_removed,
                               g_steal_pointer (&task));
}

static void
download_packed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ArchiveOp *op = g_task_get_task_data (task);
  g_autoptr(SandboxExecResult) res = NULL;
  g_autoptr(GFileIOStream) io = NULL;
  GCancellable *cancellable;
  GError *error = NULL;

  res = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), result, &error);
  if (res == NULL || !shell_step_ok (res, TRUE, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  op->local_tmp = g_file_new_tmp ("sandbox-archive-XXXXXX.tar", &io, &error);
  if (op->local_tmp == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_io_stream_close (G_IO_STREAM (io), NULL, NULL);
  cancellable = g_task_get_cancellable (task);
  sandbox_instance_download_async (SANDBOX_INSTANCE (source), op->remote_tmp, op->local_tmp,
                                   cancellable, download_received,
                                   g_steal_pointer (&task));
}

/**
 * sandbox_instance_download_archive_async:
 * @self: a #SandboxInstance
 * @source: an absolute directory in the sandbox
 * @paths: (array zero-terminated=1) (nullable): paths relative to @source
 *   (directories are taken recursively), in the order they go into the
 *   archive; %NULL or empty for the whole directory
 * @archive: where the tar stream goes; it is not closed
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the whole stream is written
 * @user_data: data for @callback
 *
 * Writes a tar stream of a directory tree of the sandbox (or of the listed
 * parts of it, in that order) to @archive; [func@Sandbox.archive_extract]
 * unpacks it safely. This works on every backend: `tar` packs the tree into
 * a temporary file in the sandbox's `/tmp`, which comes back with one
 * [method@Sandbox.Instance.download_async] into a local temporary file
 * (never held in memory) and is then copied to @archive. Nothing is written
 * to @archive unless the whole tree arrived.
 *
 * Since: 0.1
 */
void
sandbox_instance_download_archive_async (SandboxInstance     *self,
                                         const char          *source,
                                         const char * const  *paths,
                                         GOutputStream       *archive,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GStrvBuilder) argv = g_strv_builder_new ();
  g_auto(GStrv) args = NULL;
  g_autoptr(SandboxCommand) command = NULL;
  ArchiveOp *op;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (source != NULL);
  g_return_if_fail (G_IS_OUTPUT_STREAM (archive));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_instance_download_archive_async);
  op = g_new0 (ArchiveOp, 1);
  op->out = g_object_ref (archive);
  op->source = g_strdup (source);
  op->paths = g_strdupv ((char **) paths);
  op->remote_tmp = new_remote_tmp ();
  g_task_set_task_data (task, op, (GDestroyNotify) archive_op_free);

  if (!g_path_is_absolute (source))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("The source “%s” must be an absolute path in the sandbox."), source);
      return;
    }

  g_strv_builder_add_many (argv, "/bin/sh", "-c",
                           "src=$1; out=$2; shift 2; cd -- \"$src\" && exec tar -c -f \"$out\" \"$@\"",
                           "sh", source, op->remote_tmp, NULL);
  if (paths == NULL || paths[0] == NULL)
    g_strv_builder_add (argv, ".");
  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      g_autofree char *rel = NULL;

      if (!path_is_safe (paths[i]))
        {
          g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                                   _("Archive path “%s” must be relative and must not contain “..”."),
                                   paths[i]);
          return;
        }
      /* "./" so that no name is taken for an option */
      rel = g_strconcat ("./", paths[i], NULL);
      g_strv_builder_add (argv, rel);
    }
  args = g_strv_builder_end (argv);
  command = sandbox_command_new ((const char * const *) args);
  sandbox_instance_exec_async (self, command, cancellable, download_packed, g_steal_pointer (&task));
}

/**
 * sandbox_instance_download_archive_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.download_archive_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_download_archive_finish (SandboxInstance  *self,
                                          GAsyncResult     *result,
                                          GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_download_archive_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_instance_download_archive:
 * @self: a #SandboxInstance
 * @source: an absolute directory in the sandbox
 * @paths: (array zero-terminated=1) (nullable): paths relative to @source, in
 *   archive order; %NULL or empty for the whole directory
 * @archive: where the tar stream goes; it is not closed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Writes a tar stream of a directory tree of the sandbox and waits. See
 * [method@Sandbox.Instance.download_archive_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_download_archive (SandboxInstance     *self,
                                   const char          *source,
                                   const char * const  *paths,
                                   GOutputStream       *archive,
                                   GCancellable        *cancellable,
                                   GError             **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_download_archive_async (self, source, paths, archive, cancellable,
                                           _sandbox_sync_call_done, &call);
  return sandbox_instance_download_archive_finish (self, _sandbox_sync_call_wait (&call), error);
}
