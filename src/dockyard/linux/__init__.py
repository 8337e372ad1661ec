"""The only code in Dockyard that makes raw syscalls (ctypes over libc).

Modules are imported on demand, never from here, so that ``dockyard-runtime`` starts fast:

- :mod:`dockyard.linux.libc`: thin ctypes bindings (mount, umount2, pivot_root, unshare, setns,
  sethostname, prctl) that raise ``OSError`` with errno like the ``os`` module does;
- :mod:`dockyard.linux.syscalls`: the small :class:`~dockyard.linux.syscalls.Syscalls` interface
  the mount sequence goes through, its real implementation and a recording fake for tests;
- :mod:`dockyard.linux.mountflags`: the OCI mount-option table (used by the code and by
  ``dockyard-runtime features``);
- :mod:`dockyard.linux.pty`: pseudo-terminals, window size, fd passing over unix sockets;
- :mod:`dockyard.linux.proc`: process facts from ``/proc`` (start time, state);
- :mod:`dockyard.linux.seccomp`, :mod:`dockyard.linux.capabilities` (cgroups/seccomp owner).
"""
