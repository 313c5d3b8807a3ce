"""Container launcher: runs in the child process, enters the pod's namespaces, then execs.

    python -I launch.py SPEC.json

SPEC (written by the agent, removed here once read): netns (a name under /run/netns), hostname,
mounts ([{"source", "target", "readOnly"}], in order), workingDir, program, argv, env, errfd.
Steps: setns(net), unshare(mount + UTS), make every mount private (nothing propagates back to the
host), bind-mount each source at its target, sethostname, chdir, execve. Any failure is written
to errfd (a close-on-exec pipe the agent reads: empty = exec succeeded) and exits 128.
Standard library only; self-contained so it starts fast under `python -I`.
"""

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

libc = ctypes.CDLL(None, use_errno=True)


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source, target, flags):
    src = source.encode() if source else None
    check(libc.mount(src, target.encode(), None, flags, None), f"mount {source} -> {target}")


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    os.unlink(sys.argv[1])
    errfd = spec["errfd"]
    os.set_inheritable(errfd, False)  # closed by a successful execve: the agent reads EOF
    try:
        fd = os.open(os.path.join("/run/netns", spec["netns"]), os.O_RDONLY)
        check(libc.setns(fd, CLONE_NEWNET), "setns(net)")
        os.close(fd)
        check(libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare(mount, uts)")
        mount(None, "/", MS_REC | MS_PRIVATE)
        for m in spec["mounts"]:
            mount(m["source"], m["target"], MS_BIND | MS_REC)
            if m.get("readOnly"):
                mount(None, m["target"], MS_BIND | MS_REMOUNT | MS_RDONLY)
        name = spec["hostname"].encode()
        check(libc.sethostname(name, len(name)), "sethostname")
        os.chdir(spec["workingDir"] or "/")
        os.execve(spec["program"], spec["argv"], spec["env"])
    except Exception as e:  # noqa: BLE001 - every failure must reach the agent
        msg = f"{type(e).__name__}: {e}".encode()
        try:
            os.write(errfd, msg)
        finally:
            os._exit(128)


if __name__ == "__main__":
    main()
