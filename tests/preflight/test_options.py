"""Bad probe options fail before anything runs, with one line naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.errors import OptionsError, PreflightError
from preflight.options import Nameserver, ProbeOptions, parse_nameserver


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.10", Nameserver("10.0.0.10", 53)),
        ("127.0.0.1:5353", Nameserver("127.0.0.1", 5353)),
        ("fd00::53", Nameserver("fd00::53", 53)),
        ("[fd00::53]:5353", Nameserver("fd00::53", 5353)),
    ],
)
def test_nameserver_with_and_without_port(text: str, expected: Nameserver) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("dns.example.com", "not an IP address"),
        ("10.0.0.300", "not an IP address"),
        ("10.0.0.1:0", "port must be a number from 1 to 65535"),
        ("10.0.0.1:99999", "port must be a number from 1 to 65535"),
        ("10.0.0.1:", "port must be a number from 1 to 65535"),
        ("[fd00::53", "[addr]:port"),
    ],
)
def test_bad_nameserver(text: str, problem: str) -> None:
    with pytest.raises(OptionsError) as caught:
        ProbeOptions(nameservers=[text])
    message = str(caught.value)
    assert message.startswith(f"nameserver {text!r}: ")
    assert problem in message
    assert "\n" not in message


def test_nameservers_as_one_string_is_refused() -> None:
    with pytest.raises(OptionsError, match=r"^nameservers: give a list"):
        ProbeOptions(nameservers="10.0.0.10")


def test_unreadable_ca_bundle(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(OptionsError) as caught:
        ProbeOptions(ca_bundle=missing)
    assert str(caught.value) == f"ca_bundle: cannot use {str(missing)!r}: No such file or directory"


def test_ca_bundle_without_a_certificate(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(OptionsError, match=r"^ca_bundle: cannot use .*: no PEM certificate$"):
        ProbeOptions(ca_bundle=junk)


def test_good_ca_bundle_is_kept(ca_bundle: Path) -> None:
    assert ProbeOptions(ca_bundle=str(ca_bundle)).ca_bundle == ca_bundle


@pytest.mark.parametrize(
    "url", ["proxy.corp:3128", "proxy.corp", "socks5://proxy:1080", "//proxy:3128"]
)
def test_proxy_without_a_usable_scheme(url: str) -> None:
    with pytest.raises(OptionsError) as caught:
        ProbeOptions(proxy=url)
    assert str(caught.value).startswith(f"proxy: {url!r} needs a scheme")


def test_proxy_with_a_bad_port() -> None:
    with pytest.raises(OptionsError, match="has a bad port"):
        ProbeOptions(proxy="http://proxy:http")


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 301, True])
def test_bad_timeout(timeout: float) -> None:
    with pytest.raises(OptionsError, match=r"^timeout: "):
        ProbeOptions(timeout=timeout)


@pytest.mark.parametrize("concurrency", [0, -3, 1.5, False])
def test_bad_concurrency(concurrency: int) -> None:
    with pytest.raises(OptionsError, match=r"^concurrency: "):
        ProbeOptions(concurrency=concurrency)


def test_bad_namespace() -> None:
    with pytest.raises(OptionsError, match=r"^namespace: 'Azure ML'"):
        ProbeOptions(namespace="Azure ML")


def test_unreadable_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match=r"^kubeconfig: cannot read"):
        ProbeOptions(kubeconfig=tmp_path / "nope")


def test_options_errors_are_preflight_errors() -> None:
    assert issubclass(OptionsError, PreflightError)
