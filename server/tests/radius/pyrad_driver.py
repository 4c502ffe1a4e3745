"""Drives pyrad (a RADIUS client nobody here wrote) for the Rust tests: one JSON command per
line on stdin, one JSON answer per line on stdout.

command: {"user", "password", "state": hex|null, "ma": "ok"|"none"|"wrong", "secret": str,
          "resend": bool (send the previous request again, byte for byte), "wait": seconds,
          "proxy_state": hex|null, "calling": str|null}
answer:  {"code": 2|3|11|null (no answer), "message", "state": hex, "ma_first": bool,
          "verified": bool (Response Authenticator and Message-Authenticator), "class",
          "filter_id", "session_timeout", "proxy_state": [hex]}
"""
import json
import os
import socket
import sys

from pyrad.client import Client
from pyrad.dictionary import Dictionary
from pyrad import packet

host, port = sys.argv[1], int(sys.argv[2])
here = os.path.dirname(os.path.abspath(__file__))
dictionary = Dictionary(os.path.join(here, "dictionary"))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if len(sys.argv) > 3:
    sock.bind((sys.argv[3], 0))  # the gateway's address (clients are told apart by it)
last = None  # (raw, request packet)

for line in sys.stdin:
    cmd = json.loads(line)
    secret = cmd.get("secret", "").encode()
    if cmd.get("resend") and last:
        raw, req = last
    else:
        client = Client(server=host, authport=port, secret=secret, dict=dictionary)
        req = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=cmd["user"])
        req["User-Password"] = req.PwCrypt(cmd["password"])
        req["NAS-Identifier"] = "pyrad-test"
        if cmd.get("state"):
            req["State"] = bytes.fromhex(cmd["state"])
        if cmd.get("proxy_state"):
            req["Proxy-State"] = bytes.fromhex(cmd["proxy_state"])
        if cmd.get("calling"):
            req["Calling-Station-Id"] = cmd["calling"]
        ma = cmd.get("ma", "ok")
        if ma != "none":
            req.add_message_authenticator()
        raw = req.RequestPacket()
        if ma == "wrong":
            i = raw.find(bytes([80, 18]), 20)
            raw = raw[: i + 2] + bytes(16) + raw[i + 18 :]
        last = (raw, req)
    sock.settimeout(float(cmd.get("wait", 5)))
    sock.sendto(raw, (host, port))
    out = {"code": None}
    try:
        data, _ = sock.recvfrom(4096)
        reply = req.CreateReply(packet=data)
        verified = req.VerifyReply(reply, data) and reply.verify_message_authenticator(
            secret=secret, original_authenticator=req.authenticator
        )
        def first(name):
            v = reply.get(name)
            return v[0] if v else None
        out = {
            "code": reply.code,
            "message": first("Reply-Message"),
            "state": first("State").hex() if first("State") else None,
            "ma_first": len(data) > 20 and data[20] == 80,
            "verified": bool(verified),
            "class": first("Class").decode() if first("Class") else None,
            "filter_id": first("Filter-Id"),
            "session_timeout": first("Session-Timeout"),
            "proxy_state": [v.hex() for v in reply.get("Proxy-State", [])],
        }
    except socket.timeout:
        pass
    print(json.dumps(out), flush=True)
