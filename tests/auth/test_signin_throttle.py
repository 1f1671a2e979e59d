"""Sign-in nobody can lock: device cookies, addresses by /64, and a bound on password hashes."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any, Literal, TypeVar

import anyio
import httpx
import pytest
from argon2 import PasswordHasher

from inventory import security
from inventory.auth import devices
from inventory.auth.throttle import address_group
from inventory.errors import Overloaded
from inventory.models import Role
from inventory.users import service as users
from inventory.users.schemas import UserCreate
from tests.helpers import API, assert_problem, login

T = TypeVar("T")
PROXY = "10.0.0.1"
OFFICE = "198.51.100.10"


def with_device(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{devices.COOKIE_NAME}={cookie}"}


async def sign_in(http: httpx.AsyncClient, email: str, password: str, **kwargs: Any) -> int:
    form = {"username": email, "password": password}
    return (await http.post(f"{API}/auth/token", data=form, **kwargs)).status_code


async def fail(http: httpx.AsyncClient, email: str, times: int) -> list[int]:
    return [await sign_in(http, email, f"wrong-password-{n}") for n in range(times)]


# --- the owner keeps signing in while someone guesses ---


async def test_the_owner_signs_in_at_once_while_a_stranger_guesses(make_app, connect, accounts):
    app = make_app()
    admin = accounts[Role.admin]
    owner = await connect(app, OFFICE)
    assert await sign_in(owner, admin.email, admin.password) == 200  # leaves a device cookie
    assert owner.cookies.get(devices.COOKIE_NAME)

    # 30 wrong passwords within the minute, from the owner's own (office) address.
    attacker = await connect(app, OFFICE)
    statuses = await fail(attacker, admin.email, 30)
    assert statuses == [401] * 10 + [429] * 20
    stranger = await connect(app, "203.0.113.50")
    assert await sign_in(stranger, admin.email, admin.password) == 429  # strangers are held

    answer = await owner.post(
        f"{API}/auth/token", data={"username": admin.email, "password": admin.password}
    )
    assert answer.status_code == 200, answer.text
    me = await owner.get(
        f"{API}/users/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"}
    )
    assert me.json()["email"] == admin.email
    # Still so after more guesses: the attack never reaches the device's own count.
    await fail(attacker, admin.email, 5)
    assert await sign_in(owner, admin.email, admin.password) == 200


async def test_a_device_that_fails_too_often_is_locked_and_nothing_else(
    make_app, connect, accounts
):
    app = make_app()
    manager = accounts[Role.manager]
    laptop, phone = await connect(app, OFFICE), await connect(app, "192.0.2.44")
    assert await sign_in(laptop, manager.email, manager.password) == 200
    assert await sign_in(phone, manager.email, manager.password) == 200

    assert await fail(laptop, manager.email, 10) == [401] * 10
    refused = await laptop.post(
        f"{API}/auth/token", data={"username": manager.email, "password": manager.password}
    )
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The laptop's failures were its own: the phone, a stranger at the same address and the
    # account are untouched.
    assert await sign_in(phone, manager.email, manager.password) == 200
    same_office = await connect(app, OFFICE)
    assert await sign_in(same_office, manager.email, manager.password) == 200


async def test_a_device_cookie_spares_only_the_account_it_names(make_app, connect, accounts):
    app = make_app()
    admin, viewer = accounts[Role.admin], accounts[Role.viewer]
    viewers_browser = await connect(app, "192.0.2.80")
    assert await sign_in(viewers_browser, viewer.email, viewer.password) == 200
    attacker = await connect(app, "203.0.113.66")
    await fail(attacker, admin.email, 10)

    # The viewer's device is a stranger to the admin account.
    assert await sign_in(viewers_browser, admin.email, admin.password) == 429
    assert await sign_in(viewers_browser, viewer.email, viewer.password) == 200


async def test_a_tampered_or_foreign_device_cookie_gives_no_exemption(
    make_app, connect, accounts, settings
):
    app = make_app()
    admin, viewer = accounts[Role.admin], accounts[Role.viewer]
    admins_browser, viewers_browser = await connect(app), await connect(app, "192.0.2.80")
    assert await sign_in(admins_browser, admin.email, admin.password) == 200
    assert await sign_in(viewers_browser, viewer.email, viewer.password) == 200
    admins_cookie = admins_browser.cookies[devices.COOKIE_NAME]
    viewers_cookie = viewers_browser.cookies[devices.COOKIE_NAME]
    await fail(await connect(app, "203.0.113.66"), admin.email, 10)

    version, _, nonce, issued, mac = viewers_cookie.split(".")
    claims_admin = f"{version}.{admins_cookie.split('.')[1]}.{nonce}.{issued}.{mac}"
    flipped = admins_cookie[:-2] + ("A" if admins_cookie[-2] != "A" else "B") + admins_cookie[-1]
    forged_with_published_key = devices.issue(admin.email, "dev-only-insecure-secret-key")
    other_secret = devices.issue(admin.email, "another-service's-secret-key-0123456789")
    for cookie in (
        viewers_cookie,
        claims_admin,
        flipped,
        forged_with_published_key,
        other_secret,
        "v1.garbage",
        "x" * 5000,
    ):
        fresh = await connect(app, "192.0.2.99")
        status = await sign_in(fresh, admin.email, admin.password, headers=with_device(cookie))
        assert status == 429, cookie
    fresh = await connect(app, "192.0.2.99")
    genuine = with_device(admins_cookie)
    assert await sign_in(fresh, admin.email, admin.password, headers=genuine) == 200
    assert devices.read(admins_cookie, settings.secret_key.get_secret_value()) is not None


async def test_the_device_cookie_is_httponly_secure_strict_and_scoped(
    anonymous, accounts, settings
):
    clerk = accounts[Role.clerk]
    response = await login(anonymous, clerk.email, clerk.password)
    assert response.status_code == 200
    [header] = [v for v in response.headers.get_list("set-cookie") if "inventory_device=" in v]
    attributes = {part.strip().split("=")[0].lower(): part for part in header.split(";")[1:]}
    assert "httponly" in attributes
    assert "secure" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=strict"
    assert attributes["path"].strip() == "Path=/api/v1/auth"
    assert attributes["max-age"].strip() == f"Max-Age={365 * 24 * 3600}"
    cookie = SimpleCookie(header)[devices.COOKIE_NAME].value
    device = devices.read(cookie, settings.secret_key.get_secret_value())
    assert device is not None
    assert device.account == clerk.email
    assert clerk.password not in header
    # Neither a failure nor a refusal sets one; it is no access token either.
    failed = await login(anonymous, clerk.email, "wrong-password")
    assert "inventory_device" not in failed.headers.get("set-cookie", "")
    me = await anonymous.get(f"{API}/users/me", headers={"Authorization": f"Bearer {cookie}"})
    assert_problem(me, 401)


async def test_every_sign_in_gets_a_new_device_nonce(connect, make_app, accounts, settings):
    http = await connect(make_app())
    clerk = accounts[Role.clerk]
    key = settings.secret_key.get_secret_value()
    nonces = set()
    for _ in range(3):
        assert await sign_in(http, clerk.email, clerk.password) == 200
        device = devices.read(http.cookies[devices.COOKIE_NAME], key)
        assert device is not None
        nonces.add(device.nonce)
    assert len(nonces) == 3


@pytest.mark.backend("postgresql")
async def test_a_devices_failures_are_counted_across_workers(make_app, connect, accounts):
    first_app, second_app = make_app(), make_app()
    admin = accounts[Role.admin]
    first = await connect(first_app)
    assert await sign_in(first, admin.email, admin.password) == 200
    second = await connect(second_app)
    cookie = with_device(first.cookies[devices.COOKIE_NAME])
    for n in range(10):
        worker, headers = (first, None) if n % 2 else (second, cookie)
        assert await sign_in(worker, admin.email, "wrong-password", headers=headers) == 401
    assert await sign_in(first, admin.email, admin.password) == 429
    assert await sign_in(second, admin.email, admin.password, headers=cookie) == 429


# --- addresses ---


@pytest.mark.parametrize(
    ("host", "group"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("2001:DB8:0001:0002::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("testclient", "testclient"),
        ("unknown", "unknown"),
    ],
)
def test_addresses_are_grouped_ipv4_by_address_and_ipv6_by_64(host, group):
    assert address_group(host) == group


async def test_a_hundred_addresses_of_one_64_count_as_one(make_app, connect, accounts):
    """Through a proxy the service trusts, which passes each client's address on."""
    app = make_app()
    proxy = await connect(app, PROXY, trusted=PROXY)
    statuses: Counter[int] = Counter()
    for n in range(100):
        client = f"2001:db8:abcd:12:{n:x}:{n:x}:{n:x}:1"
        status = await sign_in(
            proxy, f"guess{n}@example.com", "password", headers={"X-Forwarded-For": client}
        )
        statuses[status] += 1
    assert statuses == Counter({401: 10, 429: 90})
    admin = accounts[Role.admin]
    next_64 = {"X-Forwarded-For": "2001:db8:abcd:13::1"}
    assert await sign_in(proxy, admin.email, admin.password, headers=next_64) == 200
    mapped = {"X-Forwarded-For": "::ffff:192.0.2.9"}
    assert await sign_in(proxy, admin.email, admin.password, headers=mapped) == 200


