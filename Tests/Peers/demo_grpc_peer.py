#!/usr/bin/env python3
"""The demo's gRPC apps against grpcio and Google's protobuf runtime.

`meshtop demo` runs emoji and voting as gRPC services (grpc-swift, with a small protobuf-wire
coder of its own for emojivoto's messages). This calls them as any emojivoto client would:

    grpcio + protobuf messages built from emojivoto's .proto -> emoji / voting app (h2c)

and checks
  - ListAll answers the five emoji, decoded by Google's protobuf runtime;
  - Vote with a real VoteRequest answers OK or UNAVAILABLE "vote store unavailable" (the demo runs
    with --failure-rate 0.5, so both come up in 40 votes);
  - a request that is not protobuf is refused (INTERNAL, as grpc-go answers it), and the app
    answers afterwards;
  - the demo then stops cleanly (exit 0) on SIGINT.

    python3 Tests/Peers/demo_grpc_peer.py
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Report, binary, spawn  # noqa: E402


def emojivoto_messages():
    """emojivoto's messages as the demo declares them, built at run time (no protoc step)."""
    f = descriptor_pb2.FileDescriptorProto(name="emojivoto-demo.proto", package="emojivoto.v1", syntax="proto3")
    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    emoji = f.message_type.add(name="Emoji")
    emoji.field.add(name="unicode", number=1, type=string, label=optional)
    emoji.field.add(name="shortcode", number=2, type=string, label=optional)
    f.message_type.add(name="ListAllEmojiRequest")
    listing = f.message_type.add(name="ListAllEmojiResponse")
    listing.field.add(name="list", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE, label=repeated,
                      type_name=".emojivoto.v1.Emoji")
    vote = f.message_type.add(name="VoteRequest")
    vote.field.add(name="shortcode", number=1, type=string, label=optional)
    f.message_type.add(name="VoteResponse")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName("emojivoto.v1." + name))
            for name in ["Emoji", "ListAllEmojiRequest", "ListAllEmojiResponse", "VoteRequest", "VoteResponse"]}


def app_address(targets, deployment):
    """The app behind `deployment`'s proxy: the target of its inbound metrics."""
    for t in targets:
        if t["labels"].get("deployment") == deployment:
            body = urllib.request.urlopen(f"http://{t['targets'][0]}/metrics", timeout=5).read().decode()
            m = re.search(r'direction="inbound",target_addr="([0-9.]+:[0-9]+)"', body)
            if m:
                return m.group(1)
    return None


def main():
    report = Report()
    m = emojivoto_messages()
    directory = tempfile.mkdtemp(prefix="demo-grpc-peer-")
    sd = os.path.join(directory, "targets.json")
    log = open(os.path.join(directory, "stderr"), "w")
    demo = spawn([binary("meshtop"), "demo", "--headless", "--duration", "120s", "--rate", "2", "--failure-rate", "0.5",
                  "--targets-out", sd], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    while not os.path.exists(sd) and time.time() < deadline and demo.poll() is None:
        time.sleep(0.1)
    if not report.check(os.path.exists(sd), "the demo starts and writes its targets"):
        report.finish()
    time.sleep(0.5)
    targets = json.load(open(sd))
    emoji, voting = app_address(targets, "emoji"), app_address(targets, "voting")
    report.check(emoji and voting, f"emoji's and voting's apps found behind their proxies ({emoji}, {voting})")

    with grpc.insecure_channel(emoji) as channel:
        list_all = channel.unary_unary("/emojivoto.v1.EmojiService/ListAll",
                                       request_serializer=lambda r: r.SerializeToString(),
                                       response_deserializer=m["ListAllEmojiResponse"].FromString)
        answer = list_all(m["ListAllEmojiRequest"](), timeout=10)
        codes = [e.shortcode for e in answer.list]
        report.check(len(codes) == 5 and ":joy:" in codes and answer.list[0].unicode == "😂",
                     f"ListAll answers five emoji, decoded by Google's protobuf: {codes}")

    statuses = {}
    with grpc.insecure_channel(voting) as channel:
        vote = channel.unary_unary("/emojivoto.v1.VotingService/Vote",
                                   request_serializer=lambda r: r.SerializeToString(),
                                   response_deserializer=m["VoteResponse"].FromString)
        details = set()
        for n in range(40):
            try:
                vote(m["VoteRequest"](shortcode=":rocket:"), timeout=10)
                statuses["OK"] = statuses.get("OK", 0) + 1
            except grpc.RpcError as e:
                statuses[e.code().name] = statuses.get(e.code().name, 0) + 1
                details.add(e.details())
        report.check(set(statuses) == {"OK", "UNAVAILABLE"} and details == {"vote store unavailable"},
                     f"Vote answers OK or UNAVAILABLE \"vote store unavailable\": {statuses} {details}")

        raw = channel.unary_unary("/emojivoto.v1.VotingService/Vote")
        try:
            raw(b"\x0a\x7f\x61", timeout=10)  # field 1, 127 bytes long in a 3-byte message
            report.check(False, "a request that is not protobuf is refused")
        except grpc.RpcError as e:
            report.check(e.code() == grpc.StatusCode.INTERNAL and "cannot decode" in e.details(),
                         f"a request that is not protobuf is refused as INTERNAL ({e.code().name}: {e.details()})")
        try:
            vote(m["VoteRequest"](shortcode=":joy:"), timeout=10)
            after = "OK"
        except grpc.RpcError as e:
            after = e.code().name
        report.check(after in ("OK", "UNAVAILABLE"), f"voting answers after the bad request ({after})")

    demo.send_signal(signal.SIGINT)
    try:
        code = demo.wait(timeout=30)
    except subprocess.TimeoutExpired:
        code = None
    log.close()
    text = open(os.path.join(directory, "stderr")).read()
    report.check(code == 0 and "Cannot schedule" not in text, f"the demo stops cleanly on SIGINT (exit {code})"
                 + ("" if code == 0 else "\n" + text[-2000:]))
    report.finish()


if __name__ == "__main__":
    main()
