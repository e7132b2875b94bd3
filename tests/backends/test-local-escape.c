/* libsandbox - attacks on the local backend by class (issue 13): every
 * descriptor of every visible process followed upward, ptrace and pidfd of
 * every visible process, keyrings, planted links at every depth of uploads
 * and downloads, a swap race against both, every route from one sandbox to
 * another, the errno of every denied system call, and the owner of a
 * sandbox killed with SIGKILL.
 *
 * Each test plants secrets on the host where no sandbox may see them (in
 * the sandboxes' root directory, in an instance's own directory, under
 * /root and the caller's home), runs the attack inside a sandbox, and
 * asserts that the secret never came out and that nothing was created on
 * the host. Each has a control: the same attack code, pointed where it must
 * succeed, does, so that a pass can only come from the isolation.
 *
 * The sandboxes' root (SANDBOX_LOCAL_ROOT) is made under /var/tmp, which
 * every sandbox sees read-only: so the directory above it is a real,
 * visible host directory (the spec-mount attacks need one).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE   /* unshare, setresuid */

#include "config.h"

#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <glib/gstdio.h>

#include <libsandbox/sandbox.h>

#include "../test-util.h"

static char *above_dir;    /* /var/tmp/libsandbox-escape-XXXXXX */
static char *root_dir;     /* above_dir/root: SANDBOX_LOCAL_ROOT */
static char *helper_dir;   /* where escape-helper was built */
static char *helper;       /* escape-helper */
static char *real_home;    /* $HOME before g_test_init isolated it */
static char *self_path;    /* this program, for the owner child */

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static SandboxInstance *
try_create (SandboxSpec *spec,
            GError     **error)
{
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", error);
  g_autoptr(SandboxSpec) empty = NULL;

  if (backend == NULL)
    return NULL;
  if (spec == NULL)
    spec = empty = sandbox_spec_new ();
  return sandbox_backend_create (backend, spec, NULL, error);
}

static SandboxInstance *
create (SandboxSpec *spec)
{
  g_autoptr(GError) error = NULL;
  SandboxInstance *instance = try_create (spec, &error);

  g_assert_no_error (error);
  return instance;
}

/* A sandbox with the helper's directory mounted (read-only) and, for
 * RUN_AS_ROOT, running as root. */
static SandboxInstance *
create_with_helper (gboolean run_as_root)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();

  sandbox_spec_add_mount (spec, helper_dir, NULL, TRUE);
  sandbox_spec_set_run_as_root (spec, run_as_root);
  return create (spec);
}

static void
destroy (SandboxInstance *instance)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_object_unref (instance);
}

static char *
instance_dir (SandboxInstance *instance)
{
  return g_build_filename (root_dir, sandbox_instance_get_id (instance), NULL);
}

typedef struct
{
  gboolean           done;
  SandboxExecResult *result;   /* NULL when the exec failed */
} Exec;

static void
exec_done (GObject      *source,
           GAsyncResult *res,
           gpointer      user_data)
{
  Exec *exec = user_data;
  g_autoptr(GError) error = NULL;

  exec->result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &error);
  g_assert_no_error (error);
  exec->done = TRUE;
}

/* Runs a shell script (stderr to /dev/null unless asked), iterating the
 * default main context meanwhile; returns its stdout. */
static char *
sh (SandboxInstance *instance,
    const char      *script,
    int             *status)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
  g_autoptr(SandboxExecResult) result = NULL;
  Exec exec = { FALSE, NULL };
  GBytes *out, *err;

  sandbox_command_set_timeout_ms (cmd, 60000);   /* never hangs */
  sandbox_instance_exec_async (instance, cmd, NULL, exec_done, &exec);
  while (!exec.done)
    g_main_context_iteration (NULL, TRUE);
  result = exec.result;
  if (result == NULL)
    {
      if (status != NULL)
        *status = -1;
      return g_strdup ("");
    }
  if (status != NULL)
    *status = sandbox_exec_result_get_exit_code (result);
  err = sandbox_exec_result_get_stderr (result);
  if (g_bytes_get_size (err) > 0)
    g_test_message ("stderr: %.*s", (int) MIN (g_bytes_get_size (err), 2000),
                    (const char *) g_bytes_get_data (err, NULL));
  out = sandbox_exec_result_get_stdout (result);
  if (g_bytes_get_size (out) == 0)
    return g_strdup ("");
  return g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
}

/* Runs a Python program with ARGS (NULL-terminated) in the sandbox. */
static char *
py (SandboxInstance *instance,
    const char      *program,
    ...)
{
  g_autoptr(GString) script = g_string_new (NULL);
  g_autofree char *quoted = g_shell_quote (program);
  va_list ap;
  const char *arg;

  g_string_append_printf (script, "P=%s; exec /usr/bin/python3 -c \"$P\"", quoted);
  va_start (ap, program);
  while ((arg = va_arg (ap, const char *)) != NULL)
    {
      g_autofree char *q = g_shell_quote (arg);
      g_string_append_printf (script, " %s", q);
    }
  va_end (ap);
  return sh (instance, script->str, NULL);
}

static gboolean
have_python (void)
{
  /* The sandbox sees the host's /usr, and its PATH has nothing else. */
  return g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE);
}

static char *
random_token (const char *what)
{
  return g_strdup_printf ("%s-%08x%08x%08x", what, g_random_int (), g_random_int (), g_random_int ());
}

static gboolean
has_line_starting (const char *out,
                   const char *prefix)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return TRUE;
  return FALSE;
}

/* Every entry under DIR (recursively, never following links), as a list
 * of paths relative to DIR; empty when DIR is empty or absent. */
static void
list_tree_into (const char *dir,
                const char *rel,
                GString    *out)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *r = rel ? g_build_filename (rel, name, NULL) : g_strdup (name);

      g_string_append_printf (out, "%s ", r);
      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        list_tree_into (path, r, out);
    }
}

static char *
list_tree (const char *dir)
{
  GString *out = g_string_new (NULL);

  list_tree_into (dir, NULL, out);
  return g_string_free (out, FALSE);
}

/* Whether any regular file under PATH (PATH itself included; links never
 * followed) contains TOKEN. */
static gboolean
tree_contains (const char *path,
               const char *token)
{
  GStatBuf st;

  if (g_lstat (path, &st) != 0)
    return FALSE;
  if (S_ISREG (st.st_mode))
    {
      g_autofree char *contents = NULL;
      gsize len = 0;

      return g_file_get_contents (path, &contents, &len, NULL) &&
             g_strstr_len (contents, (gssize) len, token) != NULL;
    }
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
      const char *name;

      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          if (tree_contains (child, token))
            return TRUE;
        }
    }
  return FALSE;
}

static void
rm_rf (const char *path)
{
  g_autofree char *quoted = g_shell_quote (path);
  g_autofree char *cmd = g_strdup_printf ("rm -rf %s", quoted);

  g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
}

/* A fresh directory under each place the sandbox must not see: the
 * sandboxes' root, /root, /home and the caller's own home (they are all
 * masked). Only those this process can create. */
static GPtrArray *
hidden_dirs (const char *what)
{
  GPtrArray *dirs = g_ptr_array_new_with_free_func (g_free);
  const char *parents[] = { root_dir, "/root", "/home", real_home, NULL };

  for (guint i = 0; i < G_N_ELEMENTS (parents) && parents[i] != NULL; i++)
    {
      g_autofree char *dir = g_strdup_printf ("%s/libsandbox-escape-%s-%08x", parents[i], what, g_random_int ());
      gboolean dup = FALSE;

      for (guint j = 0; j < i; j++)
        dup = dup || (parents[j] != NULL && g_strcmp0 (parents[j], parents[i]) == 0);
      if (dup || g_mkdir (dir, 0755) != 0)
        continue;
      g_ptr_array_add (dirs, g_steal_pointer (&dir));
    }
  g_assert_cmpuint (dirs->len, >, 0);   /* the sandboxes' root, at least */
  return dirs;
}

/* Removes what DIR holds, not DIR. */
static void
empty_dir (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      rm_rf (path);
    }
}

static void
remove_dirs (GPtrArray *dirs)
{
  for (guint i = 0; i < dirs->len; i++)
    rm_rf (g_ptr_array_index (dirs, i));
}

static char *
join_lines (GPtrArray *paths)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < paths->len; i++)
    g_string_append_printf (out, "%s\n", (char *) g_ptr_array_index (paths, i));
  return g_string_free (out, FALSE);
}

static char *
dev_ino (const char *path)
{
  GStatBuf st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return g_strdup_printf ("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT,
                          (guint64) st.st_dev, (guint64) st.st_ino);
}

/* ------------------------------------------------------------------ */
/* 1. Every descriptor, cwd and root of every visible process, upward  */

/* argv: TOKEN ROOT-DEV:INO SECRET-PATHS WRITE-DIRS TAG (paths one a line).
 * For every handle of every process (fd, cwd, root, of every thread),
 * reads it if it is a file, else walks `..` upward 40 times; at each
 * level it tries every tail of every secret path and of every write
 * directory (so that it finds them from any ancestor), and compares the
 * directory with the host's root. */
static const char walk_py[] =
  "import os, sys, stat\n"
  "token = sys.argv[1].encode()\n"
  "root_id = tuple(int(x) for x in sys.argv[2].split(':'))\n"
  "secrets = [p for p in sys.argv[3].split('\\n') if p]\n"
  "wdirs = [p for p in sys.argv[4].split('\\n') if p]\n"
  "tag = sys.argv[5]\n"
  "def tails(p):\n"
  "    parts = p.strip('/').split('/')\n"
  "    return ['/'.join(parts[i:]) for i in range(len(parts))]\n"
  "def ls(d):\n"
  "    try:\n"
  "        return os.listdir(d)\n"
  "    except OSError:\n"
  "        return []\n"
  "sec = [t for p in secrets for t in tails(p)]\n"
  "wr = [t for p in wdirs for t in tails(p)]\n"
  "cands = []\n"
  "pids = sorted(int(n) for n in ls('/proc') if n.isdigit())\n"
  "print('PIDS', ' '.join(map(str, pids)))\n"
  "for pid in pids:\n"
  "    base = '/proc/%d' % pid\n"
  "    for d in [base] + [base + '/task/' + t for t in ls(base + '/task')]:\n"
  "        cands += [d + '/cwd', d + '/root']\n"
  "        cands += [d + '/fd/' + fd for fd in ls(d + '/fd')]\n"
  "seen = set()\n"
  "levels = 0\n"
  "for c in cands:\n"
  "    try:\n"
  "        st = os.stat(c)\n"
  "    except OSError:\n"
  "        continue\n"
  "    if stat.S_ISREG(st.st_mode):\n"
  "        try:\n"
  "            with open(c, 'rb') as f:\n"
  "                if token in f.read(1 << 20):\n"
  "                    print('FOUND', c)\n"
  "        except OSError:\n"
  "            pass\n"
  "        continue\n"
  "    if not stat.S_ISDIR(st.st_mode):\n"
  "        continue\n"
  "    path = c\n"
  "    for level in range(41):\n"
  "        try:\n"
  "            st = os.stat(path)\n"
  "        except OSError:\n"
  "            break\n"
  "        key = (st.st_dev, st.st_ino)\n"
  "        if key == root_id:\n"
  "            print('ROOT', path)\n"
  "        if key in seen:\n"
  "            break\n"
  "        seen.add(key)\n"
  "        levels += 1\n"
  "        for t in sec:\n"
  "            try:\n"
  "                with open(path + '/' + t, 'rb') as f:\n"
  "                    if token in f.read(1 << 20):\n"
  "                        print('FOUND', path + '/' + t)\n"
  "            except OSError:\n"
  "                pass\n"
  "        for t in wr:\n"
  "            try:\n"
  "                os.close(os.open(path + '/' + t + '/escaped-' + tag, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))\n"
  "                print('CREATED', path + '/' + t)\n"
  "            except OSError:\n"
  "                pass\n"
  "        path += '/..'\n"
  "print('WALKED', len(cands), levels)\n";

