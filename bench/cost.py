#!/usr/bin/env python3
"""Mailroom's monthly AWS cost for N mailboxes polled every I minutes receiving M messages a
day each, from the request counts the benchmarks measure (bench-sync-idle, bench-sync) and
us-east-1 list prices (see COST.md for where each number comes from and what is assumed).

usage: bench/cost.py [--mailboxes N] [--interval MINUTES] [--messages-per-day M]
                     [--design before|previous|current] [--instances N] [--starts-per-day S]
                     [--worker-instances W] [--cpu-ms MS]
                     [--kms-scheme shared|per-record] [--kms-hit RATE]
                     [--token-policy microsoft|google|oauth2|before] [--token-lifetime MINUTES]
                     [--token-holders N]"""
import argparse

# us-east-1 list prices, USD, as assumed in COST.md (no free tier).
LAMBDA_GB_S_ARM = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
DDB_WRU = 0.625 / 1e6
DDB_RRU = 0.125 / 1e6
DDB_STORAGE_GB = 0.25
KMS_REQUEST = 0.03 / 1e4
KMS_KEY_MONTH = 1.0
SQS_REQUEST = 0.40 / 1e6
S3_PUT = 0.005 / 1e3
S3_STORAGE_GB = 0.023
LOGS_GB = 0.50
MONTH_DAYS = 30
# Lambda gives a function one full vCPU at 1,769 MB and proportionally less below: a CPU-bound
# invocation at M GB runs cpu_seconds * 1.769 / M seconds.
FULL_VCPU_GB = 1.769

# Measured per no-change sync (bench-sync-idle) and the assumptions of COST.md.
# wru/rru: request units per poll; touch_wru_day: writes per mailbox and day that happen without
# any change (last_sync_at kept fresh); sqs: requests per poll; a worker invocation runs
# jobs_per_invocation jobs, concurrency at a time, each lasting wall_s and using cpu_s of CPU.
# rru may be a function of the worker instances and their starts (the account cache's misses).
DESIGNS = {
    # The engine before f5e6e06: lease put + account record + lease delete in the worker, a
    # claim write in the scheduler (account item 2 WRU + its index copy 2 WRU each); 6 consistent
    # reads in the worker, a GetItem and an index read in the scheduler; one job per message.
    "before": dict(wru=1 + 2 * 2 + 1 + 2 * 2, rru=6 + 1 + 0.5, touch_wru_day=0,
                   sqs=0.1 + 0.25 + 0.25, jobs_per_invocation=4, concurrency=4,
                   memory_gb=0.5, wall_s=0.5, log_bytes=600, cpu_ms=2.1,
                   refresh_provider_rru=1),
    # Up to 3670d74 (2026-12-07): nothing written on a poll that finds nothing (no lease, no
    # outcome, no claim); the worker reads the account and its cursors in one eventually
    # consistent query (0.5 RRU), the scheduler pages the keys-only due index (~120 bytes an
    # account, eventually consistent); last_sync_at refreshed every 6 hours (a 2 WRU account
    # write, no index copy: 8 WRU a day); ten jobs per SQS message (ten messages per
    # SendMessageBatch; a 10 s batching window gathers ~4 messages per worker invocation at
    # 1,000 mailboxes, so 40 jobs, all at once under the template's 50 parallel syncs); no log
    # line per no-change poll, only Lambda's REPORT lines (~400 bytes an invocation).
    "previous": dict(wru=0, rru=0.5 + 120 / 4096 / 2, touch_wru_day=8,
                     sqs=0.01 + 0.025 + 0.025, jobs_per_invocation=40, concurrency=50,
                     memory_gb=0.25, wall_s=0.5, log_bytes=10, cpu_ms=2.1,
                     refresh_provider_rru=1),
    # Now: as previous, plus the worker's account cache: a job carries the account's version
    # (the due index projects it), a warm process holding that version reads nothing (measured:
    # 0 store requests); it misses once per worker instance for each new instance and each
    # account version (see cache_misses). Every account write now also rewrites the index copy
    # (~1 WRU): the 4 daily last_sync_at writes (8 + 4 WRU) and the daily Microsoft refresh-token
    # write (its 1 WRU is in "Token refreshes", its index copy here: + 1). 100 jobs per SQS
    # message (~10 KB, one billed request): 1,000 accounts make 10 messages a run, spread over
    # 240 s, so a 10 s batching window gathers about one: 100 jobs an invocation, 50 at a time;
    # send 2 billed requests per 1,000 jobs, receive and delete one each per 100. Token
    # refreshes read the provider settings once per process and 5 minutes (shared/oauth
    # providers.rs), not once a refresh: ~0 of the 1 RRU a refresh paid for them before.
    "current": dict(wru=0, rru="cache", touch_wru_day=8 + 4 + 1,
                    sqs=0.002 + 0.01 + 0.01, jobs_per_invocation=100, concurrency=50,
                    memory_gb=0.25, wall_s=0.5, log_bytes=10, cpu_ms=1.3,
                    refresh_provider_rru=0),
}

