"""What the probes of one run share: TLS contexts, the resolver, HTTP transports, the
Kubernetes client. Built once per run, because loading a trust store or a kubeconfig
costs more CPU than a probe."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Collection, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx

from preflight._streams import ConnectionPark
from preflight._stub import StubResolver
from preflight.options import ProbeOptions

if TYPE_CHECKING:
    import dns.asyncresolver

from rules.model import Check, CheckKind, Observation


def proxy_from_env(env: Mapping[str, str]) -> str | None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def bypasses_proxy(host: str, no_proxy: str) -> bool:
    """Whether `NO_PROXY` exempts `host` (curl's rules: `*`, domain suffixes, IPs, CIDRs)."""
    host = host.lower().rstrip(".")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if entry.startswith("[") and "]" in entry:
            entry = entry[1 : entry.index("]")]
        elif entry.count(":") == 1:
            entry = entry.partition(":")[0]
        entry = entry.removeprefix("*").lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


class ProbeContext:
    """Per-run state. `observations` is filled by the runner as checks finish, so a probe
    can read what its prerequisites saw (the addresses DNS found, the one TCP reached)."""

    def __init__(self, options: ProbeOptions, planned: Collection[str] = ()) -> None:
        self.options = options
        self.planned = frozenset(planned)
        self.park = ConnectionPark()
        self.clock = options.clock
        self.timeout = options.timeout
        self.observations: dict[str, Observation] = {}
        self._transports: dict[str, httpx.AsyncBaseTransport] = {}
        # Read once per run: a probe per check looked up four variables each time.
        env = options.env
        self._proxy = options.proxy or proxy_from_env(env)
        self._no_proxy = env.get("NO_PROXY", env.get("no_proxy", ""))
        self._proxy_of: dict[str, str | None] = {}
        # Certificate evidence by DER: endpoints behind one certificate parse it once.
        self.certificates: dict[bytes, dict[str, Any]] = {}
        self._kube_lock = asyncio.Lock()
        self._kube_client: Any = None
        self._kube_loaded = False
        self.kube_skip_reason = ""

    def continues_after(self, check: Check) -> bool:
        """Whether the next check of the chain will run on this check's connection: TCP →
        TLS, TCP → plain HTTP, TLS → HTTP (not through a proxy or a test transport)."""
        port = check.port
        tls, http = f"tls:{check.target}:{port}", f"http:{check.target}:{port}"
        direct_http = (
            http in self.planned
            and self.options.http_transport is None
            and self.proxy_for(check.target) is None
        )
        if check.kind is CheckKind.TCP:
            return tls in self.planned or direct_http
        if check.kind is CheckKind.TLS:
            return direct_http
        return False

    # -- TLS -----------------------------------------------------------------------
    @cached_property
    def ssl_verify(self) -> ssl.SSLContext:
        """Verifies against the system trust store, or only the given CA bundle."""
        bundle = self.options.ca_bundle
        return ssl.create_default_context(cafile=str(bundle) if bundle is not None else None)

    @cached_property
    def ssl_inspect(self) -> ssl.SSLContext:
        """Accepts any certificate: only to record who issued one that failed verification."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    # -- DNS -----------------------------------------------------------------------
    @cached_property
    def stub_resolver(self) -> StubResolver | None:
        """The run's own client for the given nameservers (None: the system's resolver
        or an injected one answers, through dnspython's `Resolver`)."""
        if self.options.resolver_factory is not None or not self.options.nameserver_endpoints:
            return None
        return StubResolver(self.options.nameserver_endpoints)

    @cached_property
    def resolver(self) -> dns.asyncresolver.Resolver:
        if self.options.resolver_factory is not None:
            return self.options.resolver_factory(self.options)
        return default_resolver(self.options)

    # -- HTTP ----------------------------------------------------------------------
    def proxy_for(self, host: str) -> str | None:
        """The proxy a request to `host` goes through: `--proxy`, else the environment's,
        unless `NO_PROXY` exempts the host."""
        if self._proxy is None:
            return None
        if host not in self._proxy_of:
            exempt = bypasses_proxy(host, self._no_proxy)
            self._proxy_of[host] = None if exempt else self._proxy
        return self._proxy_of[host]

    def http_transport(self, proxy: str | None) -> httpx.AsyncBaseTransport:
        """The injected transport, or the one for requests through `proxy`, with
        keep-alive off so every probe has its own connection. (Direct requests go out
        on the connection the TLS check left, without httpx.)"""
        if self.options.http_transport is not None:
            return self.options.http_transport
        if proxy is None:
            raise ValueError("direct requests do not go through an httpx transport")
        transport = self._transports.get(proxy)
        if transport is None:
            transport = httpx.AsyncHTTPTransport(
                verify=self.ssl_verify,
                proxy=proxy,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                retries=0,
            )
            self._transports[proxy] = transport
        return transport

    # -- Kubernetes ----------------------------------------------------------------
    async def kube_client(self) -> Any:
        """The shared `ApiClient`, or None (then `kube_skip_reason` says why)."""
        async with self._kube_lock:
            if not self._kube_loaded:
                from preflight.kube import load_client

                self._kube_loaded = True
                if self.options.kube_client_factory is not None:
                    self._kube_client = await self.options.kube_client_factory()
                    if self._kube_client is None:
                        self.kube_skip_reason = "no Kubernetes credentials were given"
                else:
                    self._kube_client, self.kube_skip_reason = await load_client(self.options)
            return self._kube_client

    async def aclose(self) -> None:
        self.park.close()
        stub = self.__dict__.get("stub_resolver")
        if stub is not None:
            await stub.aclose()
        for transport in self._transports.values():
            await transport.aclose()
        self._transports.clear()
        if self._kube_client is not None:
            await self._kube_client.close()
            self._kube_client = None


def default_resolver(options: ProbeOptions) -> dns.asyncresolver.Resolver:
    """The given nameservers (with their ports), or the system's resolver configuration."""
    import dns.asyncresolver
    import dns.nameserver

    if options.nameserver_endpoints:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(n.address, n.port) for n in options.nameserver_endpoints
        ]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = options.timeout
    resolver.timeout = options.timeout
    resolver.cache = None
    return resolver