static void
check_walk_output (const char *out)
{
  g_assert_true (has_line_starting (out, "WALKED "));
  g_assert_false (has_line_starting (out, "FOUND "));
  g_assert_false (has_line_starting (out, "ROOT "));
  g_assert_false (has_line_starting (out, "CREATED "));
}

static void
test_descriptors (void)
{
  g_autofree char *token = random_token ("secret");
  g_autofree char *root_id = dev_ino ("/");
  g_autoptr(GPtrArray) secret_dirs = NULL;
  g_autoptr(GPtrArray) write_dirs = NULL;
  g_autoptr(GPtrArray) secrets = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *visible_w = g_strdup_printf ("%s/w-%08x", above_dir, g_random_int ());
  g_autofree char *ctl = g_strdup_printf ("%s/ctl-%08x", above_dir, g_random_int ());

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  secret_dirs = hidden_dirs ("s");
  write_dirs = hidden_dirs ("w");
  /* Visible read-only in the sandbox: a write there is a write on the host. */
  g_assert_cmpint (g_mkdir (visible_w, 0777), ==, 0);
  g_ptr_array_add (write_dirs, g_strdup (visible_w));
  for (guint i = 0; i < secret_dirs->len; i++)
    {
      char *file = g_build_filename (g_ptr_array_index (secret_dirs, i), "secret", NULL);

      g_assert_true (g_file_set_contents (file, token, -1, NULL));
      g_ptr_array_add (secrets, file);
    }
  {
    /* One right in the sandboxes' root too. */
    char *file = g_strdup_printf ("%s/secret-%08x", root_dir, g_random_int ());

    g_assert_true (g_file_set_contents (file, token, -1, NULL));
    g_ptr_array_add (secrets, file);
  }

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
      SandboxInstance *instance = create_with_helper (as_root);
      g_autofree char *dir = instance_dir (instance);
      g_autofree char *own = g_build_filename (dir, "secret-own", NULL);
      g_autofree char *secret_list = NULL, *write_list = NULL, *out = NULL;

      /* And in the instance's own directory. */
      g_assert_true (g_file_set_contents (own, token, -1, NULL));
      for (guint i = 0; i < secrets->len; i++)
        g_ptr_array_add (all, g_strdup (g_ptr_array_index (secrets, i)));
      g_ptr_array_add (all, g_strdup (own));
      secret_list = join_lines (all);
      write_list = join_lines (write_dirs);

      /* Other processes of the sandbox, holding descriptors of their own. */
      g_free (sh (instance, "(setsid sleep 3191 </dev/null >/dev/null 2>&1 &); echo", NULL));
      out = py (instance, walk_py, token, root_id, secret_list, write_list, "a", NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      check_walk_output (out);
      for (guint i = 0; i < write_dirs->len; i++)
        {
          g_autofree char *left = list_tree (g_ptr_array_index (write_dirs, i));

          g_assert_cmpstr (left, ==, "");
        }
      destroy (instance);
    }

  /* Control: a directory mounted into the sandbox, a process in it, the
   * secret there, and its (dev, ino) as the "root": the same walk finds
   * the secret, the "root" and writes. */
  {
    g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
    g_autofree char *ctl_token = random_token ("control");
    g_autofree char *ctl_secret = g_build_filename (ctl, "secret", NULL);
    g_autofree char *ctl_w = g_build_filename (ctl, "w", NULL);
    g_autofree char *ctl_deep = g_build_filename (ctl, "a", "b", NULL);
    g_autofree char *ctl_id = NULL;
    g_autofree char *script = NULL, *q = NULL, *qa = NULL, *out = NULL, *left = NULL;
    SandboxInstance *instance;

    g_assert_cmpint (g_mkdir_with_parents (ctl_deep, 0777), ==, 0);
    g_assert_cmpint (g_mkdir (ctl_w, 0777), ==, 0);
    g_assert_true (g_file_set_contents (ctl_secret, ctl_token, -1, NULL));
    ctl_id = dev_ino (ctl);
    sandbox_spec_add_mount (spec, ctl, "/srv", FALSE);
    instance = create (spec);
    q = g_shell_quote (walk_py);
    qa = g_strdup_printf ("%s %s %s %s c", ctl_token, ctl_id, ctl_secret, ctl_w);
    script = g_strdup_printf ("(cd /srv/a/b && exec sleep 30) & P=%s; /usr/bin/python3 -c \"$P\" %s; kill $!",
                              q, qa);
    out = sh (instance, script, NULL);
    g_test_message ("control: %s", out);
    g_assert_true (has_line_starting (out, "FOUND "));
    g_assert_true (has_line_starting (out, "ROOT "));
    g_assert_true (has_line_starting (out, "CREATED "));
    left = list_tree (ctl_w);
    g_assert_cmpstr (left, !=, "");
    destroy (instance);
  }

  remove_dirs (secret_dirs);
  remove_dirs (write_dirs);
  rm_rf (ctl);
  for (guint i = 0; i < secrets->len; i++)
    g_unlink (g_ptr_array_index (secrets, i));
}

/* ------------------------------------------------------------------ */
/* 2. ptrace, pidfd_getfd, process_vm_readv of every visible process   */

/* Prints, for every visible process but itself and its children, then
 * (CONTROL) for two children of its own: "PID ATTEMPT RESULT". Each
 * attempt runs in a child of its own, so that a tracer that got in exits
 * (and detaches) before the next attempt. */
static const char trace_py[] =
  "import ctypes, errno, os, sys, time\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "libc.syscall.restype = ctypes.c_long\n"
  "def sc(*a):\n"
  "    ctypes.set_errno(0)\n"
  "    return libc.syscall(*[ctypes.c_long(x) if isinstance(x, int) else x for x in a])\n"
  "def res(r):\n"
  "    if r >= 0:\n"
  "        return 'OK'\n"
  "    e = ctypes.get_errno()\n"
  "    return errno.errorcode.get(e, str(e))\n"
  "class iovec(ctypes.Structure):\n"
  "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
  "buf = ctypes.create_string_buffer(b'probe', 16)\n"
  "def seize(pid):\n"
  "    return res(sc(101, 0x4206, pid, 0, 0))\n"
  "def attach(pid):\n"
  "    r = sc(101, 16, pid, 0, 0)\n"
  "    if r == 0:\n"   /* got in: let it go on, else the server stays stopped */
  "        os.waitpid(pid, 0x40000000)\n"
  "        sc(101, 17, pid, 0, 0)\n"
  "    return res(r)\n"
  "def getfd(pid):\n"
  "    pfd = sc(434, pid, 0)\n"
  "    if pfd < 0:\n"
  "        return 'pidfd_open-' + res(pfd)\n"
  "    return ','.join(sorted(set(res(sc(438, pfd, fd, 0)) for fd in range(64))))\n"
  "def vmread(pid):\n"
  "    local = iovec(ctypes.addressof(buf), 1)\n"
  "    remote = iovec(ctypes.addressof(buf), 1)\n"
  "    r = sc(310, pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)\n"
  "    return 'GRANTED' if r >= 0 or ctypes.get_errno() == errno.EFAULT else res(r)\n"
  "def environ(pid):\n"
  "    try:\n"
  "        open('/proc/%d/environ' % pid, 'rb').read()\n"
  "        return 'OK'\n"
  "    except OSError as ex:\n"
  "        return errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "def apart(f, pid):\n"
  "    r, w = os.pipe()\n"
  "    child = os.fork()\n"
  "    if child == 0:\n"
  "        try:\n"
  "            out = f(pid)\n"
  "        except Exception as ex:\n"
  "            out = 'EXC-' + type(ex).__name__\n"
  "        os.write(w, out.encode())\n"
  "        os._exit(0)\n"
  "    os.close(w)\n"
  "    out = os.read(r, 4096).decode()\n"
  "    os.close(r)\n"
  "    os.waitpid(child, 0)\n"
  "    return out\n"
  "attempts = [('SEIZE', seize), ('ATTACH', attach), ('GETFD', getfd), ('VMREAD', vmread), ('ENVIRON', environ)]\n"
  "me = os.getpid()\n"
  "for pid in sorted(int(n) for n in os.listdir('/proc') if n.isdigit()):\n"
  "    if pid == me:\n"
  "        continue\n"
  "    for name, f in attempts:\n"
  "        print(pid, name, apart(f, pid))\n"
  "def child():\n"
  "    pid = os.fork()\n"
  "    if pid == 0:\n"
  "        time.sleep(60)\n"
  "        os._exit(0)\n"
  "    return pid\n"
  "for name, f in attempts:\n"
  "    pid = child()\n"
  "    r = apart(f, pid)\n"
  "    print('CONTROL', name, r)\n"
  "    os.kill(pid, 9)\n"
  "    os.waitpid(pid, 0)\n";

static void
test_ptrace_pidfd (void)
{
  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = create_with_helper (as_root);
      g_autofree char *out = NULL;

      /* A process of an earlier exec, in a session of its own. */
      g_free (sh (instance, "(setsid sleep 3192 </dev/null >/dev/null 2>&1 &); echo", NULL));
      out = py (instance, trace_py, NULL);
      g_test_message ("run-as-root=%d:\n%s", as_root, out);
      /* pid 1, the server, is refused everything (and is not dumpable). */
      g_assert_true (g_str_has_prefix (out, "1 SEIZE EPERM\n1 ATTACH EPERM\n1 GETFD EPERM\n1 VMREAD EPERM\n"));
      g_assert_false (has_line_starting (out, "1 ENVIRON OK"));
      /* Control: the same code reaches a child of the attacker. */
      g_assert_true (has_line_starting (out, "CONTROL SEIZE OK"));
      g_assert_true (has_line_starting (out, "CONTROL ATTACH OK"));
      g_assert_true (has_line_starting (out, "CONTROL GETFD "));
      {
        const char *getfd = strstr (out, "CONTROL GETFD ");
        g_autofree char *line = g_strndup (getfd, strcspn (getfd, "\n"));
        g_assert_nonnull (strstr (line, "OK"));
      }
      g_assert_true (has_line_starting (out, "CONTROL VMREAD GRANTED"));
      g_assert_true (has_line_starting (out, "CONTROL ENVIRON OK"));
      destroy (instance);
    }
}