# cpu_ms: CPU per warm no-change poll, measured by bench-sync-idle 2026-12-07 (release build,
# one thread, TLS handshake and IMAP to the local Dovecot included, 1,000 polls a run, see
# COST.md): 1.14-1.40 ms with the account cache (current), 2.01-2.17 ms with one store read
# a poll (previous; before did more, so 2.1 is a lower bound for it). --cpu-ms overrides it.


def cache_misses(interval_min, worker_instances, starts_per_day, versions_per_day=5):
    """Share of polls that miss the account cache and read (0.5 RRU). SQS gives no affinity,
    so each worker instance that polls an account misses once per account version (4 last_sync_at
    writes and 1 refresh-token write a day) and once per new execution environment."""
    polls_per_day = 24 * 60 / interval_min
    misses = worker_instances * (versions_per_day + starts_per_day)
    return min(1.0, misses / polls_per_day)


# Access token refreshes, per refresh and per account-day, measured by
# tests/tests/oauth_token_policy.rs (measure_refresh_cost_per_account_hour, counting store, test
# OAuth provider issuing 4,200-character Microsoft-like tokens; see COST.md "Token refreshes").
# rru: read units per refresh (the account read eventually consistent, 0.5 RRU per 4 KB; the
# provider settings consistent, 1; the lease holder's consistent re-read; before: all consistent,
# the ~5 KB account item 2 RRU each);
# wru: write units per refresh; wru_day: write units per account and day; holders: whether each
# process holding the account refreshes on its own (tokens in memory) or all share the stored one.
TOKEN_POLICIES = {
    # Before: every refresh under a lease (put 1 WRU, delete 1 WRU) and an account write carrying
    # the sealed access token (a 5 KB item: 5 WRU); the token lived in the store, shared.
    "before": dict(rru=2 + 2 + 1, wru=1 + 5 + 1, wru_day=0, per_holder=False),
    # Microsoft: token in memory; the rotated refresh token written once a day (0.8 KB item).
    "microsoft": dict(rru=0.5 + 1, wru=0, wru_day=1, per_holder=True),
    # Google: no refresh token comes back, nothing is written.
    "google": dict(rru=0.5 + 1, wru=0, wru_day=0, per_holder=True),
    # Generic OAuth2 (rotation may invalidate): lease + write of every refresh, small tokens.
    "oauth2": dict(rru=0.5 + 1 + 1, wru=1 + 1 + 1, wru_day=0, per_holder=False),
}
# Wall time one refresh adds to its sync: one HTTPS POST to the provider's token endpoint from
# us-east-1 (assumed, not measured here: the local test provider answers in ~1 ms).
REFRESH_WALL_S = 0.2


