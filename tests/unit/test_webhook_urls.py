"""The SSRF guard: which addresses outbound requests may reach (utils.addresses) and which webhook URLs the
API accepts (services.webhook_urls), with DNS stood in by a resolver that says what each test needs."""

from __future__ import annotations

import ipaddress

import pytest

from models.errors import InvalidWebhookUrl
from services.webhook_urls import check_url
from utils import addresses
from utils.addresses import ForbiddenDestination, classify

#: What the stand-in DNS answers (anything else does not resolve).
DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "localhost": ["127.0.0.1", "::1"],
    "internal.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "mixed.example.com": ["93.184.216.34", "192.168.1.10"],
    "mapped.example.com": ["::ffff:169.254.169.254"],
    "xn--bcher-kva.example": ["93.184.216.35"],
}


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    answers = dict(DNS)

    def resolve(host: str, port: int) -> list[str]:
        if host in answers:
            return answers[host]
        try:
            return [str(ipaddress.ip_address(host))]  # a literal resolves to itself, as getaddrinfo does
        except ValueError:
            raise OSError("Name or service not known") from None

    monkeypatch.setattr(addresses, "resolver", resolve)
    return answers


# -------------------------------------------------------------------------------------------- addresses
@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "not public"),  # carrier-grade NAT (shared address space)
        ("100.100.100.200", "not public"),  # Alibaba Cloud's metadata service
        ("169.254.169.254", "link-local"),  # the instance metadata service
        ("169.254.170.2", "link-local"),  # ECS task metadata
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),  # EC2's IPv6 metadata service (unique local)
        ("fc00::1", "private"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - the case under test
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved (Python counts it private too)
        ("255.255.255.255", "private"),
        ("192.0.2.1", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:93.184.216.34", None),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("2002:5db8:d822::1", None),  # 6to4 of a public address
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo, client 10.0.0.1
        ("2001:db8::1", "private"),  # documentation
    ],
)
def test_every_kind_of_address_that_is_not_the_public_internet_is_named(address: str, kind: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == kind


def test_loopback_is_allowed_only_when_asked_and_nothing_else_with_it() -> None:
    loopback, private = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.0.0.1")
    assert not addresses.allowed(loopback, allow_loopback=False)
    assert addresses.allowed(loopback, allow_loopback=True)
    assert not addresses.allowed(private, allow_loopback=True)
    assert not addresses.allowed(ipaddress.ip_address("0.0.0.0"), allow_loopback=True)  # noqa: S104


def test_check_answers_the_first_address_and_refuses_a_name_with_any_forbidden_one() -> None:
    assert addresses.check("hooks.example.com", 443, allow_loopback=False) == "93.184.216.34"
    with pytest.raises(ForbiddenDestination, match="private"):
        addresses.check("mixed.example.com", 443, allow_loopback=False)
    with pytest.raises(ForbiddenDestination, match="does not resolve"):
        addresses.check("nowhere.example.com", 443, allow_loopback=False)
    with pytest.raises(ForbiddenDestination, match="loopback addresses only"):
        addresses.check("hooks.example.com", 80, allow_loopback=True, require_loopback=True)
    assert addresses.check("localhost", 80, allow_loopback=True, require_loopback=True) == "127.0.0.1"


def test_the_real_resolver_answers_addresses_once_each() -> None:
    assert addresses.system_resolver("127.0.0.1", 443) == ["127.0.0.1"]


# ------------------------------------------------------------------------------------------------- URLs
def test_an_https_url_to_a_public_host_gives_where_to_connect() -> None:
    target = check_url("https://hooks.example.com/in/ld?tenant=7", allow_loopback=False)
    assert (target.scheme, target.host, target.port, target.path, target.address) == (
        "https",
        "hooks.example.com",
        443,
        "/in/ld?tenant=7",
        "93.184.216.34",
    )
    assert check_url("https://v6.example.com:8443", allow_loopback=False).port == 8443
    assert check_url("https://v6.example.com", allow_loopback=False).path == "/"
    assert check_url("https://[2606:4700:4700::1111]/x", allow_loopback=False).address == "2606:4700:4700::1111"
    assert check_url("https://bücher.example/", allow_loopback=False).host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/", "https://"),
        ("ftp://hooks.example.com/", "https://"),
        ("hooks.example.com/in", "https://"),
        ("//hooks.example.com/in", "https://"),
        ("https:///in", "no host"),
        ("https://user:pass@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://hooks.example.com/a b", "without spaces"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("https://hooks.example.com:0/", "port"),
        ("https://nowhere.example.com/", "does not resolve"),
        ("https://internal.example.com/", "private"),
        ("https://metadata.example.com/latest/meta-data/", "link-local"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fd00:ec2::254]/", "private"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://mapped.example.com/", "link-local"),
        ("https://mixed.example.com/", "private"),
        ("https://127.0.0.1/", "loopback"),
        ("https://localhost/", "loopback"),
        ("https://[::1]:8443/", "loopback"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://" + "a" * 2050 + ".com/", "at most 2048"),
    ],
)
def test_urls_that_could_reach_anything_but_a_public_https_endpoint_are_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidWebhookUrl) as refused:
        check_url(url, allow_loopback=False)
    assert refused.value.code == "INVALID_WEBHOOK_URL"
    assert refused.value.details["field"] == "url"
    assert reason in refused.value.details["reason"]
    assert "93.184" not in refused.value.message, "never what the host resolved to"


def test_with_loopback_allowed_http_and_https_reach_loopback_and_nothing_private() -> None:
    assert check_url("http://127.0.0.1:8080/hook", allow_loopback=True).address == "127.0.0.1"
    assert check_url("http://localhost:8080/hook", allow_loopback=True).port == 8080
    assert check_url("https://localhost:8443/hook", allow_loopback=True).scheme == "https"
    assert check_url("https://hooks.example.com/", allow_loopback=True).address == "93.184.216.34"
    for url in ("http://hooks.example.com/", "http://10.0.0.1/", "https://10.0.0.1/", "http://169.254.169.254/"):
        with pytest.raises(InvalidWebhookUrl):
            check_url(url, allow_loopback=True)


def test_dns_answering_differently_later_is_seen_by_the_next_check(dns: dict[str, list[str]]) -> None:
    """What delivery relies on: a check resolves anew, so a host that turned private is refused."""
    assert check_url("https://hooks.example.com/", allow_loopback=False).address == "93.184.216.34"
    dns["hooks.example.com"] = ["169.254.169.254"]
    with pytest.raises(InvalidWebhookUrl, match="link-local"):
        check_url("https://hooks.example.com/", allow_loopback=False)