/* ------------------------------------------------------------------ */
/* 3. Keyrings                                                          */

/* argv: DESCRIPTION PAYLOAD SERIAL. */
static const char keys_py[] =
  "import ctypes, errno, sys\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "libc.syscall.restype = ctypes.c_long\n"
  "def sc(*a):\n"
  "    ctypes.set_errno(0)\n"
  "    return libc.syscall(*[ctypes.c_long(x) if isinstance(x, int) else x for x in a])\n"
  "def res(r):\n"
  "    if r >= 0:\n"
  "        return 'OK'\n"
  "    e = ctypes.get_errno()\n"
  "    return errno.errorcode.get(e, str(e))\n"
  "desc, payload, serial = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])\n"
  "try:\n"
  "    print('PROCKEYS', 'SEEN' if desc in open('/proc/keys', 'rb').read() else 'NO')\n"
  "except OSError as ex:\n"
  "    print('PROCKEYS', errno.errorcode.get(ex.errno))\n"
  "r = sc(250, 10, -3, b'user', desc, 0)\n"          /* KEYCTL_SEARCH session */
  "print('SEARCH', res(r))\n"
  "buf = ctypes.create_string_buffer(4096)\n"
  "for name, key in (('READ-FOUND', r), ('READ-SERIAL', serial)):\n"
  "    if key < 0:\n"
  "        continue\n"
  "    n = sc(250, 11, key, buf, 4096)\n"             /* KEYCTL_READ */
  "    print(name, 'SECRET' if n > 0 and payload in buf.raw[:n] else res(n))\n"
  "n = sc(250, 6, serial, buf, 4096)\n"               /* KEYCTL_DESCRIBE */
  "print('DESCRIBE', 'SEEN' if n > 0 and desc in buf.raw[:n] else res(n))\n"
  "print('GETID', res(sc(250, 0, -3, 0)))\n"        /* KEYCTL_GET_KEYRING_ID */
  "print('REQUEST', res(sc(249, b'user', desc, None, 0)))\n"
  "print('ADD', res(sc(248, b'user', b'libsandbox-escape-probe', b'x', 1, -2)))\n";

static void
test_keyrings (void)
{
  g_autofree char *desc = random_token ("libsandbox-escape-key");
  g_autofree char *payload = random_token ("payload");
  g_autofree char *serial_str = NULL;
  long serial;
  SandboxInstance *instance;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  serial = syscall (SYS_add_key, "user", desc, payload, strlen (payload), -3 /* session */);
  if (serial < 0)
    {
      g_autofree char *why = g_strdup_printf ("add_key to the session keyring failed here: %s",
                                              g_strerror (errno));
      g_test_skip (why);
      return;
    }
  serial_str = g_strdup_printf ("%ld", serial);

  /* Control, on the host: the same code finds and reads the key. */
  {
    const char *argv[] = { "/usr/bin/python3", "-c", keys_py, desc, payload, serial_str, NULL };
    g_autofree char *out = NULL;

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &out, NULL, NULL, NULL));
    g_test_message ("host: %s", out);
    g_assert_true (has_line_starting (out, "PROCKEYS SEEN"));
    g_assert_true (has_line_starting (out, "SEARCH OK"));
    g_assert_true (has_line_starting (out, "READ-SERIAL SECRET"));
  }

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autofree char *out = NULL;

      instance = create_with_helper (as_root);
      out = py (instance, keys_py, desc, payload, serial_str, NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      /* Neither seen nor reached; the calls themselves are denied. */
      g_assert_false (has_line_starting (out, "PROCKEYS SEEN"));
      g_assert_false (has_line_starting (out, "DESCRIBE SEEN"));
      g_assert_null (strstr (out, "SECRET"));
      g_assert_true (has_line_starting (out, "SEARCH EPERM"));
      g_assert_true (has_line_starting (out, "GETID EPERM"));
      g_assert_true (has_line_starting (out, "REQUEST EPERM"));
      g_assert_true (has_line_starting (out, "ADD EPERM"));
      destroy (instance);
    }
  syscall (SYS_keyctl, 3 /* KEYCTL_REVOKE */, serial);
  syscall (SYS_keyctl, 9 /* KEYCTL_UNLINK */, serial, -3);
}

/* ------------------------------------------------------------------ */
/* 4. Planted links at every depth, upload and download                 */

static gboolean
upload (SandboxInstance *instance,
        const char      *source,
        const char      *destination,
        GError         **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (source);

  return sandbox_instance_upload (instance, file, destination, NULL, error);
}

static gboolean
download (SandboxInstance *instance,
          const char      *source,
          const char      *destination,
          GError         **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (destination);

  return sandbox_instance_download (instance, source, file, NULL, error);
}

/* A tree to upload: a file, and files in nested directories. */
static char *
make_upload_tree (const char *parent)
{
  char *tree = g_build_filename (parent, "tree", NULL);
  g_autofree char *deep = g_build_filename (tree, "sub", "deeper", NULL);
  g_autofree char *a = g_build_filename (tree, "a", NULL);
  g_autofree char *b = g_build_filename (tree, "sub", "b", NULL);
  g_autofree char *c = g_build_filename (deep, "c", NULL);

  g_assert_cmpint (g_mkdir_with_parents (deep, 0755), ==, 0);
  g_assert_true (g_file_set_contents (a, "a", -1, NULL));
  g_assert_true (g_file_set_contents (b, "b", -1, NULL));
  g_assert_true (g_file_set_contents (c, "c", -1, NULL));
  return tree;
}

static void
test_planted_links (void)
{
  static const char * const link_dirs[] = { "/workspace", "/workspace/d1", "/workspace/d1/d2", NULL };
  static const char * const tails[] = { "", "/sub", "/x/y", NULL };
  g_autoptr(GPtrArray) targets = hidden_dirs ("up");
  g_autoptr(GPtrArray) secret_dirs = hidden_dirs ("down");
  g_autofree char *token = random_token ("secret");
  g_autofree char *ctl_token = random_token ("control");
  g_autofree char *scratch = g_dir_make_tmp ("escape-links-XXXXXX", NULL);
  g_autofree char *tree = make_upload_tree (scratch);
  g_autofree char *single = g_build_filename (scratch, "single", NULL);
  g_autofree char *visible = g_strdup_printf ("%s/visible-%08x", above_dir, g_random_int ());
  SandboxInstance *instance = create (NULL);
  guint uploads = 0, upload_errors = 0, downloads = 0, download_errors = 0;
  g_autoptr(GString) escapes = g_string_new (NULL);

  g_assert_true (g_file_set_contents (single, "single", -1, NULL));
  /* A host directory the sandbox sees read-only, besides the hidden ones. */
  g_assert_cmpint (g_mkdir (visible, 0777), ==, 0);
  g_ptr_array_add (targets, g_strdup (visible));

  /* Upload through links to each host directory, at each depth. */
  for (guint t = 0; t < targets->len; t++)
    {
      const char *target = g_ptr_array_index (targets, t);
      g_autofree char *qt = g_shell_quote (target);
      g_autofree char *plant = g_strdup_printf ("rm -rf /workspace/up /workspace/d1; mkdir -p /workspace/d1/d2; "
                                                "for d in /workspace /workspace/d1 /workspace/d1/d2; do "
                                                "ln -s %s $d/up || echo FAILED; done", qt);
      g_autofree char *planted = sh (instance, plant, NULL);

      g_assert_cmpstr (planted, ==, "");
      for (guint l = 0; link_dirs[l] != NULL; l++)
        for (guint k = 0; tails[k] != NULL; k++)
          for (int what = 0; what < 2; what++)
            {
              g_autofree char *dest = g_strdup_printf ("%s/up%s%s", link_dirs[l], tails[k],
                                                       what ? "/file" : "");
              g_autoptr(GError) error = NULL;
              g_autofree char *left = NULL;

              uploads++;
              if (!upload (instance, what ? single : tree, dest, &error))
                upload_errors++;
              left = list_tree (target);
              if (g_strcmp0 (left, "") != 0)
                {
                  g_string_append_printf (escapes, "upload to %s (-> %s) wrote on the host: %s\n",
                                          dest, target, left);
                  empty_dir (target);
                }
            }
    }

  /* Download through links to host-only secrets (a file, its directory),
   * each planted at each depth. */
  for (guint s = 0; s < secret_dirs->len; s++)
    {
      const char *dir = g_ptr_array_index (secret_dirs, s);
      g_autofree char *file = g_build_filename (dir, "secret", NULL);
      g_autofree char *subdir = g_build_filename (dir, "sub", NULL);
      g_autofree char *subfile = g_build_filename (subdir, "secret2", NULL);
      g_autofree char *qd = g_shell_quote (dir);
      g_autofree char *qf = g_shell_quote (file);
      g_autofree char *plant = g_strdup_printf ("rm -rf /workspace/up /workspace/ds /workspace/fs /workspace/d1; "
                                                "mkdir -p /workspace/d1/d2; "
                                                "for d in /workspace /workspace/d1 /workspace/d1/d2; do "
                                                "ln -s %s $d/ds; ln -s %s $d/fs; done", qd, qf);
      static const char * const sources[] = {
        "/workspace/ds", "/workspace/ds/secret", "/workspace/ds/sub", "/workspace/ds/sub/secret2",
        "/workspace/fs", "/workspace/d1/ds", "/workspace/d1/ds/secret", "/workspace/d1/fs",
        "/workspace/d1/d2/ds", "/workspace/d1/d2/ds/secret", "/workspace/d1/d2/ds/sub/secret2",
        "/workspace/d1/d2/fs", "/workspace/d1", "/workspace", NULL
      };

      g_assert_cmpint (g_mkdir (subdir, 0755), ==, 0);
      g_assert_true (g_file_set_contents (file, token, -1, NULL));
      g_assert_true (g_file_set_contents (subfile, token, -1, NULL));
      g_free (sh (instance, plant, NULL));
      for (guint i = 0; sources[i] != NULL; i++)
        {
          g_autofree char *dest = g_strdup_printf ("%s/dl-%u-%u", scratch, s, i);
          g_autoptr(GError) error = NULL;

          downloads++;
          if (!download (instance, sources[i], dest, &error))
            download_errors++;
          if (tree_contains (dest, token))
            g_string_append_printf (escapes, "download of %s (-> %s) got the secret\n", sources[i], dir);
        }
    }
  g_test_message ("%u uploads (%u refused), %u downloads (%u refused); escapes:\n%s",
                  uploads, upload_errors, downloads, download_errors, escapes->str);
  g_assert_cmpstr (escapes->str, ==, "");

  /* Controls: the same calls copy real files both ways, and the check
   * sees a token that did come out. */
  {
    g_autofree char *out = NULL, *dest = g_build_filename (scratch, "ctl", NULL);
    g_autofree char *script = g_strdup_printf ("rm -rf /workspace/real; mkdir /workspace/real; echo %s > /workspace/real/f",
                                               ctl_token);
    g_autoptr(GError) error = NULL;

    g_free (sh (instance, script, NULL));
    g_assert_true (download (instance, "/workspace/real", dest, &error));
    g_assert_no_error (error);
    g_assert_true (tree_contains (dest, ctl_token));
    g_assert_true (upload (instance, tree, "/workspace/real/up", &error));
    g_assert_no_error (error);
    out = sh (instance, "cat /workspace/real/up/sub/deeper/c", NULL);
    g_assert_cmpstr (out, ==, "c");
  }

  destroy (instance);
  remove_dirs (targets);
  remove_dirs (secret_dirs);
  rm_rf (scratch);
}