def token_refreshes(mailboxes, interval_min, design, policy, lifetime_min, holders):
    """Monthly cost of keeping access tokens fresh: reads, writes and the Lambda time the
    refreshes add. A refresh lengthens its invocation by REFRESH_WALL_S unless another job of
    the same invocation (they run at once) refreshes too."""
    d, t = DESIGNS[design], TOKEN_POLICIES[policy]
    refreshes = mailboxes * MONTH_DAYS * 24 * 60 / lifetime_min
    if t["per_holder"]:
        refreshes *= holders
    polls = mailboxes * MONTH_DAYS * 24 * 60 / interval_min
    jobs = d["concurrency"]  # the jobs that run at once (one round of an invocation)
    if not polls:
        return 0.0
    share = min(1.0, refreshes / polls)  # of the jobs that refresh first
    lengthened = (polls / jobs) * (1 - (1 - share) ** jobs)  # rounds with a refresh
    gb_s = lengthened * REFRESH_WALL_S * d["memory_gb"]
    # The policies' rru include the provider settings' consistent read (1 RRU) a refresh.
    rru = t["rru"] - 1 + d["refresh_provider_rru"]
    return (refreshes * (rru * DDB_RRU + t["wru"] * DDB_WRU)
            + mailboxes * MONTH_DAYS * t["wru_day"] * DDB_WRU + gb_s * LAMBDA_GB_S_ARM)


def kms_requests(polls, kms, instances, starts_per_day, kms_hit):
    """KMS requests a month.

    shared (mailroom_core::crypto today): a process generates one data key (per day, and it is
    recycled sooner) and unwraps each distinct data key it meets once. The table holds the keys
    of the processes that wrote records lately (a token refresh rewrites each account about
    hourly), about 2 per instance alive, so a process start costs 1 GenerateDataKey + about
    2 x instances Decrypt, whatever the number of mailboxes or polls.
    per-record (before): one Decrypt per poll whose account key is not cached in that instance."""
    if kms == "per-record":
        return polls * (1 - kms_hit)
    return instances * starts_per_day * MONTH_DAYS * (1 + 2 * instances)


