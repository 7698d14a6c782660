"""The usage read side on a big Request table: seed, API and admin medians, a full CSV export.

    .venv/bin/python bench/usage_bench.py --rows 1000000                      # SQLite file in /tmp
    .venv/bin/python bench/usage_bench.py --rows 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/usage_bench          # drops and recreates it

It builds a fresh database (migrate), times `seed_demo_data --rows N` and `export_requests` (CSV,
every row, peak RSS of the process) as separate processes, and times the endpoints in process
through Django's test client (no network): the median of --repeat calls after one warm-up call.
Targets: API under 150 ms, dashboard under 500 ms, export under 60 s and 250 MB, seed under 3 min.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
TARGETS_MS = {"api": 150, "admin_dashboard": 500}


def run(args: list[str], env: dict) -> tuple[float, int, str]:
    """Run a manage.py command; its wall time in seconds, peak RSS in MB and output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = process.stdout.read().decode() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{output}")
    return elapsed, usage.ru_maxrss // 1024, output.strip()


def fresh_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(urlparse(url).path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def median_ms(client, path: str, repeat: int, **params) -> dict:  # noqa: ANN001
    response = client.get(path, params)  # warm-up: rolls up whatever is new
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return {"median_ms": round(statistics.median(times), 1), "p90_ms": round(sorted(times)[int(0.9 * len(times))], 1)}


def measure_in_process(repeat: int) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db.models import Sum
    from django.test import Client

    from chat.models import Application
    from chat.services.keys import key_create
    from usage.models import UserDay

    staff = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    admin = Client()
    admin.force_login(staff)
    app = Application.objects.get_or_create(name="support-bot")[0]
    _, raw = key_create(application=app, name="bench")
    keyed = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    users = list(UserDay.objects.values("user_id").annotate(n=Sum("requests")).order_by("-n"))
    heaviest, typical = users[0]["user_id"], users[len(users) // 10]["user_id"]
    return {
        "api_stats_staff": median_ms(admin, "/api/stats", repeat),
        "api_stats_key": median_ms(keyed, "/api/stats", repeat),
        "api_user_usage_typical": median_ms(admin, f"/api/user/{typical}/usage", repeat),
        "api_user_usage_heaviest": median_ms(admin, f"/api/user/{heaviest}/usage", repeat),
        "admin_dashboard": median_ms(admin, "/admin/chat/request/dashboard/", repeat),
        "admin_request_list": median_ms(admin, "/admin/chat/request/", repeat),
        "admin_request_list_filtered": median_ms(
            admin, "/admin/chat/request/", repeat, model="gpt-4o", status__exact="error"
        ),
        "users": {
            "typical": typical,
            "heaviest": heaviest,
            "heaviest_share": round(users[0]["n"] / sum(u["n"] for u in users), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default="sqlite:////tmp/usage-bench.sqlite3")
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "usage-bench-only"),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "LLM_LOG_DIR": "",
        "DJANGO_SETTINGS_MODULE": "gateway.settings",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    fresh_database(args.database_url)
    run(["migrate", "--noinput", "-v", "0"], env)
    _, baseline_rss, _ = run(["usage_rollup", "-v", "0"], env)  # what any manage.py process costs here

    figures: dict = {"rows": args.rows, "months": args.months, "database": args.database_url.split(":")[0]}
    seconds, _, output = run(["seed_demo_data", "--rows", str(args.rows), "--months", str(args.months)], env)
    figures["seed_s"] = round(seconds, 1)
    figures["seed_output"] = output.splitlines()[-1] if output else ""
    print(f"seed_demo_data --rows {args.rows}: {seconds:.1f} s  ({figures['seed_output']})", flush=True)

    figures.update(measure_in_process(args.repeat))
    for name, value in figures.items():
        if isinstance(value, dict) and "median_ms" in value:
            target = TARGETS_MS["admin_dashboard"] if name == "admin_dashboard" else TARGETS_MS["api"]
            print(f"{name:32s} median {value['median_ms']:7.1f} ms  p90 {value['p90_ms']:7.1f} ms  (target {target})")

    if not args.skip_export:
        out = Path("/tmp/usage-bench-export.csv")
        seconds, rss, _ = run(["export_requests", "--format", "csv", "--output", str(out)], env)
        lines = sum(1 for _ in out.open("rb"))
        figures.update(
            export_s=round(seconds, 1), export_peak_rss_mb=rss, export_lines=lines, baseline_rss_mb=baseline_rss
        )
        print(
            f"export_requests CSV: {seconds:.1f} s, peak RSS {rss} MB "
            f"(a bare manage.py: {baseline_rss} MB), {lines - 1:,} rows"
        )
        out.unlink()

    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    target = results / f"usage-{figures['database']}-{args.rows}.json"
    target.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