/* ------------------------------------------------------------------ */
/* 5. A bounded swap race against downloads and uploads                 */

#define RACE_TRIES 2000
#define RACE_SECONDS 45

static void
test_swap_race (void)
{
  g_autofree char *token = random_token ("secret");
  g_autofree char *hidden = g_strdup_printf ("%s/race-%08x", root_dir, g_random_int ());
  g_autofree char *hidden_sub = g_build_filename (hidden, "sub", NULL);
  g_autofree char *hidden_f = g_build_filename (hidden, "f", NULL);
  g_autofree char *scratch = g_dir_make_tmp ("escape-race-XXXXXX", NULL);
  g_autofree char *single = g_build_filename (scratch, "single", NULL);
  g_autofree char *tree = make_upload_tree (scratch);
  g_autofree char *qh = g_shell_quote (hidden);
  g_autofree char *setup = NULL, *race = NULL, *hidden_before = NULL, *hidden_after = NULL;
  g_autoptr(SandboxCommand) cmd = NULL;
  Exec exec = { FALSE, NULL };
  SandboxInstance *instance = create_with_helper (FALSE);
  gint64 start, end;
  guint downloads = 0, uploads = 0, leaks = 0, dl_ok = 0, ul_ok = 0;

  g_assert_cmpint (g_mkdir_with_parents (hidden_sub, 0777), ==, 0);
  g_assert_true (g_file_set_contents (hidden_f, token, -1, NULL));
  hidden_before = list_tree (hidden);
  g_assert_true (g_file_set_contents (single, "single", -1, NULL));

  setup = g_strdup_printf ("mkdir -p /workspace/race/real/sub && echo benign > /workspace/race/real/f && "
                           "ln -s %s /workspace/race/link && echo ready", qh);
  g_assert_cmpstr (sh (instance, setup, NULL), ==, "ready\n");   /* leaks a little */
  race = g_strdup_printf ("exec %s/escape-helper swap /workspace/race real link %d", helper_dir, RACE_SECONDS + 15);
  cmd = sandbox_command_new_shell (race);
  sandbox_command_set_timeout_ms (cmd, (RACE_SECONDS + 30) * 1000);
  sandbox_instance_exec_async (instance, cmd, NULL, exec_done, &exec);
  g_usleep (200 * G_TIME_SPAN_MILLISECOND);

  start = g_get_monotonic_time ();
  end = start + RACE_SECONDS * G_TIME_SPAN_SECOND;
  while ((downloads < RACE_TRIES || uploads < RACE_TRIES) && g_get_monotonic_time () < end)
    {
      g_autofree char *dest = g_strdup_printf ("%s/dl", scratch);
      g_autoptr(GError) error = NULL;

      while (g_main_context_iteration (NULL, FALSE))
        ;
      if (downloads < RACE_TRIES)
        {
          /* Through the name as a middle component, and as the last. */
          const char *src = downloads % 2 ? "/workspace/race/real/f" : "/workspace/race/real";

          rm_rf (dest);
          if (download (instance, src, dest, &error))
            dl_ok++;
          g_clear_error (&error);
          if (tree_contains (dest, token))
            leaks++;
          downloads++;
        }
      if (uploads < RACE_TRIES)
        {
          g_autofree char *to = g_strdup_printf (uploads % 2 ? "/workspace/race/real/sub/u%u"
                                                              : "/workspace/race/real", uploads);

          if (upload (instance, uploads % 2 ? single : tree, to, &error))
            ul_ok++;
          g_clear_error (&error);
          uploads++;
        }
    }
  g_free (sh (instance, "touch /workspace/race/stop", NULL));
  while (!exec.done)
    g_main_context_iteration (NULL, TRUE);
  if (exec.result != NULL)
  {
    g_autoptr(SandboxExecResult) result = exec.result;
    GBytes *out = sandbox_exec_result_get_stdout (result);
    g_autofree char *text = g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));

    g_test_message ("%u downloads (%u succeeded), %u uploads (%u succeeded) in %.1f s, racer: %s",
                    downloads, dl_ok, uploads, ul_ok,
                    (g_get_monotonic_time () - start) / (double) G_TIME_SPAN_SECOND, text);

    /* Control: the racer did swap. */
    g_assert_true (g_str_has_prefix (text, "swaps "));
    g_assert_cmpint (g_ascii_strtoll (text + strlen ("swaps "), NULL, 10), >, 0);
  }
  hidden_after = list_tree (hidden);
  g_test_message ("secret downloaded %u times; hidden directory: before [%s] after [%s]",
                  leaks, hidden_before, hidden_after);
  g_assert_cmpuint (leaks, ==, 0);
  g_assert_cmpstr (hidden_after, ==, hidden_before);
  /* Control: some transfers met the directory. */
  g_assert_cmpuint (dl_ok, >, 0);

  destroy (instance);
  rm_rf (hidden);
  rm_rf (scratch);
}

/* ------------------------------------------------------------------ */
/* 6. Sandbox to sandbox                                                */

/* argv: OWN-ID B-DIR B-HOST-PIDS (space separated) SOCKETS-FOUND (lines).
 * Every route it knows: B's directory at its host path, every socket named
 * "sock" that find(1) saw, and the same reached through every descriptor of
 * every visible process followed upward. To each: a command request, files
 * written into B's workdir and /tmp, an end request, the socket and
 * instance.json removed; then signals to every pid it sees and to B's host
 * pids. */
static const char neighbour_py[] =
  "import os, socket, struct, sys, array, signal, errno\n"
  "own, bdir, bpids, found = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split('\\n')\n"
  /* Only this test's sandboxes are targets: never other people's. */
  "found = [p for p in found if p.startswith(os.path.dirname(bdir) + '/') or p.startswith('/tmp/b/')]\n"
  /* NEVER walk /proc or send signals outside a sandbox: on the host that
   * would be every process of the machine. Only a sandbox passes "inside". */
  "def in_sandbox():\n"
  "    try:\n"
  "        init = open('/proc/1/cmdline', 'rb').read()\n"
  "    except OSError:\n"
  "        init = b''\n"
  "    return b'sandbox-exec-helper' in init or socket.gethostname().startswith('sbx-')\n"
  "inside = len(sys.argv) > 5 and sys.argv[5] == 'inside' and in_sandbox()\n"
  "def ls(d):\n"
  "    try:\n"
  "        return os.listdir(d)\n"
  "    except OSError:\n"
  "        return []\n"
  "dirs = [bdir] + [os.path.dirname(p) for p in found if p.endswith('/sock') and own not in p]\n"
  "parts = bdir.strip('/').split('/')\n"
  "tails = ['/'.join(parts[i:]) for i in range(len(parts))]\n"
  "for pid in ([n for n in ls('/proc') if n.isdigit()] if inside else []):\n"
  "    for fd in ['cwd', 'root'] + ['fd/' + x for x in ls('/proc/%s/fd' % pid)]:\n"
  "        path = '/proc/%s/%s' % (pid, fd)\n"
  "        for level in range(20):\n"
  "            if not os.path.isdir(path):\n"
  "                break\n"
  "            dirs += [path + '/' + t for t in tails]\n"
  "            path += '/..'\n"
  "null = os.open('/dev/null', os.O_RDWR)\n"
  "def request(path, header, payload, fds):\n"
  "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
  "    s.settimeout(10)\n"
  "    try:\n"
  "        s.connect(path)\n"
  "    except OSError:\n"
  "        return None\n"
  "    try:\n"
  "        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []\n"
  "        s.sendmsg([header + struct.pack('=I', len(payload))], anc)\n"
  "        s.sendall(payload)\n"
  "        return s.recv(256)\n"
  "    except OSError as ex:\n"
  "        return ('error ' + str(ex.errno)).encode()\n"
  "    finally:\n"
  "        s.close()\n"
  "cmd = 'echo from-A > /tmp/ran-from-A; echo from-A > /workspace/ran-from-A'\n"
  "payload = b'\\0'.join(x.encode() for x in ['/', '3', '/bin/sh', '-c', cmd, '0']) + b'\\0'\n"
  "tried = set()\n"
  "for d in dirs:\n"
  "    try:\n"
  "        key = os.stat(d)\n"
  "        key = (key.st_dev, key.st_ino)\n"
  "    except OSError:\n"
  "        continue\n"
  "    if key in tried:\n"
  "        continue\n"
  "    tried.add(key)\n"
  "    fd = os.open(d, os.O_PATH | os.O_DIRECTORY)\n"
  "    short = '/proc/self/fd/%d' % fd\n"
  "    print('REACHED', d)\n"
  "    r = request(short + '/sock', b'SBX1', payload, [null, null, null])\n"
  "    if r is not None:\n"
  "        print('ANSWERED', d, r)\n"
  "    for sub in ('work', 'tmp'):\n"
  "        try:\n"
  "            os.close(os.open(short + '/' + sub + '/written-by-A', os.O_WRONLY | os.O_CREAT, 0o644))\n"
  "            print('WROTE', d, sub)\n"
  "        except OSError:\n"
  "            pass\n"
  "    r = request(short + '/sock', b'SBXK', b'', [])\n"
  "    if r is not None:\n"
  "        print('END-ANSWERED', d, r)\n"
  "    for name in ('sock', 'instance.json'):\n"
  "        try:\n"
  "            os.unlink(short + '/' + name)\n"
  "            print('REMOVED', d, name)\n"
  "        except OSError:\n"
  "            pass\n"
  "    os.close(fd)\n"
  "me = os.getpid()\n"
  "for pid in ([int(n) for n in ls('/proc') if n.isdigit()] + [int(p) for p in bpids]) if inside else []:\n"
  "    if pid in (me, os.getppid(), 1):\n"
  "        continue\n"
  "    try:\n"
  "        os.kill(pid, signal.SIGKILL)\n"
  "        print('KILLED', pid)\n"
  "    except OSError as ex:\n"
  "        pass\n"
  "print('DONE')\n";

static const char find_sockets[] =
  "find / \\( -path /proc -o -path /sys -o -path /dev -o -path /usr \\) -prune -o -type s -print 2>/dev/null";

typedef enum
{
  MOUNT_NONE,
  MOUNT_ABOVE_RO,
  MOUNT_ABOVE_RW,
  MOUNT_ROOT_RO,
  MOUNT_ROOT_RW,
  MOUNT_B_RO,
  MOUNT_B_RW,
  MOUNT_B_AT_OWN_PATH,
} NeighbourMount;