def monthly(mailboxes, interval_min, messages_per_day, design, kms_hit, kms="shared",
            instances=8, starts_per_day=24, token_policy=None, token_lifetime=60,
            token_holders=2, worker_instances=2, cpu_ms=None):
    d = dict(DESIGNS[design])
    if d["rru"] == "cache":
        miss = cache_misses(interval_min, worker_instances, starts_per_day)
        d["rru"] = 120 / 4096 / 2 + 0.5 * miss
        # A miss reads and decodes the account as the previous design did, with its CPU.
        d["cpu_ms"] += miss * (DESIGNS["previous"]["cpu_ms"] - d["cpu_ms"])
    polls = mailboxes * (24 * 60 / interval_min) * MONTH_DAYS
    messages = mailboxes * messages_per_day * MONTH_DAYS
    invocations = polls / d["jobs_per_invocation"]
    # Jobs run `concurrency` at a time: an invocation lasts that many rounds of one sync, or,
    # when its CPU at the function's vCPU share takes longer, that long (CPU-bound).
    rounds = -(-d["jobs_per_invocation"] // d["concurrency"])
    wall_bound = rounds * d["wall_s"]
    cpu_ms = d["cpu_ms"] if cpu_ms is None else cpu_ms
    cpu_bound = d["jobs_per_invocation"] * cpu_ms / 1000 * FULL_VCPU_GB / d["memory_gb"]
    gb_s = invocations * max(wall_bound, cpu_bound) * d["memory_gb"]
    rows = {
        "Lambda (worker)": gb_s * LAMBDA_GB_S_ARM + invocations * LAMBDA_REQUEST,
        "Lambda (scheduler)": (MONTH_DAYS * 24 * 60 / interval_min) * 2 * 0.25 * LAMBDA_GB_S_ARM,
        "DynamoDB (polls)": polls * (d["wru"] * DDB_WRU + d["rru"] * DDB_RRU)
        + mailboxes * MONTH_DAYS * d["touch_wru_day"] * DDB_WRU,
        # A new message: its metadata item (+ index copy) and its share of the cursor write.
        "DynamoDB (new mail)": messages * (2 + 0.1) * DDB_WRU,
        "DynamoDB storage": mailboxes * 0.0005 * DDB_STORAGE_GB
        + messages * 12 * 1e-6 * DDB_STORAGE_GB,
        "KMS": KMS_KEY_MONTH
        + kms_requests(polls, kms, instances, starts_per_day, kms_hit) * KMS_REQUEST,
        "SQS": polls * d["sqs"] * SQS_REQUEST + 650_000 * SQS_REQUEST,
        "S3 (raw mail)": messages * S3_PUT + messages * 12 * 50e-6 * S3_STORAGE_GB,
        "CloudWatch Logs": polls * d["log_bytes"] / 1e9 * LOGS_GB,
        # The old design stored every refresh; the others keep tokens in memory.
        "Token refreshes": token_refreshes(mailboxes, interval_min, design,
                                           token_policy or ("before" if design == "before"
                                                            else "microsoft"),
                                           token_lifetime, token_holders),
    }
    return polls, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mailboxes", type=int, default=1000)
    p.add_argument("--interval", type=float, default=5)
    p.add_argument("--messages-per-day", type=float, default=0)
    p.add_argument("--design", choices=sorted(DESIGNS), default="current")
    p.add_argument("--worker-instances", type=float, default=2,
                   help="worker instances an account's polls land on (each misses the account "
                        "cache once per account version and per new execution environment)")
    p.add_argument("--cpu-ms", type=float, default=None,
                   help="CPU milliseconds per no-change poll (default: the design's, measured "
                        "by bench-sync-idle, release build)")
    p.add_argument("--instances", type=int, default=8,
                   help="function instances alive at once that open or seal secrets "
                        "(sync workers, API, send, OAuth)")
    p.add_argument("--starts-per-day", type=float, default=24,
                   help="new execution environments per instance and day (Lambda recycles them)")
    p.add_argument("--kms-scheme", choices=["shared", "per-record"], default="shared",
                   help="shared: one data key per process (today); per-record: the scheme before")
    p.add_argument("--kms-hit", type=float, default=0.0,
                   help="per-record only: share of polls whose data key is still cached (0..1)")
    p.add_argument("--token-policy", choices=sorted(TOKEN_POLICIES), default=None,
                   help="refresh policy of the mailboxes' provider (default: before for "
                        "--design before, else microsoft)")
    p.add_argument("--token-lifetime", type=float, default=60,
                   help="access token lifetime in minutes (Microsoft 60-90, Google 60)")
    p.add_argument("--token-holders", type=float, default=2,
                   help="worker processes that sync one account within a token lifetime "
                        "(each refreshes once; tokens live in memory)")
    a = p.parse_args()
    polls, rows = monthly(a.mailboxes, a.interval, a.messages_per_day, a.design, a.kms_hit,
                          a.kms_scheme, a.instances, a.starts_per_day, a.token_policy,
                          a.token_lifetime, a.token_holders, a.worker_instances, a.cpu_ms)
    print(f"{a.mailboxes} mailboxes, every {a.interval:g} min, {a.messages_per_day:g} msgs/day "
          f"each, design {a.design}: {polls:,.0f} polls/month")
    for name, usd in rows.items():
        print(f"  {name:<22} ${usd:>9.2f}")
    total = sum(rows.values())
    print(f"  {'total':<22} ${total:>9.2f} per month")
    # What does not grow with the mailboxes (the KMS key and its requests, the event source
    # mapping's empty receives, the scheduler): the floor any number of mailboxes pays.
    _, floor_rows = monthly(0, a.interval, 0, a.design, a.kms_hit, a.kms_scheme, a.instances,
                            a.starts_per_day, a.token_policy, a.token_lifetime, a.token_holders,
                            a.worker_instances, a.cpu_ms)
    floor = sum(floor_rows.values())
    if a.mailboxes:
        print(f"  {'of which fixed':<22} ${floor:>9.2f}; per 1,000 mailboxes on top "
              f"${(total - floor) * 1000 / a.mailboxes:.2f}")


if __name__ == "__main__":
    main()
