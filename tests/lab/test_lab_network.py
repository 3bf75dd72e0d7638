"""From inside the node namespace: DNS, TLS and the firewall behave as each host's spec says."""

from __future__ import annotations

import json

import pytest

from aksflight.lab import LabState, exec_in_node, status
from tests.lab.conftest import LabFactory
from tests.lab.lab_support import node_python, root_links

pytestmark = pytest.mark.lab

OPEN = "open.example.com"
DROPPED = "dropped.example.com"
REJECTED = "rejected.example.com"
MISSING = "missing.example.com"
PRIVATE = "private.example.com"
PRIVATE_ENDPOINT = "acct.blob.core.windows.net"
WRONG_CA = "inspected.example.com"
DATABASE = "db.example.com"

RESOLVE = """
import json, sys, time
import dns.exception, dns.resolver
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [sys.argv[1]]
resolver.lifetime = float(sys.argv[4])
started = time.monotonic()
try:
    answer = resolver.resolve(sys.argv[2], sys.argv[3])
    result = {
        "status": "ok",
        "addresses": [r.to_text() for r in answer],
        "canonical": answer.canonical_name.to_text(),
        "chain": [
            (rr.name.to_text(), dns.rdatatype.to_text(rr.rdtype), [r.to_text() for r in rr])
            for rr in answer.response.answer
        ],
    }
except dns.resolver.NXDOMAIN:
    result = {"status": "nxdomain"}
except dns.resolver.NoAnswer:
    result = {"status": "no-answer"}
except dns.exception.Timeout:
    result = {"status": "timeout"}
result["elapsed"] = time.monotonic() - started
print(json.dumps(result))
"""

CONNECT = """
import json, socket, ssl, sys, time
address, port, name, cafile, timeout = sys.argv[1:6]
port, timeout = int(port), float(timeout)
started = time.monotonic()
result = {}
try:
    sock = socket.create_connection((address, port), timeout=timeout)
    if cafile != "-":
        context = ssl.create_default_context(cafile=cafile)
        with context.wrap_socket(sock, server_hostname=name) as tls:
            result["issuer"] = dict(x[0] for x in tls.getpeercert()["issuer"])
            for _ in range(2):  # two requests on one connection: keep-alive must work
                tls.sendall(f"GET /probe HTTP/1.1\\r\\nHost: {name}\\r\\n\\r\\n".encode())
                head = b""
                while b"\\r\\n\\r\\n" not in head:
                    head += tls.recv(4096)
                header, _, body = head.partition(b"\\r\\n\\r\\n")
                length = int(header.lower().split(b"content-length: ")[1].split(b"\\r\\n")[0])
                while len(body) < length:
                    body += tls.recv(4096)
                result.setdefault("responses", []).append(
                    [header.split(b"\\r\\n")[0].decode(), body.decode()]
                )
    else:
        sock.close()
    result["status"] = "connected"
except ssl.SSLCertVerificationError as exc:
    result["status"] = "untrusted"
    result["reason"] = exc.verify_message
except ConnectionRefusedError:
    result["status"] = "refused"
except (TimeoutError, socket.timeout):
    result["status"] = "timeout"
result["elapsed"] = time.monotonic() - started
print(json.dumps(result))
"""


def resolve(state: LabState, name: str, rdtype: str = "A", lifetime: float = 2.0) -> dict:
    completed = node_python(state, RESOLVE, state.nameserver, name, rdtype, str(lifetime))
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def connect(
    state: LabState, name: str, port: int = 443, cafile: str | None = None, timeout: float = 1.0
) -> dict:
    address = state.hosts[name]
    completed = node_python(state, CONNECT, address, str(port), name, cafile or "-", str(timeout))
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def lab(make_module_lab: LabFactory) -> LabState:
    return make_module_lab(
        [
            (OPEN, (443,)),
            (DROPPED, (443,)),
            (REJECTED, (443,)),
            (MISSING, (443,)),
            (PRIVATE, (443,)),
            (PRIVATE_ENDPOINT, (443,)),
            (WRONG_CA, (443,)),
            (DATABASE, (5432,)),
        ],
        drop=[DROPPED],
        reject=[REJECTED],
        nxdomain=[MISSING],
        private=[PRIVATE],
        privatelink=[PRIVATE_ENDPOINT],
        other_ca=[WRONG_CA],
    )


def test_status_reports_the_lab_running(lab: LabState) -> None:
    lab_status = status(lab.name, lab.state_dir)
    assert lab_status.running
    assert lab_status.missing_namespaces == []
    assert lab_status.processes == {"dnsmasq": True, "endpoints-0": True}