async def test_behind_an_untrusted_proxy_every_client_is_the_proxy(make_app, connect, accounts):
    """X-Forwarded-For from a peer outside --forwarded-allow-ips is ignored, so the
    proxy's clients share its limits; an owner with a device cookie still gets in."""
    app = make_app()
    admin = accounts[Role.admin]
    owner = await connect(app, PROXY, trusted="127.0.0.1")
    assert await sign_in(owner, admin.email, admin.password) == 200
    proxy = await connect(app, PROXY, trusted="127.0.0.1")
    for n in range(10):
        forwarded = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert await sign_in(proxy, f"guess{n}@example.com", "x", headers=forwarded) == 401
    viewer = accounts[Role.viewer]
    someone_else = {"X-Forwarded-For": "203.0.113.200"}
    assert await sign_in(proxy, viewer.email, viewer.password, headers=someone_else) == 429
    assert await sign_in(owner, admin.email, admin.password) == 200


# --- a bound on password hashes ---


class CountingHasher(PasswordHasher):
    """argon2 at its real cost (64 MiB), counting the hashes that run at once."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def _counted(self, work: Callable[[], T]) -> T:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            return work()
        finally:
            with self._lock:
                self.running -= 1

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        return self._counted(lambda: super(CountingHasher, self).verify(hash, password))

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        return self._counted(lambda: super(CountingHasher, self).hash(password, salt=salt))


class PeakMemory:
    """The process's peak resident memory over a block, in bytes: Linux's high-water mark,
    reset first (``clear_refs``), or else sampled every millisecond."""

    def __init__(self) -> None:
        self.growth = 0

    @staticmethod
    def _status(field: str) -> int:
        with open("/proc/self/status") as status:
            found = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
        assert found
        return int(found.group(1)) * 1024

    def __enter__(self) -> PeakMemory:
        self._before = self._status("VmRSS")
        self._stop = threading.Event()
        self._sampled = self._before
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            self._sampler: threading.Thread | None = None
        except OSError:
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._sampled = max(self._sampled, self._status("VmRSS"))

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._sampler is None:
            peak = self._status("VmHWM")
        else:
            self._sampler.join()
            peak = self._sampled
        self.growth = peak - self._before


@pytest.fixture
def real_hashing(monkeypatch) -> CountingHasher:
    hasher = CountingHasher()
    monkeypatch.setattr(security, "password_hasher", hasher)
    return hasher


async def test_forty_sign_ins_at_once_run_at_most_the_configured_hashes(
    make_app, connect, accounts, real_hashing, settings
):
    app = make_app()
    await connect(app)  # starts the app
    people = []
    async with app.state.db.unit_of_work(write=True) as uow:
        for n in range(4):
            data = UserCreate.model_validate(
                {
                    "email": f"crowd{n}@example.com",
                    "password": f"crowd-password-{n}",
                    "role": "viewer",
                }
            )
            people.append((await users.create_user(uow.session, data)).email)
    real_hashing.peak = 0
    clients: list[httpx.AsyncClient] = [
        await connect(app, f"198.51.100.{n + 1}") for n in range(40)
    ]

    async def one(n: int) -> httpx.Response:
        email = people[n % 4]
        return await clients[n].post(
            f"{API}/auth/token", data={"username": email, "password": f"crowd-password-{n % 4}"}
        )

    with PeakMemory() as memory:
        answers = await asyncio.gather(*(one(n) for n in range(40)))

    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[200] >= settings.max_concurrent_hashes, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert_problem(answer, 503)
            assert answer.json()["type"] == "urn:inventory:problem:overloaded"
            assert answer.headers["retry-after"] == "1"
    assert real_hashing.peak == settings.max_concurrent_hashes == 4
    # Each hash holds 64 MiB: forty at once would be 2.5 GiB. The four allowed take 256 MiB;
    # twice that leaves room for the threads, buffers and allocator around them.
    assert memory.growth < 2 * settings.max_concurrent_hashes * 64 * 2**20, memory.growth


async def test_past_the_bound_a_sign_in_waits_briefly_then_gets_503(make_app, connect, accounts):
    app = make_app(max_concurrent_hashes=1)
    admin, viewer = accounts[Role.admin], accounts[Role.viewer]
    first, second = await connect(app), await connect(app, "192.0.2.30")
    app.state.hash_gate.wait = 0.2  # the documented 2 s, shortened for the test
    release = threading.Event()
    started = threading.Event()
    hasher = security.password_hasher

    class Held:
        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

        def verify(self, hashed: str, password: str) -> bool:
            started.set()
            release.wait(10)
            return hasher.verify(hashed, password)

    security.password_hasher = Held()  # type: ignore[assignment]
    try:
        held = asyncio.ensure_future(login(first, admin.email, admin.password))
        await anyio.to_thread.run_sync(started.wait, 10)
        busy = await login(second, viewer.email, viewer.password)
        body = assert_problem(busy, 503)
        assert body["type"] == "urn:inventory:problem:overloaded"
        assert busy.headers["retry-after"] == "1"
        created = await second.post(
            f"{API}/users",
            headers=accounts[Role.admin].headers,
            json={"email": "new@example.com", "password": "new-password-1", "role": "viewer"},
        )
        assert_problem(created, 503)  # creating a user hashes too
        release.set()
        assert (await held).status_code == 200
    finally:
        release.set()
        security.password_hasher = hasher
    # The refused attempts were not counted as failures.
    for _ in range(10):
        assert await sign_in(second, viewer.email, "wrong-password") == 401


class Concurrency:
    """A unit of work that notes how many of its kind run at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def __call__(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.05)
        with self._lock:
            self.running -= 1


