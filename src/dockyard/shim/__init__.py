"""The per-container monitor (containerd-shim's role).

One monitor process per running container, forked from the daemon's single-threaded spawner
(:mod:`dockyard.daemon.spawner`). It owns the container's stdio or pty, writes its json-file
log, reaps its init (it is a subreaper) and records the exit code atomically, so containers
keep running and keep being recorded while the daemon is down. See :mod:`dockyard.shim.monitor`
for the socket protocol.
"""
