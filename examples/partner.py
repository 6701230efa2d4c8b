#!/usr/bin/env python3
"""A partner organisation's system talking to Wasl over NATS, with nats-py.

It reads the organisation's own feed (the stream WASL_OUT_<org>) through a durable pull
consumer, and answers a referral with a command request on
wasl.cmd.<org>.referral.<referral-id>.<verb>. See docs/nats-security.md ("How a partner
connects") and docs/partners.md (the messages, verbs and replies).

    pip install 'nats-py[nkeys]'   # the versions scripts/test-partner-example tests: .nats-py-version

    # print (and acknowledge) the referral messages waiting; stop when none is left
    python3 partner.py tls://nats.wasl.example:4222 <org>.nk <org> listen --until-idle
    # acknowledge receipt of a referral; prints Wasl's reply, e.g. {"ok":true,"version":2,"position":41}
    python3 partner.py tls://nats.wasl.example:4222 <org>.nk <org> receive <referral-id>

Without --until-idle, `listen` keeps waiting for new messages until Ctrl-C. An answer takes
--command-id (a UUID; the same id again gets the first answer and changes nothing; by default a
new one), --reason CODE (reject, hold, fail) and --suggested-org ID (reject --reason
redirected). With a tls:// server, --ca FILE names the CA to verify it with. The exit status is 0
when Wasl answered ok, 1 when it refused, 2 on a usage or connection error.

<org> is the organisation id, <org>.nk its NKey seed file; both are in the README that
`wasl nats-config` writes for the organisation. Keep the seed secret: it is your whole identity.
"""

import argparse
import asyncio
import json
import ssl
import sys
import uuid

import nats
import nats.errors
import nats.js.errors

VERBS = ["receive", "accept", "reject", "start", "hold", "resume", "complete", "fail"]


async def connect(server, seed_file, org, ca_file=None):
    return await nats.connect(
        server,
        nkeys_seed=seed_file,  # path to the seed file; the seed itself never leaves this machine
        inbox_prefix=f"_INBOX_{org}",  # required: the only subjects you may subscribe to
        tls=ssl.create_default_context(cafile=ca_file) if ca_file else None,
        max_reconnect_attempts=3,  # give up on a lost hub instead of retrying for ever
    )


async def listen(nc, org, until_idle):
    js = nc.jetstream()
    # Name the stream: looking it up by subject would list streams, which is not allowed.
    # The hub keeps the durable consumer "referrals" on your stream; it remembers what was
    # acknowledged, so the next run starts after it. Partners cannot create consumers: bind to
    # it (NotFoundError in the moment between the hub making your feed and its consumer).
    await js.consumer_info(f"WASL_OUT_{org}", "referrals")
    sub = await js.pull_subscribe_bind("referrals", stream=f"WASL_OUT_{org}")
    while True:
        try:
            msgs = await sub.fetch(10, timeout=2)
        except (nats.errors.TimeoutError, asyncio.TimeoutError):  # nats-py raises either
            if until_idle:
                return  # nothing is waiting
            continue
        for msg in msgs:
            m = json.loads(msg.data)  # its `schema` says which kind (docs/partners.md)
            seq = msg.metadata.sequence.stream
            if m.get("schema") == "wasl.partner.redaction.v1":
                # A case was erased: delete what you hold about these referrals.
                print(f"redaction {m['notice_id']} referrals {','.join(m['referral_ids'])} (seq {seq})")
            else:
                print(f"referral {m['referral_id']} {m['status']} {m['event_type']} (seq {seq})")
            await msg.ack()


async def answer(nc, org, verb, referral_id, command_id, reason=None, suggested_org=None):
    body = {"command_id": command_id}
    if reason:
        body["reason"] = {"code": reason}  # codes only: reason texts are refused over NATS
    if suggested_org:
        body["suggested_org"] = suggested_org
    reply = await nc.request(
        f"wasl.cmd.{org}.referral.{referral_id}.{verb}",
        json.dumps(body).encode(),
        timeout=10,
    )
    print(reply.data.decode())
    return json.loads(reply.data).get("ok") is True


async def main():
    parser = argparse.ArgumentParser(description="A Wasl partner over NATS (nats-py).")
    parser.add_argument("server", help="the hub's NATS URL, e.g. tls://nats.wasl.example:4222")
    parser.add_argument("seed_file", help="your organisation's NKey seed file, <org>.nk")
    parser.add_argument("org", help="your organisation id")
    parser.add_argument("--ca", help="CA certificate (PEM) to verify a tls:// server with")
    commands = parser.add_subparsers(dest="command", required=True)
    listening = commands.add_parser("listen", help="print and acknowledge your feed's messages")
    listening.add_argument("--until-idle", action="store_true", help="stop once nothing is waiting")
    for verb in VERBS:
        answering = commands.add_parser(verb, help=f"answer a referral: {verb}")
        answering.add_argument("referral_id")
        answering.add_argument("--command-id", default=str(uuid.uuid4()))
        answering.add_argument("--reason", help="reason code (reject, hold, fail)")
        answering.add_argument("--suggested-org", help="with reject --reason redirected")
    args = parser.parse_args()

    try:
        nc = await connect(args.server, args.seed_file, args.org, args.ca)
    except Exception as e:  # no server, refused credential, unreadable seed file…
        print(f"partner.py: cannot connect to {args.server}: {e!r}", file=sys.stderr)
        return 2
    try:
        if args.command == "listen":
            await listen(nc, args.org, args.until_idle)
            return 0
        ok = await answer(nc, args.org, args.command, args.referral_id, args.command_id, args.reason, args.suggested_org)
        return 0 if ok else 1
    except nats.js.errors.NotFoundError:
        print(f"partner.py: your feed WASL_OUT_{args.org} or its consumer does not exist (yet)", file=sys.stderr)
        return 2
    except nats.errors.NoRespondersError:
        print("partner.py: nobody serves partner commands (is `wasl router` running?)", file=sys.stderr)
        return 2
    except (nats.errors.TimeoutError, asyncio.TimeoutError):
        # Nobody answered in time: a failure to reach Wasl (2), never a refusal (1).
        if args.command == "listen":
            print("partner.py: the hub's JetStream did not answer in time", file=sys.stderr)
        else:
            print("partner.py: no answer from Wasl within 10 s", file=sys.stderr)
        return 2
    finally:
        await nc.close()


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