static const char * const mount_names[] = {
  "no mount", "the directory above the sandboxes' root, read-only",
  "the directory above the sandboxes' root, read-write", "the sandboxes' root, read-only",
  "the sandboxes' root, read-write", "B's instance directory at /tmp/b, read-only",
  "B's instance directory at /tmp/b, read-write", "B's instance directory at its own path",
};

static void
attack_neighbour (NeighbourMount how)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *bdir = NULL, *bpids = NULL, *found = NULL, *out = NULL, *after = NULL;
  g_autofree char *sock = NULL, *json = NULL;
  SandboxInstance *a, *b = create (NULL);
  int status = -1;

  /* B: a marker process, nothing in /tmp or the workdir. */
  {
    /* Started for sure before anyone looks for it. */
    g_autofree char *ok = sh (b, "(setsid sleep 3193 </dev/null >/dev/null 2>&1 &); "
                                 "while ! pgrep -x sleep >/dev/null; do sleep 0.05; done; echo ok", NULL);
    g_assert_cmpstr (ok, ==, "ok\n");
  }
  bdir = instance_dir (b);
  sock = g_build_filename (bdir, "sock", NULL);
  json = g_build_filename (bdir, "instance.json", NULL);
  g_assert_true (g_file_test (sock, G_FILE_TEST_EXISTS));
  {
    /* B's processes as the host sees them (pid numbers A could guess). */
    g_autoptr(GString) pids = g_string_new (NULL);
    g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
    const char *name;

    while ((name = g_dir_read_name (proc)) != NULL)
      {
        g_autofree char *path = g_build_filename ("/proc", name, "cmdline", NULL);
        g_autofree char *cmdline = NULL;

        if (g_ascii_isdigit (name[0]) && g_file_get_contents (path, &cmdline, NULL, NULL) &&
            (g_str_has_prefix (cmdline, "sleep") || strstr (cmdline, "sandbox-exec-helper") != NULL))
          g_string_append_printf (pids, "%s ", name);
      }
    bpids = g_strdup (pids->str);
  }

  switch (how)
    {
    case MOUNT_NONE: break;
    case MOUNT_ABOVE_RO: sandbox_spec_add_mount (spec, above_dir, NULL, TRUE); break;
    case MOUNT_ABOVE_RW: sandbox_spec_add_mount (spec, above_dir, NULL, FALSE); break;
    case MOUNT_ROOT_RO: sandbox_spec_add_mount (spec, root_dir, NULL, TRUE); break;
    case MOUNT_ROOT_RW: sandbox_spec_add_mount (spec, root_dir, NULL, FALSE); break;
    case MOUNT_B_RO: sandbox_spec_add_mount (spec, bdir, "/tmp/b", TRUE); break;
    case MOUNT_B_RW: sandbox_spec_add_mount (spec, bdir, "/tmp/b", FALSE); break;
    case MOUNT_B_AT_OWN_PATH: sandbox_spec_add_mount (spec, bdir, NULL, FALSE); break;
    default: g_assert_not_reached ();
    }
  a = try_create (spec, &error);
  if (a == NULL)
    {
      /* Refusing such a spec is one of the two acceptable answers. */
      g_test_message ("%s: A refused: %s", mount_names[how], error->message);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
    }
  else
    {
      g_autofree char *q = g_shell_quote (neighbour_py);
      g_autofree char *qid = g_shell_quote (sandbox_instance_get_id (a));
      g_autofree char *qb = g_shell_quote (bdir);
      g_autofree char *qp = g_shell_quote (bpids);
      g_autofree char *script = NULL;

      found = sh (a, find_sockets, NULL);
      script = g_strdup_printf ("S=$(%s); P=%s; /usr/bin/python3 -c \"$P\" %s %s %s \"$S\" inside",
                                find_sockets, q, qid, qb, qp);
      out = sh (a, script, NULL);
      g_test_message ("%s: sockets A found: [%s]; attack: %s", mount_names[how], found, out);
      g_assert_true (has_line_starting (out, "DONE"));
      g_assert_false (has_line_starting (out, "ANSWERED "));
      g_assert_false (has_line_starting (out, "END-ANSWERED "));
      g_assert_false (has_line_starting (out, "WROTE "));
      g_assert_false (has_line_starting (out, "REMOVED "));
      /* KILLED lines are A's own processes unless B's are visible: B's
       * marker, checked below, tells. */
    }

  /* B untouched: alive, its marker process there, nothing ran or was
   * written in it, its files in place. */
  g_assert_true (g_file_test (sock, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (json, G_FILE_TEST_EXISTS));
  g_assert_true (test_host_has_process ("sleep 3193"));
  after = sh (b, "ls -A /tmp /workspace; pgrep -x sleep >/dev/null && echo marker", &status);
  g_test_message ("%s: B after: %s", mount_names[how], after);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (after, ==, "/tmp:\n\n/workspace:\nmarker\n");

  if (a != NULL)
    destroy (a);
  destroy (b);
}

static void
test_neighbour (gconstpointer data)
{
  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  attack_neighbour (GPOINTER_TO_INT (data));
}

/* Control: the request code of the attack does run a command, and does end
 * a sandbox, when given a socket (a process on the host has every right). */
static void
test_neighbour_control (void)
{
  SandboxInstance *b;
  g_autofree char *bdir = NULL, *sock = NULL, *ok = NULL, *out = NULL;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  b = create (NULL);
  bdir = instance_dir (b);
  sock = g_build_filename (bdir, "sock", NULL);
  ok = sh (b, "echo ok", NULL);
  g_assert_cmpstr (ok, ==, "ok\n");
  {
    const char *argv[] = { "/usr/bin/python3", "-c", neighbour_py, "none", bdir, "", "", NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &out, NULL, NULL, NULL));
  }
  g_test_message ("from the host: %s", out);
  g_assert_true (has_line_starting (out, "ANSWERED "));   /* a command ran */
  g_assert_true (has_line_starting (out, "WROTE "));
  g_assert_true (has_line_starting (out, "REMOVED "));
  g_assert_false (g_file_test (sock, G_FILE_TEST_EXISTS));
  sandbox_instance_destroy (b, NULL, NULL);
  g_object_unref (b);
}

/* ------------------------------------------------------------------ */
/* 7. Seccomp: every denied call and its errno                          */

/* THE TABLE: each call the filter denies, and the errno it returns
 * (docs/security.md documents the same). Then the controls, which must
 * still work. */
static const struct
{
  const char *call;      /* an escape-helper syscall name */
  const char *expected;  /* errno name, or OK */
} seccomp_table[] = {
  { "ioctl-TIOCSTI", "EPERM" },
  { "ioctl-TIOCLINUX", "EPERM" },
  { "keyctl", "EPERM" },
  { "add_key", "EPERM" },
  { "request_key", "EPERM" },
  { "ptrace-SEIZE-1", "EPERM" },
  { "ptrace-PEEKUSER-1", "EPERM" },
  { "process_vm_readv-1", "EPERM" },
  { "process_vm_writev-1", "EPERM" },
  { "bpf", "EPERM" },
  { "perf_event_open", "EPERM" },
  { "userfaultfd", "EPERM" },
  { "open_by_handle_at", "EPERM" },
  { "kexec_load", "EPERM" },
  { "kexec_file_load", "EPERM" },
  { "init_module", "EPERM" },
  { "finit_module", "EPERM" },
  { "delete_module", "EPERM" },
  { "reboot", "EPERM" },
  { "swapon", "EPERM" },
  { "swapoff", "EPERM" },
  { "acct", "EPERM" },
  { "syslog", "EPERM" },
  { "quotactl", "EPERM" },
  { "mount", "EPERM" },
  { "umount2", "EPERM" },
  { "pivot_root", "EPERM" },
  { "setns", "EPERM" },
  { "unshare-NEWUSER", "EPERM" },
  { "clone-NEWUSER", "EPERM" },
  { "fsopen", "ENOSYS" },
  { "fsconfig", "ENOSYS" },
  { "fsmount", "ENOSYS" },
  { "fspick", "ENOSYS" },
  { "open_tree", "ENOSYS" },
  { "move_mount", "ENOSYS" },
  { "mount_setattr", "ENOSYS" },
  { "open_tree_attr", "ENOSYS" },   /* session sec29: a descriptor before */
  { "clone3", "ENOSYS" },
  { "io_uring_setup", "ENOSYS" },
  { "io_uring_enter", "ENOSYS" },
  { "io_uring_register", "ENOSYS" },
  { "socket-PACKET", "EAFNOSUPPORT" },
  { "socket-VSOCK", "EAFNOSUPPORT" },
  { "socket-ALG", "EAFNOSUPPORT" },
  { "socket-BLUETOOTH", "EAFNOSUPPORT" },
  { "socket-KEY", "EAFNOSUPPORT" },
  { "socketpair-PACKET", "EAFNOSUPPORT" },
  { "socketpair-VSOCK", "EAFNOSUPPORT" },
  { "socketpair-ALG", "EAFNOSUPPORT" },
  { "socketpair-KEY", "EAFNOSUPPORT" },
  { "socket-UNIXDGRAM", "EACCES" },
  { "socketpair-UNIXDGRAM", "EACCES" },
  /* session sec29: the kernel makes a UNIX SOCK_RAW a datagram socket */
  { "socket-UNIXRAW", "EACCES" },
  { "socketpair-UNIXRAW", "EACCES" },
  { "socket-UNIXRAW-NONBLOCK", "EACCES" },
  /* Controls. */
  { "socket-UNIX", "OK" },
  { "socketpair-UNIX", "OK" },
  { "socket-INET", "OK" },
  { "socket-NETLINK", "OK" },
  { "fork-exec", "OK" },
  { "ptrace-own-child", "OK" },
};

static void
test_seccomp (void)
{
  g_autoptr(GString) script = g_string_new ("grep '^Seccomp:' /proc/self/status; ");
  g_autoptr(GString) mismatches = g_string_new (NULL);

  g_string_append_printf (script, "%s/escape-helper syscall", helper_dir);
  for (guint i = 0; i < G_N_ELEMENTS (seccomp_table); i++)
    g_string_append_printf (script, " %s", seccomp_table[i].call);
  g_string_append (script, "; unshare -Ur true 2>/dev/null && echo UNSHARED; echo end");

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = create_with_helper (as_root);
      g_autofree char *out = sh (instance, script->str, NULL);
      g_auto(GStrv) lines = g_strsplit (out, "\n", -1);

      g_test_message ("run-as-root=%d:\n%s", as_root, out);
      for (guint i = 0; i < G_N_ELEMENTS (seccomp_table); i++)
        {
          g_autofree char *prefix = g_strdup_printf ("%s ", seccomp_table[i].call);
          const char *got = NULL;

          for (guint l = 0; lines[l] != NULL; l++)
            if (g_str_has_prefix (lines[l], prefix))
              got = lines[l] + strlen (prefix);
          if (g_strcmp0 (got, seccomp_table[i].expected) != 0)
            g_string_append_printf (mismatches, "run-as-root=%d %s: %s (expected %s)\n", as_root,
                                    seccomp_table[i].call, got ? got : "(no answer)",
                                    seccomp_table[i].expected);
        }
      if (!g_str_has_prefix (out, "Seccomp:\t2\n"))
        g_string_append_printf (mismatches, "run-as-root=%d: not Seccomp:\t2 in /proc/self/status\n", as_root);
      if (strstr (out, "UNSHARED\n") != NULL)
        g_string_append_printf (mismatches, "run-as-root=%d: unshare -Ur true succeeded\n", as_root);
      if (!g_str_has_suffix (out, "end\n"))
        g_string_append_printf (mismatches, "run-as-root=%d: the probe did not finish\n", as_root);
      destroy (instance);
    }
  if (mismatches->len > 0)
    g_test_message ("mismatches:\n%s", mismatches->str);
  g_assert_cmpstr (mismatches->str, ==, "");
}

