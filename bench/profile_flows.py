"""Where each phone flow's time goes: its cost per request, statements, hottest functions.

    .venv/bin/python bench/profile_flows.py [--database-url URL] [--sizes 100 5000]
                                            [--repeat 40] [--top 25] [--flows badge card]
                                            [--instructions] [--accept-encoding ""]
                                            [--set COMPRESS_BR_LEVEL=2]

Seeds one event per size in a fresh database (a temporary SQLite file by default;
PostgreSQL with --database-url, whose public schema is dropped first), each with that many
people checked in, then runs each flow through the app's test client in this one process,
as deployed (CSRF on, rate limits in memory, poster lookups remembered): a check-in (GET
the form, POST it), the badge page's first view (its QR code already drawn in this process,
and new, drawn then), its refresh changed (the fragment) and unchanged (a 304), a card
(someone else's badge) and a connection request (the card, then the POST). Every phone
sends Accept-Encoding as Chrome on Android does, so what a page costs includes compressing
it (--accept-encoding "" for none). --set KEY=VALUE (VALUE as JSON) runs the app with a
setting changed, to compare with a run without it.

Prints per flow and size the statements sent (BEGIN included) and the cost of a request
(bench/meter.py): process CPU milliseconds, or with --instructions the instructions
executed, counted by valgrind's callgrind, which the machine's other load cannot change
(slow: a few minutes; run it with --repeat 10), with the few seconds' memos of a server
process (domain/caching.py) kept for the run, as at a busy door. On PostgreSQL the
server's own work is in neither. A bare Flask+SQLAlchemy one-row insert (bench/bare.py)
is measured the same way, and each cost is also given as a multiple of it; the last
column is the cost at the largest size over the smallest (1.0 is flat). With --top N, it
then prints each flow's N most expensive functions (cProfile, cumulative) at the largest
size.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from app import create_app  # noqa: E402
from bench import meter, pages  # noqa: E402
from bench.door import decode  # noqa: E402
from domain.db import db  # noqa: E402
from tests.statements import counting  # noqa: E402

SECRET_KEY = "bench-secret-" + "x" * 32
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
INTERESTS = ["sourdough", "marathons", "chess", "travel in asia", "jazz", "go", "climbing"]
people = itertools.count(1)
addresses = itertools.count(1)


CHROME_ON_ANDROID = "gzip, deflate, br, zstd"
settings: dict[str, object] = {}
accept_encoding = CHROME_ON_ANDROID


def build_app(url: str):
    return create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url, **settings})


def seed(app, sizes: list[int]) -> dict[int, str]:
    """Return, per size, the poster token of a fresh event with that crowd (as bench/pages.py
    seeds it)."""
    return {size: token for size, (_, token) in pages.seed(app, sizes).items()}


def phone(app):
    """A phone: its own cookie jar and its own address (rate limits are per address)."""
    number = next(addresses)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = (
        f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
    )
    if accept_encoding:
        client.environ_base["HTTP_ACCEPT_ENCODING"] = accept_encoding
    return client


def text(response) -> str:
    return decode(response.data, response.headers.get("Content-Encoding", ""))


def check_in(client, poster: str) -> str:
    """GET the poster's form and POST it as someone new; return the badge's path."""
    page = text(client.get(f"/e/{poster}"))
    number = next(people)
    response = client.post(
        f"/e/{poster}",
        data={
            "csrf_token": CSRF.search(page).group(1),  # type: ignore[union-attr]
            "name": f"Guest {number}",
            "email": f"guest{number}@example.org",
            "interests": ", ".join(INTERESTS[number % 7 : number % 7 + 2]),
            "share_profile": "y",
            "want_followups": "y",
        },
    )
    assert response.status_code == 303, response.status_code
    return response.headers["Location"].split("localhost", 1)[-1]


def flows(app, poster: str, repeat: int) -> Iterator[tuple[str, Callable[[int], object]]]:
    """Yield (name, step) per flow; step(n) runs the flow's n-th request."""
    phones = [phone(app) for _ in range(4)]
    badges = [check_in(p, poster) for p in phones]
    yield "check-in (GET + POST)", lambda n: check_in(phone(app), poster)
    yield "badge, first view", lambda n: phones[n % 4].get(badges[n % 4])
    yield "badge refresh, changed", lambda n: phones[n % 4].get(f"{badges[n % 4]}/live")
    yield "people to meet", lambda n: phones[n % 4].get(f"{badges[n % 4]}/live/people")
    # As a phone's page asks every few seconds, with the version it holds.
    held = [phones[i].get(f"{badges[i]}/live").headers["ETag"] for i in range(4)]
    yield (
        "badge refresh, unchanged",
        lambda n: phones[n % 4].get(
            f"{badges[n % 4]}/live", headers={"If-None-Match": held[n % 4]}
        ),
    )
    yield "card", lambda n: phones[n % 4].get(badges[(n + 1) % 4])
    # Phones that check in now: each opens its badge once, whose QR code is drawn then,
    # as on a badge's first view in a server process; then each asks for one connection.
    askers = [phone(app) for _ in range(repeat * 2 + 4)]
    theirs = [check_in(asker, poster) for asker in askers]
    yield "badge, new (QR drawn)", lambda n: askers[n].get(theirs[n])

    def connect(n: int) -> object:
        asker, owner = askers[n], badges[n % 4]
        page = text(asker.get(owner))
        token = CSRF.search(page).group(1)  # type: ignore[union-attr]
        response = asker.post(f"{owner}/connect", data={"csrf_token": token})
        assert response.status_code == 303, response.status_code
        return response

    yield "connect (card + POST)", connect


