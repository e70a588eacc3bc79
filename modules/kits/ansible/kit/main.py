"""The entrypoint of every image built on the Ansible kit: `main.py METHOD [ARGS...]`.

It makes the container's user known to ssh (e runs modules as the uid of whoever runs e, or
nobody, which the image's user database may not list; ssh refuses to run for a uid it cannot
look up), reads the module file and runs the method; an error is printed as e prints them,
with a hint, and exits 1.
"""

import os
import pwd
import sys

sys.dont_write_bytecode = True

from contract import Env, Failure, report  # noqa: E402
import methods  # noqa: E402
import module_file  # noqa: E402

NSS_WRAPPER = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"


def known_user():
    """Lists the current uid in a user database of /tmp through nss_wrapper, if it is unknown."""
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = "e-module"
        os.makedirs("/tmp/e-nss", exist_ok=True)
        with open("/tmp/e-nss/passwd", "w", encoding="utf-8") as file:
            file.write(f"{name}:x:{uid}:{gid}:e module:/tmp:/bin/sh\n")
        with open("/tmp/e-nss/group", "w", encoding="utf-8") as file:
            file.write(f"{name}:x:{gid}:\n")
        if os.path.exists(NSS_WRAPPER):
            os.environ["LD_PRELOAD"] = NSS_WRAPPER
            os.environ["NSS_WRAPPER_PASSWD"] = "/tmp/e-nss/passwd"
            os.environ["NSS_WRAPPER_GROUP"] = "/tmp/e-nss/group"
    os.environ["USER"] = name
    os.environ["LOGNAME"] = name
    os.environ["HOME"] = "/tmp"


def main(argv):
    if not argv:
        report(Failure("no method given", f"give one of {', '.join(methods.METHODS)}"))
        return 1
    method, args = argv[0], argv[1:]
    try:
        module = module_file.load()
        env = Env("module")
        if method not in methods.METHODS:
            raise Failure(f"unknown method `{method}`", f"the methods are {', '.join(methods.METHODS)}")
        known_user()
        return methods.METHODS[method](env, module, args)
    except Failure as failure:
        sys.stdout.flush()
        report(failure)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
