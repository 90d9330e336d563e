#!/usr/bin/env python3
"""Writes the hand-made seed inputs under fuzz/seeds/<target>/.

The files are committed; run this again only to change them:
    python3 fuzz/seeds/make_seeds.py
scripts/fuzz.sh copies them into a temporary corpus, so fuzzing never writes here.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(tag, body=b""):
    return tag + struct.pack(">i", len(body) + 4) + body


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def u32(v):
    return struct.pack(">I", v)


def cstr(s):
    return s.encode() + b"\0"


def data_row(values):
    body = i16(len(values))
    for v in values:
        body += i32(-1) if v is None else i32(len(v)) + v
    return frame(b"D", body)


def row_description(cols):
    body = i16(len(cols))
    for name, type_oid, size, fmt in cols:
        body += cstr(name) + u32(16384) + i16(1) + u32(type_oid) + i16(size) + i32(-1) + i16(fmt)
    return frame(b"T", body)


def error(tag, severity, code, message, extra=()):
    body = b"S" + cstr(severity) + b"V" + cstr(severity) + b"C" + cstr(code) + b"M" + cstr(message)
    for k, v in extra:
        body += k + cstr(v)
    return frame(tag, body + b"\0")


def numeric(text):
    """PostgreSQL's binary numeric for a plain decimal string (no exponent)."""
    neg = text.startswith("-")
    text = text.lstrip("+-")
    ip, _, fp = text.partition(".")
    dscale = len(fp)
    ip = ip.lstrip("0")
    ip = "0" * (-len(ip) % 4) + ip
    fp = fp + "0" * (-len(fp) % 4)
    groups = [int(ip[i : i + 4]) for i in range(0, len(ip), 4)]
    weight = len(groups) - 1
    groups += [int(fp[i : i + 4]) for i in range(0, len(fp), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight, neg = 0, False
    head = struct.pack(">hhHH", len(groups), weight, 0x4000 if neg else 0, dscale)
    return head + b"".join(struct.pack(">H", g) for g in groups)


AUTH_OK = frame(b"R", i32(0))
KEY = frame(b"K", i32(4242) + b"\x01\x02\x03\x04")
PARAMS = frame(b"S", cstr("server_version") + cstr("16.4")) + frame(
    b"S", cstr("client_encoding") + cstr("UTF8")
)
RFQ_IDLE = frame(b"Z", b"I")
STARTUP = AUTH_OK + KEY + PARAMS + RFQ_IDLE

SELECT = (
    row_description([("id", 23, 4, 1), ("name", 25, -1, 0), ("n", 1700, -1, 1)])
    + data_row([i32(1), b"alice", numeric("12345.6789")])
    + data_row([i32(2), None, numeric("-0.5")])
    + frame(b"C", cstr("SELECT 2"))
    + RFQ_IDLE
)
EXTENDED = (
    frame(b"1")
    + frame(b"t", i16(2) + u32(23) + u32(25))
    + row_description([("x", 23, 4, 1)])
    + frame(b"2")
    + data_row([i32(7)])
    + frame(b"s")
    + frame(b"C", cstr("SELECT 1"))
    + frame(b"3")
    + frame(b"Z", b"T")
)
SYNTAX_ERROR = error(
    b"E",
    "ERROR",
    "42601",
    'syntax error at or near "SELEC"',
    [(b"P", "1"), (b"F", "scan.l"), (b"L", "1188"), (b"R", "scanner_yyerror")],
)
FATAL = error(b"E", "FATAL", "57P01", "terminating connection due to administrator command")
NOTICE = error(b"N", "NOTICE", "00000", "table does not exist, skipping")
NOTIFY = frame(b"A", i32(99) + cstr("chan") + cstr("payload"))
COPY_OUT = (
    frame(b"H", b"\0" + i16(2) + i16(0) + i16(0))
    + frame(b"d", b"1\talice\n")
    + frame(b"c")
    + frame(b"C", cstr("COPY 1"))
    + RFQ_IDLE
)
COPY_IN = frame(b"G", b"\1" + i16(1) + i16(1))
NEGOTIATE = frame(b"v", i32(0) + i32(1) + cstr("_pq_.compression"))
SASL = frame(b"R", i32(10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0")
SASL_CONTINUE = frame(b"R", i32(11) + b"r=abc,s=c2FsdA==,i=4096")
MD5 = frame(b"R", i32(5) + b"\x01\x02\x03\x04")
CLEARTEXT = frame(b"R", i32(3))
FUNCTION = frame(b"V", i32(4) + i32(42)) + frame(b"V", i32(-1))
EMPTY = frame(b"I") + frame(b"n") + RFQ_IDLE

SEEDS = {
    "backend_message": {
        "ready_for_query": RFQ_IDLE,
        "data_row": data_row([b"42", None, b""]),
        "error_response": SYNTAX_ERROR,
        "row_description": row_description([("col", 23, 4, 1)]),
        "startup": STARTUP,
        "select": SELECT,
        "extended": EXTENDED,
        "fatal": FATAL,
        "notice_notify": NOTICE + NOTIFY,
        "copy": COPY_OUT + COPY_IN,
        "negotiate": NEGOTIATE,
        "auth": SASL + SASL_CONTINUE + MD5 + CLEARTEXT + frame(b"R", i32(12) + b"v=xyz"),
        "function_empty": FUNCTION + EMPTY,
    },
    # The connection target reads one flags byte first (see its doc comment).
    "connection": {
        "raw_startup_then_query": bytes([0x10]) + STARTUP + SELECT,
        "auto_startup_pipeline": bytes([0x2A | 0x30]) + EXTENDED + SELECT + SYNTAX_ERROR + RFQ_IDLE,
        "auto_startup_unsolicited": bytes([0x02]) + NOTICE + NOTIFY + PARAMS + FATAL,
        "md5": bytes([0x11]) + MD5 + AUTH_OK + KEY + RFQ_IDLE + SELECT,
        "cleartext": bytes([0x11]) + CLEARTEXT + AUTH_OK + RFQ_IDLE,
        "sasl": bytes([0x11]) + NEGOTIATE + SASL + SASL_CONTINUE,
        "startup_error": bytes([0x00]) + FATAL,
        "copy": bytes([0x12]) + COPY_OUT,
    },
    "numeric_decode": {
        "zero": numeric("0"),
        "one": numeric("1"),
        "neg_frac": numeric("-1.50"),
        "mixed": numeric("12345.6789"),
        "tiny": numeric("0.00000001"),
        "big": numeric("1" + "0" * 40),
        "nan": struct.pack(">hhHH", 0, 0, 0xC000, 0),
        "inf": struct.pack(">hhHH", 0, 0, 0xD000, 0),
        "text_exp": b"-1.5E-3",
        "text_inf": b"-Infinity",
    },
    "datetime_decode": {
        "interval": struct.pack(">qii", 3_723_000_001, 10, 14),
        "timetz": struct.pack(">qi", 45_296_789_012, -3600),
        "date_ts": struct.pack(">iq", -730_119, 86_400_000_000),
    },
    "binary_decode": {
        "uuid": bytes.fromhex("123456781234567812345678123456ff"),
        "uuid_text": b"{12345678-1234-5678-1234-567812345678}",
        "jsonb": b'\x01{"a": [1, 2]}',
        "int8": struct.pack(">q", -2),
        "bool": b"\x01",
    },
}


def main():
    for target, seeds in SEEDS.items():
        d = os.path.join(HERE, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