def measure(step: Callable[[int], object], repeat: int, offset: int) -> tuple[int, float]:
    """Return the statements of one request and what one costs (bench/meter.py)."""
    step(offset)  # warm: templates compiled, caches filled
    with counting() as statements:
        step(offset + 1)
    return len(statements), meter.cost(step, offset + 2, repeat)


def profile(step: Callable[[int], object], repeat: int, offset: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(offset, offset + repeat):
        step(n)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(
        os.environ.get("PROFILE_SORT", "cumulative")
    ).print_stats(top)
    return out.getvalue()


BARE = """
import sys
from bench import bare, meter
bare.reset(sys.argv[1])
client = bare.create_app().test_client()
client.post("/insert")
print(meter.cost(lambda n: client.post("/insert"), 0, int(sys.argv[2])))
"""


def bare_cost(url: str, repeat: int, scratch: str | None) -> float:
    """What bench/bare.py's one-row insert costs, measured alike, in a process of its own.

    (Its own, because Rapport's SQLite hooks are global to the process.)
    """
    arguments = ["-c", BARE, url, str(repeat)]
    run = {"cwd": ROOT, "env": {"DATABASE_URL": url}, "capture_output": True, "text": True}
    if scratch is not None:
        done = meter.run_under_callgrind(arguments, scratch, **run)
    else:
        run["env"] = {**os.environ, "DATABASE_URL": url}
        done = subprocess.run([sys.executable, *arguments], check=True, **run)  # noqa: S603
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 5000])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--flows", nargs="*", help="words a flow's name must contain")
    parser.add_argument("--accept-encoding", default=CHROME_ON_ANDROID)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="a setting to try"
    )
    parser.add_argument("--callgrind-scratch", help=argparse.SUPPRESS)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind"
    )
    args = parser.parse_args()
    global accept_encoding
    accept_encoding = args.accept_encoding
    for setting in args.set:
        key, _, value = setting.partition("=")
        settings[key] = json.loads(value)
    if args.instructions or args.callgrind_scratch:
        # Under callgrind a request runs some fifty times slower: the memos a server process
        # keeps for a few seconds would run out between one request and the next, where at a
        # busy door every process asks again well within them. Kept for the run, each flow
        # is counted as at that door, the same from one run to the next.
        settings.setdefault("LOOKUP_CACHE_SECONDS", 3600)
    if args.instructions and not os.environ.get(meter.LIBRARY):
        with tempfile.TemporaryDirectory() as scratch:
            again = [arg for arg in sys.argv if arg != "--instructions"]
            meter.run_under_callgrind([*again, "--callgrind-scratch", scratch], scratch)
        return
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{scratch}/profile.sqlite"
        app = build_app(url)
        posters = seed(app, args.sizes)
        base = bare_cost(url, args.repeat, args.callgrind_scratch)
        results: dict[str, dict[int, tuple[int, float]]] = {}
        profiles: dict[str, str] = {}
        for size in args.sizes:
            for name, step in flows(app, posters[size], args.repeat):
                if args.flows and not any(word in name for word in args.flows):
                    continue
                results.setdefault(name, {})[size] = measure(step, args.repeat, 0)
                if args.top and size == args.sizes[-1]:
                    offset = args.repeat + 2
                    profiles[name] = profile(step, args.repeat, offset, args.top)
        with app.app_context():
            db.engine.dispose()
    unit = meter.unit()
    print(
        f"engine: {url.split(':')[0]}; bare insert {base:.2f} {unit}; {args.repeat} requests; "
        f"Accept-Encoding: {accept_encoding or '(none)'}; settings: {settings or 'defaults'}"
    )
    print(
        f"{'flow':26}" + "".join(f"{f'{size} people':>36}" for size in args.sizes) + f"{'ratio':>8}"
    )
    for name, by_size in results.items():
        cells = "".join(
            f"{f'{s} stmts {ms:6.2f} {unit} {ms / base:5.1f}x bare':>36}"
            for s, ms in (by_size[size] for size in args.sizes)
        )
        ratio = by_size[args.sizes[-1]][1] / by_size[args.sizes[0]][1]
        print(f"{name:26}{cells}{ratio:>8.2f}")
    for name, text in profiles.items():
        print(f"\n===== {name} ({args.sizes[-1]} people, {args.repeat} requests)\n{text}")


if __name__ == "__main__":
    main()
