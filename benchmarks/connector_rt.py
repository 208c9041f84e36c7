"""`tier2 run --connector rt` against a local Request Tracker, beside a minimal script.

    scripts/test-rt.sh                    # RT on 127.0.0.1:8089, with tier2's custom fields
    .venv/bin/python benchmarks/connector_rt.py [--cases 100] [--library saas] [--seed 1]
        [--url http://127.0.0.1:8089/REST/2.0/] [--password tier2-rt]

Generates N escalations (seeded) and files the same cases twice in RT, in two fresh queues
(not timed). Then, in the same run, times:
- tier2: `tier2 run --once --connector rt --workers 0 --no-sla-scan` in a subprocess (wall
  clock, start-up included): find the escalations, read each ticket, its thread and the
  requestor's other tickets, decide, write the note and reply draft or guidance as comments,
  record each action as a comment and a custom-field value, move the ticket, and keep the
  case store and its audit chain;
- the minimal script: only the REST calls a case needs for the same result, made in this
  process with the same session cookie and the decisions worked out beforehand: the same
  search, per ticket a GET of the ticket, its history and its attachments, the requestor's
  other tickets, then the same comments, custom-field values and move.
Prints cases per second of each and the ratio. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from tier2.contract import CaseError, decision_to_dict, parse_case
from tier2.core import decide
from tier2.helpdesk.rt import KEY_LINE, RtClient, RtSettings, file_case
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator

TARGETS = ("senior_support", "support_manager")


def queues(tag: str) -> dict[str, str]:
    return {
        "queue": f"bench tier2 {tag}",
        "return_queue": f"bench tier1 {tag}",
        **{t: f"bench {t} {tag}" for t in TARGETS},
    }


def file_all(
    client: RtClient, cases: list[dict[str, Any]], names: dict[str, str], tag: str
) -> None:
    """File the cases in fresh queues, for customers of their own (RT finds a customer's
    history by requestor: tickets of an earlier run would be history too)."""
    for name in names.values():
        client.call("POST", "queue", json={"Name": name})
    settings = RtSettings(queue=names["queue"], return_queue=names["return_queue"])
    for case in cases:
        customer = case["customer"]
        mine = {**case, "customer": {**customer, "id": f"{customer.get('id') or 'c'}-{tag}"}}
        file_case(client, settings, mine)


def run_tier2(url: str, password: str, library: str, names: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "tier2.toml"
        mapped = ", ".join(f'{t} = "{names[t]}"' for t in TARGETS)
        config.write_text(
            f'library = "{library}"\ndatabase = "{Path(tmp) / "tier2.db"}"\n'
            f'[connector]\nkind = "rt"\n[connector.rt]\nurl = "{url}"\nuser = "root"\n'
            f'password_env = "BENCH_RT_PASSWORD"\nqueue = "{names["queue"]}"\n'
            f'return_queue = "{names["return_queue"]}"\nqueues = {{ {mapped} }}\n'
        )
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "tier2", "run", "--once", "--connector", "rt",
             "--workers", "0", "--no-sla-scan", "--config", str(config)],
            capture_output=True, text=True, check=False,
            env={**os.environ, "BENCH_RT_PASSWORD": password},
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"tier2 run failed: {done.stderr[-2000:]}")
        sys.stderr.write(done.stdout)
    return elapsed


def run_minimal(
    client: RtClient, names: dict[str, str], decisions: dict[str, dict[str, Any]]
) -> float:
    """Only the REST calls each case needs, in order, with nothing else done."""
    start = time.perf_counter()
    query = (
        f"Queue = '{names['queue']}' AND Status = '__Active__' "
        "AND 'CF.{Tier2 Outcome}' != 'escalate'"
    )
    found = client.call("GET", "tickets", params={"query": query, "per_page": 100, "page": 1})
    ids = [str(t["id"]) for t in found["items"]]
    for page in range(2, int(found["pages"]) + 1):
        more = client.call("GET", "tickets", params={"query": query, "per_page": 100, "page": page})
        ids += [str(t["id"]) for t in more["items"]]
    history = {"fields": "Type,Field,NewValue,Created,Creator", "per_page": 100}
    parts = {"fields": "TransactionId,ContentType,Content", "per_page": 100}
    for ticket_id in ids:
        ticket = client.call("GET", f"ticket/{ticket_id}")
        client.call("GET", f"ticket/{ticket_id}/history", params=history)
        client.call("GET", f"ticket/{ticket_id}/attachments", params=parts)
        others = f"Requestor.Name = '{ticket['Requestor'][0]['id']}'"
        fields = "Created,Status,CustomFields"
        client.call("GET", "tickets", params={"query": others, "fields": fields, "per_page": 100})
        d = decisions[ticket["Subject"]]
        key = f"T-{ticket_id}:1"

        def comment(kind: str, body: str, ticket_id: str = ticket_id, key: str = key) -> None:
            client.call("POST", f"ticket/{ticket_id}/comment", json={
                "Subject": f"tier2 {kind}", "ContentType": "text/plain",
                "Content": f"{body}\n\n{KEY_LINE}{key}:{kind}\n"})  # fmt: skip

        if d["outcome"] == "resolve":
            lines = []
            for i, a in enumerate(d["actions"]):
                comment(f"{i}:{a['type']}", f"tier2 carried out: {a['type']}")
                lines.append(f"{a['type']} [{key}:{i}]")
            if lines:
                client.update(f"ticket/{ticket_id}", {"CustomFields": {"Tier2 Actions": lines}})
        comment("note", d["note"])
        if d["customer_reply"]:
            comment("reply_draft", d["customer_reply"])
        if d["guidance"]:
            comment("guidance", d["guidance"])
        if d["outcome"] == "resolve":
            move = {"Status": "resolved", "CustomFields": {"Tier2 Outcome": "resolve"}}
        elif d["outcome"] == "return_to_tier1":
            move = {"Status": "open", "Queue": names["return_queue"],
                    "CustomFields": {"Tier2 Outcome": "return_to_tier1"}}  # fmt: skip
        else:
            outcome = {"Tier2 Outcome": "escalate", "Tier2 Escalated To": d["escalate_to"]}
            move = {"Status": "open", "CustomFields": outcome}
            if d["escalate_to"] in names:
                move["Queue"] = names[d["escalate_to"]]
        client.update(f"ticket/{ticket_id}", move)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--library", default="saas")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", default="http://127.0.0.1:8089/REST/2.0/")
    parser.add_argument("--password", default="tier2-rt")
    args = parser.parse_args()
    library = load_library(args.library)
    cases = CaseGenerator(library, args.seed).cases(args.cases)
    decisions: dict[str, dict[str, Any]] = {}
    for i, case in enumerate(cases):
        case["ticket"]["subject"] = f"bench case {i}"  # how the minimal script finds its decision
        case["received_at"] = case["handoff"].get("escalated_at") or case["received_at"]
        parsed = parse_case(orjson.loads(orjson.dumps(case)), "bench")
        assert not isinstance(parsed, CaseError)
        decisions[case["ticket"]["subject"]] = decision_to_dict(decide(parsed, library))
    client = RtClient(args.url, user="root", password=args.password)
    tag = uuid.uuid4().hex[:6]
    mine, minimal = queues(f"{tag}a"), queues(f"{tag}b")
    start = time.perf_counter()
    file_all(client, cases, mine, f"{tag}a")
    file_all(client, cases, minimal, f"{tag}b")
    sys.stderr.write(f"filed {2 * len(cases)} tickets in {time.perf_counter() - start:.0f} s\n")
    # alternate which goes first, to share out whatever RT warms up
    t_min = run_minimal(client, minimal, decisions)
    t_tier2 = run_tier2(args.url, args.password, args.library, mine)
    n = len(cases)
    print(f"{n} cases ({args.library}), RT 5 at {args.url}")
    print(f"tier2 run --connector rt   {n / t_tier2:7.2f} cases/s  ({t_tier2:.1f} s)")
    print(f"minimal REST script        {n / t_min:7.2f} cases/s  ({t_min:.1f} s)")
    print(f"ratio (tier2 time / minimal time): {t_tier2 / t_min:.2f}")
    client.close()


if __name__ == "__main__":
    main()