/* ------------------------------------------------------------------ */
/* 7b. Calls newer than the filter (session sec29)                      */

/* The host pid of the first process whose command line starts with
 * NEEDLE, or 0. */
static pid_t
host_pid_of (const char *needle)
{
  g_autoptr(GDir) d = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL, *cmdline = NULL;
      gsize len = 0;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_strdup_printf ("/proc/%s/cmdline", name);
      if (!g_file_get_contents (path, &cmdline, &len, NULL))
        continue;
      for (gsize i = 0; i + 1 < len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      if (g_str_has_prefix (cmdline, needle))
        return (pid_t) atoi (name);
    }
  return 0;
}

/* A classic BPF interpreter, for the seccomp programs read back below:
 * returns what PROG answers for call NR of this architecture with all
 * arguments 0, or 0xFFFFFFFF for an instruction it does not know. */
static guint32
run_bpf (const struct sock_filter *prog,
         guint                     len,
         int                       nr)
{
  struct seccomp_data data = { 0 };
  guint32 a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };

  data.nr = nr;
#if defined(__x86_64__)
  data.arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  data.arch = AUDIT_ARCH_AARCH64;
#endif
  for (guint pc = 0; pc < len; pc++)
    {
      const struct sock_filter *i = &prog[pc];
      guint32 k = i->k, src = BPF_SRC (i->code) == BPF_X ? x : k;

      switch (BPF_CLASS (i->code))
        {
        case BPF_LD:
          if (BPF_MODE (i->code) == BPF_ABS && k + 4 <= sizeof data)
            memcpy (&a, (const char *) &data + k, 4);
          else if (BPF_MODE (i->code) == BPF_MEM && k < BPF_MEMWORDS)
            a = mem[k];
          else if (BPF_MODE (i->code) == BPF_IMM)
            a = k;
          else
            return 0xFFFFFFFFu;
          break;
        case BPF_LDX:
          if (BPF_MODE (i->code) == BPF_MEM && k < BPF_MEMWORDS)
            x = mem[k];
          else if (BPF_MODE (i->code) == BPF_IMM)
            x = k;
          else
            return 0xFFFFFFFFu;
          break;
        case BPF_ST:
        case BPF_STX:
          if (k >= BPF_MEMWORDS)
            return 0xFFFFFFFFu;
          mem[k] = BPF_CLASS (i->code) == BPF_ST ? a : x;
          break;
        case BPF_ALU:
          switch (BPF_OP (i->code))
            {
            case BPF_ADD: a += src; break;
            case BPF_SUB: a -= src; break;
            case BPF_AND: a &= src; break;
            case BPF_OR: a |= src; break;
            case BPF_XOR: a ^= src; break;
            case BPF_LSH: a = src < 32 ? a << src : 0; break;
            case BPF_RSH: a = src < 32 ? a >> src : 0; break;
            case BPF_NEG: a = -a; break;
            default: return 0xFFFFFFFFu;
            }
          break;
        case BPF_JMP:
          {
            gboolean t;

            switch (BPF_OP (i->code))
              {
              case BPF_JA: pc += k; continue;
              case BPF_JEQ: t = a == src; break;
              case BPF_JGT: t = a > src; break;
              case BPF_JGE: t = a >= src; break;
              case BPF_JSET: t = (a & src) != 0; break;
              default: return 0xFFFFFFFFu;
              }
            pc += t ? i->jt : i->jf;
          }
          break;
        case BPF_RET:
          return BPF_RVAL (i->code) == BPF_A ? a : k;
        case BPF_MISC:
          if (BPF_MISCOP (i->code) == BPF_TAX)
            x = a;
          else
            a = x;
          break;
        default:
          return 0xFFFFFFFFu;
        }
    }
  return 0xFFFFFFFFu;
}

/* The seccomp programs a command runs under (read back from the host with
 * PTRACE_SECCOMP_GET_FILTER, CAP_SYS_ADMIN) answer every call above the
 * last one reviewed, and open_tree_attr, with ENOSYS: the sandbox's own
 * filter refuses by name, so a call newer than libseccomp's table, or than
 * the code, went through (open_tree_attr, Linux 6.15, gave a descriptor of
 * the mount; listns, Linux 6.19, would have, on the machine's next kernel).
 * On a kernel without those calls the answer is ENOSYS either way, so the
 * programs are asked, not the kernel. Controls: file_setattr (469, Linux
 * 6.17, reviewed) and getpid are allowed by every program. */
static void
test_unreviewed_calls (void)
{
#if !defined(__x86_64__) && !defined(__aarch64__)
  g_test_skip ("the call numbers are x86-64's and AArch64's");
#else
  static const struct { int nr; gboolean refused; } calls[] = {
    { 467, TRUE },    /* open_tree_attr */
    { 470, TRUE },    /* listns, Linux 6.19 */
    { 471, TRUE },
    { 520, TRUE },
    { 1000, TRUE },
    { 468, FALSE },   /* file_getattr: reviewed (the FS_IOC_FSGETXATTR ioctl) */
    { 469, FALSE },   /* file_setattr */
    { SYS_getpid, FALSE },
  };

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (CAP_SYS_ADMIN) to read a filter back");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = create_with_helper (as_root);
      g_autoptr(GString) failures = g_string_new (NULL);
      g_autofree char *out = NULL;
      pid_t pid = 0;
      int status, n_filters = 0;

      out = sh (instance, "setsid sleep 3929 </dev/null >/dev/null 2>&1 & echo started", NULL);
      g_assert_cmpstr (out, ==, "started\n");
      for (int tries = 0; tries < 200 && (pid = host_pid_of ("sleep 3929")) == 0; tries++)
        g_usleep (10000);
      g_assert_cmpint (pid, >, 0);
      g_assert_cmpint (ptrace (PTRACE_SEIZE, pid, NULL, NULL), ==, 0);
      g_assert_cmpint (ptrace (PTRACE_INTERRUPT, pid, NULL, NULL), ==, 0);
      g_assert_cmpint (waitpid (pid, &status, __WALL), ==, pid);

      for (guint c = 0; c < G_N_ELEMENTS (calls); c++)
        {
          gboolean enosys = FALSE, other = FALSE;

          n_filters = 0;
          for (long index = 0;; index++)
            {
              long len = ptrace (PTRACE_SECCOMP_GET_FILTER, pid, (void *) index, NULL);
              g_autofree struct sock_filter *prog = NULL;
              guint32 action;

              if (len < 0)
                {
                  g_assert_cmpint (errno, ==, ENOENT);   /* past the last one */
                  break;
                }
              prog = g_new0 (struct sock_filter, len);
              g_assert_cmpint (ptrace (PTRACE_SECCOMP_GET_FILTER, pid, (void *) index, prog), ==, len);
              n_filters++;
              action = run_bpf (prog, (guint) len, calls[c].nr);
              if (action == (SECCOMP_RET_ERRNO | ENOSYS))
                enosys = TRUE;
              else if ((action & SECCOMP_RET_ACTION_FULL) != SECCOMP_RET_ALLOW)
                other = TRUE;
            }
          if (enosys != calls[c].refused || other)
            g_string_append_printf (failures, "call %d: %s%s\n", calls[c].nr,
                                    enosys ? "ENOSYS" : "allowed", other ? " (and another action)" : "");
        }
      g_test_message ("run-as-root=%d: %d filters; %s", as_root, n_filters, failures->str);
      g_assert_cmpint (n_filters, >=, 2);   /* bwrap's, then pid 1's */
      ptrace (PTRACE_DETACH, pid, NULL, NULL);
      kill (pid, SIGKILL);
      destroy (instance);
      g_assert_cmpstr (failures->str, ==, "");
    }
#endif
}

/* A UNIX datagram socket sends to a path without connect(), where pid 1
 * checks it: the filter refuses SOCK_DGRAM, but the kernel makes a UNIX
 * SOCK_RAW socket a datagram one (session sec29), and its sendto() put a
 * datagram into a host service's socket in a mounted directory, which a
 * connect() is refused. Each way of getting one (socket, socketpair, with
 * flags) and sending to the host's socket, as the user and as root: the
 * host reads nothing. Control: the test's own datagram arrives. */
static const char unix_raw_py[] =
  "import socket, sys\n"
  "path = sys.argv[1]\n"
  "for name, make in (('socket', lambda t: [socket.socket(socket.AF_UNIX, t)]),\n"
  "                   ('socketpair', lambda t: list(socket.socketpair(socket.AF_UNIX, t)))):\n"
  "    for t in (socket.SOCK_RAW, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.SOCK_DGRAM):\n"
  "        try:\n"
  "            socks = make(t)\n"
  "        except OSError as e:\n"
  "            print('REFUSED', name, t, e.errno)\n"
  "            continue\n"
  "        try:\n"
  "            socks[0].sendto(b'escaped', path)\n"
  "            print('SENT', name, t)\n"
  "        except OSError as e:\n"
  "            print('MADE-NOT-SENT', name, t, e.errno)\n"
  "print('DONE')\n";

