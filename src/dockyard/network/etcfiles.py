"""Contents of a container's /etc/hosts, /etc/resolv.conf and /etc/hostname (Docker's rules).

resolv.conf: on the default bridge (and ``none``), the host's file minus loopback nameservers
(they are unreachable from the container; when only systemd-resolved's 127.0.0.53 is left, its
real upstreams come from /run/systemd/resolve/resolv.conf), then Google's servers if nothing
remains. On user-defined networks the only nameserver is the embedded DNS at 127.0.0.11 (the
host's/``--dns`` servers become its upstreams). ``--dns``, ``--dns-search`` and ``--dns-option``
replace the corresponding host lines. In ``host`` mode the host's file is used as is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ResolvConf",
    "hostname_file",
    "hosts_file",
    "parse_resolv_conf",
    "read_host_resolv_conf",
    "resolv_conf_file",
]

DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")
DEFAULT_DNS6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")
SYSTEMD_RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    extra: tuple[str, ...] = field(default=(), compare=False)


def parse_resolv_conf(text: str) -> ResolvConf:
    ns: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            ns.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            options.extend(words[1:])
    return ResolvConf(tuple(ns), tuple(search), tuple(options))


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def read_host_resolv_conf(path: str = "/etc/resolv.conf",
                          resolved_path: str = SYSTEMD_RESOLVED_CONF) -> ResolvConf:
    """The host's resolver config; a systemd-resolved stub is replaced by its upstream list."""
    try:
        with open(path) as f:
            conf = parse_resolv_conf(f.read())
    except FileNotFoundError:
        return ResolvConf()
    if conf.nameservers and all(_is_loopback(n) for n in conf.nameservers):
        try:
            with open(resolved_path) as f:
                real = parse_resolv_conf(f.read())
        except FileNotFoundError:
            return conf
        return ResolvConf(real.nameservers, conf.search or real.search, conf.options)
    return conf


def resolv_conf_file(host: ResolvConf, *, dns: Sequence[str] = (), dns_search: Sequence[str] = (),
                     dns_options: Sequence[str] = (), embedded: bool = False,
                     ipv6: bool = False) -> str:
    search = tuple(dns_search) or host.search
    options = tuple(dns_options) or host.options
    if embedded:
        servers: tuple[str, ...] = ("127.0.0.11",)
        if "ndots:0" not in options and not any(o.startswith("ndots:") for o in options):
            options = (*options, "ndots:0")
    else:
        servers = tuple(dns) or tuple(n for n in host.nameservers if not _is_loopback(n))
        if not ipv6 and not dns:
            servers = tuple(n for n in servers if ":" not in n)
        if not servers:
            servers = DEFAULT_DNS + (DEFAULT_DNS6 if ipv6 else ())
    lines = [f"nameserver {n}" for n in servers]
    if search and search != (".",):
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


_HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def hosts_file(hostname: str, addresses: Iterable[str] = (), *, domainname: str = "",
               extra_hosts: Iterable[str] = (), aliases: Iterable[str] = ()) -> str:
    """``extra_hosts`` are ``--add-host`` values ``name:ip`` (``host-gateway`` already resolved)."""
    out = [_HOSTS_HEADER]
    for entry in extra_hosts:
        name, sep, ip = entry.partition(":")
        if not sep:
            name, sep, ip = entry.partition("=")
        out.append(f"{ip.strip('[]')}\t{name}\n")
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    extra = " ".join(a for a in aliases if a != hostname)
    for ip in addresses:
        out.append(f"{ip}\t{names}{' ' + extra if extra else ''}\n")
    return "".join(out)


def hostname_file(hostname: str) -> str:
    return hostname + "\n"
