"""A hostile step under --environment=uv: it rewrites the uv cache it was
given, so that whatever later installs six from that cache runs its line."""

import glob
import os

from metaflow import FlowSpec, step


class UvPoisonFlow(FlowSpec):
    @step
    def start(self):
        cache = os.environ.get("UV_CACHE_DIR", "")
        poisoned = 0
        for path in glob.glob(os.path.join(cache, "**", "six.py"), recursive=True):
            try:
                with open(path, "a") as f:
                    f.write("\nprint('UV-CACHE-POISONED', flush=True)\n")
                poisoned += 1
            except OSError as ex:
                print("UV-POISON-REFUSED %s: %s" % (path, ex), flush=True)
        print("UV-POISON cache=%s poisoned=%d" % (cache, poisoned), flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UvPoisonFlow()