def test_lab_is_not_linked_to_the_root_namespace(lab: LabState) -> None:
    assert f"{lab.name}-" not in root_links()
    routes = exec_in_node(lab, ["ip", "-4", "route"]).stdout.splitlines()
    assert routes[0].split() == ["default", "via", lab.node_gateway, "dev", f"{lab.name}-nf"]
    assert len(routes) == 2  # the default route and the node's own /24, nothing else


def test_a_name_resolves_to_its_own_address(lab: LabState) -> None:
    answer = resolve(lab, OPEN)
    assert answer["status"] == "ok"
    assert answer["addresses"] == [lab.hosts[OPEN]]
    assert lab.hosts[OPEN] != lab.hosts[DROPPED]


def test_aaaa_is_an_empty_answer_not_an_error(lab: LabState) -> None:
    assert resolve(lab, OPEN, "AAAA")["status"] == "no-answer"


def test_names_outside_the_lab_are_nxdomain(lab: LabState) -> None:
    assert resolve(lab, "not-in-the-lab.example.org")["status"] == "nxdomain"


def test_system_resolver_in_the_node_is_the_lab_resolver(lab: LabState) -> None:
    code = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))"
    completed = node_python(lab, code, OPEN)
    assert completed.stdout.strip() == lab.hosts[OPEN], completed.stderr


def test_open_host_serves_https_with_the_lab_ca(lab: LabState) -> None:
    result = connect(lab, OPEN, cafile=lab.ca_bundle)
    assert result["status"] == "connected"
    assert result["issuer"]["organizationName"] == "aksflight lab CA"
    assert [status_line for status_line, _ in result["responses"]] == ["HTTP/1.1 200 OK"] * 2
    assert OPEN in result["responses"][0][1]


def test_dropped_host_times_out(lab: LabState) -> None:
    result = connect(lab, DROPPED, timeout=0.5)
    assert result["status"] == "timeout"
    assert result["elapsed"] >= 0.45


def test_rejected_host_is_refused_at_once(lab: LabState) -> None:
    result = connect(lab, REJECTED, timeout=2.0)
    assert result["status"] == "refused"
    assert result["elapsed"] < 0.1


def test_nxdomain_host_does_not_resolve(lab: LabState) -> None:
    assert resolve(lab, MISSING)["status"] == "nxdomain"


def test_private_answer_is_a_private_address_outside_the_node_subnet(lab: LabState) -> None:
    answer = resolve(lab, PRIVATE)
    assert answer["addresses"] == [lab.hosts[PRIVATE]]
    assert answer["addresses"][0].startswith("10.")
    assert not answer["addresses"][0].startswith("10.240.")
    assert connect(lab, PRIVATE, cafile=lab.ca_bundle)["status"] == "connected"


def test_public_answer_is_from_the_documentation_ranges(lab: LabState) -> None:
    assert resolve(lab, OPEN)["addresses"][0].startswith(("198.51.100.", "203.0.113."))


def test_private_endpoint_answers_through_the_privatelink_cname(lab: LabState) -> None:
    answer = resolve(lab, PRIVATE_ENDPOINT)
    target = "acct.privatelink.blob.core.windows.net."
    assert answer["canonical"] == target
    assert answer["chain"] == [
        [f"{PRIVATE_ENDPOINT}.", "CNAME", [target]],
        [target, "A", [lab.hosts[PRIVATE_ENDPOINT]]],
    ]
    assert lab.hosts[PRIVATE_ENDPOINT].startswith("10.10.")
    assert connect(lab, PRIVATE_ENDPOINT, cafile=lab.ca_bundle)["status"] == "connected"


def test_certificate_from_another_ca_fails_verification(lab: LabState) -> None:
    result = connect(lab, WRONG_CA, cafile=lab.ca_bundle)
    assert result["status"] == "untrusted"
    assert "issuer" in result["reason"]
    trusting_the_other_ca = connect(lab, WRONG_CA, cafile=lab.other_ca_bundle)
    assert trusting_the_other_ca["status"] == "connected"
    assert trusting_the_other_ca["issuer"]["organizationName"] == "aksflight untrusted CA"


def test_plain_tcp_port_accepts_connections(lab: LabState) -> None:
    assert connect(lab, DATABASE, port=5432)["status"] == "connected"
    assert connect(lab, DATABASE, port=443)["status"] == "refused"


def test_dns_drop_times_out_on_the_server_side(make_lab: LabFactory) -> None:
    state = make_lab([(OPEN, (443,))], dns_timeout=True)
    answer = resolve(state, OPEN, lifetime=1.0)
    assert answer["status"] == "timeout"
    assert answer["elapsed"] >= 0.9
    assert connect(state, OPEN, cafile=state.ca_bundle)["status"] == "connected"