static void
test_unix_raw_datagram (void)
{
  g_autofree char *dir = NULL, *sock_path = NULL;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  char buf[64];
  int host;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  dir = g_build_filename (above_dir, "unix-raw", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  sock_path = g_build_filename (dir, "service.sock", NULL);
  g_assert_cmpuint (strlen (sock_path), <, sizeof addr.sun_path);
  strcpy (addr.sun_path, sock_path);
  host = socket (AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  g_assert_cmpint (host, >=, 0);
  g_assert_cmpint (bind (host, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (chmod (sock_path, 0777), ==, 0);

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      SandboxInstance *instance;
      g_autofree char *out = NULL;

      sandbox_spec_add_mount (spec, dir, "/shared", FALSE);
      sandbox_spec_set_run_as_root (spec, as_root);
      instance = create (spec);
      out = py (instance, unix_raw_py, "/shared/service.sock", NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      destroy (instance);
      g_assert_true (has_line_starting (out, "DONE"));
      g_assert_false (has_line_starting (out, "SENT "));
      g_assert_false (has_line_starting (out, "MADE-NOT-SENT "));
      /* Nothing came: the socket is empty. */
      g_assert_cmpint (recv (host, buf, sizeof buf, 0), ==, -1);
      g_assert_cmpint (errno, ==, EAGAIN);
    }

  /* Control: the socket takes a datagram. */
  {
    int c = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint (sendto (c, "ok", 2, 0, (struct sockaddr *) &addr, sizeof addr), ==, 2);
    close (c);
    g_assert_cmpint (recv (host, buf, sizeof buf, 0), ==, 2);
  }
  close (host);
  g_unlink (sock_path);
  g_rmdir (dir);
}

/* Descriptors in flight (session sec29): the kernel counts descriptors
 * sent with SCM_RIGHTS and not yet received per host uid, and refuses a
 * send once the count is above the sender's RLIMIT_NOFILE soft limit. A
 * command that kept 20,000 in a socket pair made every other sandbox of
 * the same caller fail to run a command ("Too many references") and to
 * copy a file (pid 1, its spawner and its file service pass descriptors),
 * until it ended. Sandbox A's command sends until refused and keeps them;
 * meanwhile sandbox B runs a command, takes an upload and gives a
 * download, and A itself runs another command. A is made plain and, in a
 * second round, with egress rules (pid 1 then makes the command's sends
 * itself). Controls: A's command did fill the count (it was refused
 * after thousands), and B's command's own send is refused meanwhile (the
 * per-user count is shared by commands: "What is not promised"). */
static const char fill_fds_py[] =
  "import array, os, resource, socket, time\n"
  "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
  "resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n"
  "fd = os.open('/dev/null', os.O_RDONLY)\n"
  "fds = array.array('i', [fd] * 250)\n"
  "pairs, sent, err = [], 0, None\n"
  "while err is None and sent < 10000000:\n"
  "    a, b = socket.socketpair()\n"
  "    a.setblocking(False)\n"
  "    pairs.append((a, b))\n"
  "    while True:\n"
  "        try:\n"
  "            a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])\n"
  "            sent += 250\n"
  "        except BlockingIOError:\n"
  "            break\n"
  "        except OSError as e:\n"
  "            err = e.errno\n"
  "            break\n"
  "with open('/tmp/filled.tmp', 'w') as f:\n"
  "    f.write('FILLED %d %s\\n' % (sent, err))\n"
  "os.rename('/tmp/filled.tmp', '/tmp/filled')\n"
  "time.sleep(600)\n";

static const char pass_fd_py[] =
  "import array, socket\n"
  "a, b = socket.socketpair()\n"
  "try:\n"
  "    a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [0]))])\n"
  "    print('PASSED')\n"
  "except OSError as e:\n"
  "    print('REFUSED', e.errno)\n";

/* The caller of the two tests below (this program run with
 * --fds-in-flight-child MODE, as another uid: the count is per uid, so
 * root's, which other tests and programs of this machine use, stays
 * untouched). A's command fills the count; then B and A run a command,
 * and (MODE "plain", "egress": A made with egress rules) B takes an
 * upload and gives a download, and B's command's own send is refused
 * (control: the count is shared by commands). Exits 0 when all held, 10
 * and up naming what failed; an exec that fails aborts it. */
static int
fds_in_flight_child (const char *mode)
{
  const char *allow[] = { "127.0.0.1/32", NULL };
  const char *deny_all[] = { "0.0.0.0/0", "::/0", NULL };
  g_autoptr(SandboxSpec) spec_a = sandbox_spec_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *quoted = g_shell_quote (fill_fds_py);
  g_autofree char *start = NULL, *filled = NULL, *out = NULL, *a_out = NULL, *b_pass = NULL;
  g_autofree char *up = NULL, *down = NULL, *got = NULL;
  gboolean full = strcmp (mode, "unprivileged") != 0;
  struct rlimit rl;
  SandboxInstance *a, *b;
  guint64 sent;
  int ret = 0;

  if (strcmp (mode, "egress") == 0)
    {
      sandbox_spec_set_network (spec_a, TRUE);
      sandbox_spec_set_egress_rules (spec_a, allow, deny_all);
    }
  a = create (spec_a);
  b = create (NULL);
  start = g_strdup_printf ("P=%s; setsid /usr/bin/python3 -c \"$P\" </dev/null >/dev/null 2>&1 & echo started",
                           quoted);
  out = sh (a, start, NULL);
  if (g_strcmp0 (out, "started\n") != 0)
    return 10;
  for (int tries = 0; tries < 600; tries++)
    {
      g_free (filled);
      filled = sh (a, "cat /tmp/filled 2>/dev/null", NULL);
      if (g_str_has_prefix (filled, "FILLED "))
        break;
      g_usleep (100000);
    }
  g_printerr ("%s: A: %s", mode, filled);
  if (!g_str_has_prefix (filled, "FILLED ") || strstr (filled, " 109\n") == NULL)
    return 11;
  sent = g_ascii_strtoull (filled + 7, NULL, 10);
  if (sent < 4000)
    return 12;   /* control: it filled the count */
  /* ... below pid 1's limit (this process's hard one, which bwrap and pid
   * 1 inherit), also where pid 1 made the sends (egress rules). */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && sent >= rl.rlim_max)
    return 13;

  g_free (out);
  out = sh (b, "echo ran", NULL);   /* aborts on an exec error */
  a_out = sh (a, "echo ran", NULL);
  if (g_strcmp0 (out, "ran\n") != 0 || g_strcmp0 (a_out, "ran\n") != 0)
    ret = 14;
  if (ret == 0 && full)
    {
      up = g_build_filename (g_getenv ("XDG_RUNTIME_DIR"), "in-flight-up", NULL);
      down = g_build_filename (g_getenv ("XDG_RUNTIME_DIR"), "in-flight-down", NULL);
      if (!g_file_set_contents (up, "payload\n", -1, NULL))
        ret = 15;
      else if (!upload (b, up, "/tmp/payload", &error))
        {
          g_printerr ("%s: upload: %s\n", mode, error->message);
          ret = 16;
        }
      else if (!download (b, "/tmp/payload", down, &error))
        {
          g_printerr ("%s: download: %s\n", mode, error->message);
          ret = 17;
        }
      else if (!g_file_get_contents (down, &got, NULL, NULL) || g_strcmp0 (got, "payload\n") != 0)
        ret = 18;
      if (ret == 0)
        {
          b_pass = py (b, pass_fd_py, NULL);
          g_printerr ("%s: B's command's own send: %s", mode, b_pass);
          if (g_strcmp0 (b_pass, "REFUSED 109\n") != 0)
            ret = 19;
        }
    }
  destroy (a);
  destroy (b);
  return ret;
}

/* Runs fds_in_flight_child (MODE) as UID, with a soft open-files limit of
 * 1,024 when LOW_SOFT (else its hard one); its exit status, or -1 when it
 * was skipped (with the reason as the test's). */
static int
run_fds_in_flight_child (uid_t       uid,
                         gboolean    low_soft,
                         const char *mode)
{
  g_autofree char *root = g_strdup ("/tmp/test-local-escape-XXXXXX");
  g_autofree char *rm = NULL;
  int status = 0;
  pid_t pid;

  g_assert_nonnull (g_mkdtemp (root));
  g_assert_cmpint (chown (root, uid, uid), ==, 0);
  rm = g_strdup_printf ("rm -rf %s", root);
  pid = fork ();
  if (pid == 0)
    {
      const char *exec_helper = g_getenv ("SANDBOX_EXEC_HELPER");
      int ok = setgroups (0, NULL) == 0 && setresgid (uid, uid, uid) == 0 && setresuid (uid, uid, uid) == 0;

      if (ok && exec_helper != NULL && access (exec_helper, X_OK) != 0)
        _exit (2);
      _exit (ok && unshare (CLONE_NEWUSER) == 0 ? 0 : 1);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
      g_test_skip ("that uid cannot make a user namespace or run the build's helper here");
      return -1;
    }

  /* A new image of this program, not a fork that goes on: the parent's
   * GLib threads (its thread pool, the reaper) are not in a forked child,
   * whose async calls would then wait for good. */
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      struct rlimit rl;

      if (setgroups (0, NULL) != 0 || setresgid (uid, uid, uid) != 0 || setresuid (uid, uid, uid) != 0)
        _exit (2);
      if (getrlimit (RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max < 8192 || rl.rlim_max == RLIM_INFINITY)
        _exit (4);   /* too low a hard limit to tell */
      rl.rlim_cur = low_soft ? 1024 : rl.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        _exit (2);
      g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
      g_setenv ("XDG_RUNTIME_DIR", root, TRUE);
      execl (self_path, self_path, "--fds-in-flight-child", mode, (char *) NULL);
      _exit (8);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  if (WIFEXITED (status) && WEXITSTATUS (status) == 4)
    {
      g_test_skip ("the hard open-files limit is too low to tell");
      return -1;
    }
  g_test_message ("%s: child: %s %d", mode, WIFEXITED (status) ? "exit" : "signal",
                  WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* Sandboxes A and B of one caller (uid 65533, its soft limit its hard
 * one), A plain and, in a second round, with egress rules. Before, B's
 * command failed to start ("Too many references"). */
static void
test_fds_in_flight (void)
{
  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  if (geteuid () != 0)
    {
      g_test_skip ("needs root to run the sandboxes as a uid of their own");
      return;
    }
  for (int egress = 0; egress <= 1; egress++)
    {
      int r = run_fds_in_flight_child (65533, FALSE, egress ? "egress" : "plain");

      if (r < 0)
        return;
      g_assert_cmpint (r, ==, 0);
    }
}

/* The same for a caller whose soft limit is lower (uid 65534, 1,024):
 * the library's own sends of a command's stdin, stdout and stderr to pid
 * 1 are counted against it (no CAP_SYS_ADMIN): it raises it when
 * refused. Before, B's exec failed with ETOOMANYREFS. */
static void
test_fds_in_flight_unprivileged (void)
{
  int r;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  if (geteuid () != 0)
    {
      g_test_skip ("needs root to become uid 65534");
      return;
    }
  r = run_fds_in_flight_child (65534, TRUE, "unprivileged");
  if (r >= 0)
    g_assert_cmpint (r, ==, 0);
}

/* ------------------------------------------------------------------ */
/* 8. The owner killed with SIGKILL                                     */

static const char *
sandboxctl (void)
{
  const char *ctl = g_getenv ("SANDBOXCTL");

  return ctl != NULL && g_file_test (ctl, G_FILE_TEST_IS_EXECUTABLE) ? ctl : NULL;
}

/* The ids of the instance directories in the sandboxes' root. */
static char *
instance_ids (void)
{
  g_autoptr(GDir) d = g_dir_open (root_dir, 0, NULL);
  GString *out = g_string_new (NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "sbx-"))
      g_string_append_printf (out, "%s ", name);
  return g_string_free (out, FALSE);
}

static char *
ctl_output (const char *arg1,
            const char *arg2,
            const char *arg3)
{
  const char *argv[] = { sandboxctl (), arg1, arg2, arg3, NULL };
  g_autofree char *out = NULL;

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                               &out, NULL, NULL, NULL));
  return g_steal_pointer (&out);
}

/* Whether the sandbox ID is still there: a process of it, its directory,
 * or a line in `sandboxctl ls` that says it runs. */
static gboolean
sandbox_left (const char *id,
              const char *marker)
{
  g_autofree char *dir = g_build_filename (root_dir, id, NULL);
  g_autofree char *ls = ctl_output ("ls", NULL, NULL);
  g_autofree char *running = g_strdup_printf ("%s  running", id);

  return test_host_has_process (marker) || strstr (ls, running) != NULL ||
         g_file_test (dir, G_FILE_TEST_EXISTS);
}

static double
wait_gone (const char *id,
           const char *marker)
{
  gint64 start = g_get_monotonic_time ();

  while (sandbox_left (id, marker) && g_get_monotonic_time () - start < 20 * G_TIME_SPAN_SECOND)
    g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  return (g_get_monotonic_time () - start) / (double) G_TIME_SPAN_SECOND;
}

static void
test_sigkill_run (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) run = NULL;
  g_autofree char *id = NULL;
  g_autofree char *before = NULL;
  double took;

  if (sandboxctl () == NULL)
    {
      g_test_skip ("needs $SANDBOXCTL (the built sandboxctl)");
      return;
    }
  before = instance_ids ();
  run = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                          sandboxctl (), "run", "--backend", "local", "--", "sleep", "613", NULL);
  g_assert_no_error (error);
  for (int i = 0; i < 200 && !test_host_has_process ("sleep 613"); i++)
    g_usleep (50 * G_TIME_SPAN_MILLISECOND);
  g_assert_true (test_host_has_process ("sleep 613"));
  {
    g_autofree char *now = instance_ids ();
    g_auto(GStrv) ids = g_strsplit (now, " ", -1);

    for (guint i = 0; ids[i] != NULL && id == NULL; i++)
      if (*ids[i] != '\0' && strstr (before, ids[i]) == NULL)
        id = g_strdup (ids[i]);
  }
  g_assert_nonnull (id);
  if (id == NULL)
    return;

  g_subprocess_send_signal (run, SIGKILL);
  g_subprocess_wait (run, NULL, NULL);
  took = wait_gone (id, "sleep 613");
  g_test_message ("sandboxctl run killed with SIGKILL: its sandbox %s %s after %.1f s (promised: 5 s)",
                  id, sandbox_left (id, "sleep 613") ? "STILL THERE" : "gone", took);
  if (sandbox_left (id, "sleep 613"))
    g_free (ctl_output ("rm", id, NULL));   /* do not leave it running */
  g_assert_cmpfloat (took, <, 20.0);

  /* Control: `sandboxctl create` makes a sandbox that outlives it. */
  {
    g_autofree char *created = g_strstrip (ctl_output ("create", NULL, NULL));
    g_autofree char *out = NULL;
    g_autofree char *ls = NULL;
    g_autofree char *running = g_strdup_printf ("%s  running", created);

    g_assert_true (g_str_has_prefix (created, "sbx-"));
    g_usleep (2 * G_TIME_SPAN_SECOND);
    ls = ctl_output ("ls", NULL, NULL);
    g_assert_nonnull (strstr (ls, running));
    {
      const char *argv[] = { sandboxctl (), "exec", created, "--", "echo", "alive", NULL };
      g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                                   &out, NULL, NULL, NULL));
    }
    g_assert_cmpstr (out, ==, "alive\n");
    g_free (ctl_output ("rm", created, NULL));
  }
}