async def test_each_gate_bounds_its_own_hashes_and_refuses_after_its_wait():
    mine, theirs = Concurrency(), Concurrency()
    gate, other_apps_gate = security.HashGate(2), security.HashGate(1)
    await asyncio.gather(
        *(gate.run(mine) for _ in range(6)), *(other_apps_gate.run(theirs) for _ in range(3))
    )
    assert (mine.peak, theirs.peak) == (2, 1)
    assert gate.running == 0

    release = threading.Event()
    short = security.HashGate(1, wait=0.05)
    holder = asyncio.ensure_future(short.run(release.wait, 5))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded):
        await short.run(mine)
    release.set()
    assert await holder is True
    await short.run(mine)  # the slot is free again


def test_a_device_cookie_lasts_a_year_from_its_sign_in():
    key = "a-service-secret-key-for-the-unit-test-0123"
    issued = 1_800_000_000
    cookie = devices.issue("owner@example.com", key, now=issued)
    device = devices.read(cookie, key, now=issued + devices.LIFETIME_SECONDS - 1)
    assert device is not None
    assert (device.account, device.issued_at) == ("owner@example.com", issued)
    assert devices.read(cookie, key, now=issued + devices.LIFETIME_SECONDS) is None
    assert devices.read(cookie, key, now=issued - 3600) is None  # from the future
    assert devices.trusted_nonce(cookie, "owner@example.com", key) is None  # long expired
    fresh = devices.issue("owner@example.com", key)
    assert devices.trusted_nonce(fresh, "owner@example.com", key) == fresh.split(".")[2]
    assert devices.trusted_nonce(fresh, "other@example.com", key) is None
    assert devices.trusted_nonce(None, "owner@example.com", key) is None
