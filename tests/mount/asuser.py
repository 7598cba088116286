"""Run file operations as another user (nobody), against a real mount.

The operations run in a child `/usr/bin/python3` started by
`setpriv --reuid=nobody --regid=nogroup --clear-groups`, so the kernel
checks them as that user; each answers ["ok", value] or ["err", "EACCES"].
"""

import json
import subprocess

CHILD = r'''
import errno, json, os, sys
out = []
for op, path, *arg in json.loads(sys.argv[1]):
    try:
        if op == "read":
            with open(path, "rb") as f:
                out.append(["ok", len(f.read())])
        elif op == "getxattr":
            out.append(["ok", os.getxattr(path, arg[0]).decode()])
        elif op == "listdir":
            out.append(["ok", sorted(os.listdir(path))])
        elif op == "stat":
            st = os.stat(path)
            out.append(["ok", [st.st_mode, st.st_uid, st.st_size]])
        else:
            raise ValueError(op)
    except OSError as e:
        out.append(["err", errno.errorcode.get(e.errno, str(e.errno))])
print(json.dumps(out))
'''


def as_nobody(*ops, timeout=120):
    """Run ops, each (op, path, *args) with op in read, getxattr, listdir,
    stat, as user nobody; return one [status, value] per op."""
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--clear-groups", "/usr/bin/python3", "-c", CHILD,
                        json.dumps([list(o) for o in ops])],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)