/* The owner child (this program run with --owner-child): creates a
 * sandbox with die-with-owner, starts a marker in it, prints its id, and
 * waits to be killed. */
static int
owner_child (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("(setsid sleep 614 </dev/null >/dev/null 2>&1 &)");
  g_autoptr(GError) error = NULL;

  sandbox_spec_set_die_with_owner (spec, TRUE);
  instance = create (spec);
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_no_error (error);
  g_print ("%s\n", sandbox_instance_get_id (instance));
  fflush (stdout);
  for (;;)
    pause ();
  return 0;
}

static void
test_die_with_owner (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) owner = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autofree char *id = NULL;
  double took;

  owner = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, self_path, "--owner-child", NULL);
  g_assert_no_error (error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (owner));
  id = g_data_input_stream_read_line (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (id);
  if (id == NULL)
    return;
  /* The marker was started in the background: it may not run yet. */
  for (int i = 0; i < 200 && !test_host_has_process ("sleep 614"); i++)
    g_usleep (50 * G_TIME_SPAN_MILLISECOND);
  g_assert_true (test_host_has_process ("sleep 614"));
  g_subprocess_send_signal (owner, SIGKILL);
  g_subprocess_wait (owner, NULL, NULL);
  took = wait_gone (id, "sleep 614");
  g_test_message ("owner killed with SIGKILL: sandbox %s %s after %.1f s",
                  id, sandbox_left (id, "sleep 614") ? "STILL THERE" : "gone", took);
  g_assert_cmpfloat (took, <, 20.0);
}

/* With egress rules pid 1 connects a copy of the command's socket itself
 * when it finds it non-blocking; the flags are the command's too, and one
 * of its processes cleared O_NONBLOCK between pid 1's look and its call:
 * pid 1 then waited in a UNIX connect() on a full backlog for as long as
 * the command kept the listener, and with it every other call of the
 * sandbox, its expiry and its owner's lease (session sec26: the prober's
 * connect() to 127.0.0.1:9 was not answered; with the helper run without
 * the flipping process, pid 1 kept answering 160,000 such calls). Now a
 * timer ends pid 1's call when it waits and a worker makes it. */
static void
test_pid1_connect_flags_flipped (void)
{
  const char *allow[] = { "127.0.0.1", NULL };
  const char *deny_all[] = { "0.0.0.0/0", "::/0", NULL };
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *script = NULL, *out = NULL;
  SandboxInstance *instance;

  sandbox_spec_add_mount (spec, helper_dir, NULL, TRUE);
  sandbox_spec_set_network (spec, TRUE);
  sandbox_spec_set_egress_rules (spec, allow, deny_all);
  instance = create (spec);
  script = g_strdup_printf ("%s/escape-helper connect-flip 40", helper_dir);
  out = sh (instance, script, NULL);
  g_test_message ("%s", out);
  g_assert_cmpstr (out, ==, "pid1-answers\n");
  /* pid 1 still serves the sandbox's next command. */
  g_free (out);
  out = sh (instance, "echo next", NULL);
  g_assert_cmpstr (out, ==, "next\n");
  destroy (instance);
}

int
main (int argc, char **argv)
{
  const char *builddir;
  int status;

  self_path = g_canonicalize_filename (argv[0], NULL);
  real_home = g_strdup (g_getenv ("HOME"));
  if (argc == 2 && strcmp (argv[1], "--owner-child") == 0)
    return owner_child ();   /* SANDBOX_LOCAL_ROOT is the parent's */
  if (argc == 3 && strcmp (argv[1], "--fds-in-flight-child") == 0)
    return fds_in_flight_child (argv[2]);   /* as another uid, SANDBOX_LOCAL_ROOT set */

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  signal (SIGPIPE, SIG_IGN);
  /* A failed assertion fails its test and the rest still runs: each test
   * reports every hole it sees, and the controls are checked too. */
  g_test_set_nonfatal_assertions ();

  above_dir = g_strdup ("/var/tmp/libsandbox-escape-XXXXXX");
  g_assert_nonnull (g_mkdtemp (above_dir));
  g_chmod (above_dir, 0755);
  root_dir = g_build_filename (above_dir, "root", NULL);
  g_assert_cmpint (g_mkdir (root_dir, 0755), ==, 0);
  g_setenv ("SANDBOX_LOCAL_ROOT", root_dir, TRUE);
  g_unsetenv ("SANDBOX_BACKEND");

  builddir = g_getenv ("G_TEST_BUILDDIR");
  if (builddir != NULL)
    helper_dir = g_build_filename (builddir, "tests", "backends", NULL);
  else
    {
      helper_dir = g_path_get_dirname (self_path);
      if (g_str_has_suffix (helper_dir, "/.libs"))
        helper_dir[strlen (helper_dir) - strlen ("/.libs")] = '\0';
    }
  helper = g_build_filename (helper_dir, "escape-helper", NULL);
  g_assert_true (g_file_test (helper, G_FILE_TEST_IS_EXECUTABLE));

  g_test_add_func ("/local/escape/descriptors", test_descriptors);
  g_test_add_func ("/local/escape/ptrace-pidfd", test_ptrace_pidfd);
  g_test_add_func ("/local/escape/keyrings", test_keyrings);
  g_test_add_func ("/local/escape/planted-links", test_planted_links);
  g_test_add_func ("/local/escape/swap-race", test_swap_race);
  g_test_add_func ("/local/escape/neighbour/control", test_neighbour_control);
  g_test_add_data_func ("/local/escape/neighbour/plain", GINT_TO_POINTER (MOUNT_NONE), test_neighbour);
  g_test_add_data_func ("/local/escape/neighbour/above-ro", GINT_TO_POINTER (MOUNT_ABOVE_RO), test_neighbour);
  g_test_add_data_func ("/local/escape/neighbour/above-rw", GINT_TO_POINTER (MOUNT_ABOVE_RW), test_neighbour);
  g_test_add_data_func ("/local/escape/neighbour/root-ro", GINT_TO_POINTER (MOUNT_ROOT_RO), test_neighbour);
  g_test_add_data_func ("/local/escape/neighbour/root-rw", GINT_TO_POINTER (MOUNT_ROOT_RW), test_neighbour);
  g_test_add_data_func ("/local/escape/neighbour/b-ro", GINT_TO_POINTER (MOUNT_B_RO), test_neighbour);
  g_test_add_data_func ("/local/escape/neighbour/b-rw", GINT_TO_POINTER (MOUNT_B_RW), test_neighbour);
  g_test_add_data_func ("/local/escape/neighbour/b-own-path", GINT_TO_POINTER (MOUNT_B_AT_OWN_PATH), test_neighbour);
  g_test_add_func ("/local/escape/seccomp", test_seccomp);
  g_test_add_func ("/local/escape/unreviewed-calls", test_unreviewed_calls);
  g_test_add_func ("/local/escape/unix-raw-datagram", test_unix_raw_datagram);
  g_test_add_func ("/local/escape/fds-in-flight", test_fds_in_flight);
  g_test_add_func ("/local/escape/fds-in-flight-unprivileged", test_fds_in_flight_unprivileged);
  g_test_add_func ("/local/escape/sigkill-run", test_sigkill_run);
  g_test_add_func ("/local/escape/die-with-owner", test_die_with_owner);
  g_test_add_func ("/local/escape/pid1-connect-flags-flipped", test_pid1_connect_flags_flipped);

  status = g_test_run ();
  rm_rf (above_dir);
  return status;
}
