#!/usr/bin/env python3
"""Test vectors for provreg signed intents (docs/SIGNING.md).

Made independently of the Rust code, with Python's `rfc8785` (RFC 8785 JSON
canonicalisation) and `cryptography` (Ed25519), so that the Rust unit test
`registry::intent::tests::signing_vectors`, which hard-codes the same values,
checks our implementation against another one.

    pip install rfc8785 cryptography
    python3 scripts/signing-vectors.py            # JSON
    python3 scripts/signing-vectors.py --markdown # the SIGNING.md section
    python3 scripts/signing-vectors.py --rust     # the Rust VECTORS constant

Ed25519 signatures are deterministic, so the output never changes.
"""

import base64
import hashlib
import json
import sys

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = b"provreg-intent:v1\n"

# The secret keys of RFC 8032 section 7.1, tests 1 and 2: public test keys,
# never to be used for anything real.
SEED_A = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
SEED_B = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"

LOG = "registry.example.org/log"
PARTY = "0192f0c1-0000-7000-8000-0000000000a1"
LICENSEE = "0192f0c1-0000-7000-8000-0000000000b2"
CONTENT = "0192f0c1-0000-7000-8000-000000000c01"
LICENCE = "0192f0c1-0000-7000-8000-0000000001c1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key(seed_hex: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))


def public_b64(seed_hex: str) -> str:
    raw = key(seed_hex).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return b64(raw)


def vector(name: str, intent: dict, signers: list) -> dict:
    """signers: (party_id, seed_hex) pairs, in the order they sign."""
    message = PREFIX + rfc8785.dumps(intent)
    sigs = []
    for party, seed in signers:
        sigs.append(
            {
                "party_id": party,
                "public_key": public_b64(seed),
                "signature": b64(key(seed).sign(message)),
            }
        )
    # The body as a client might send it: its own member order and
    # indentation, not canonical. Only the intent's canonical form is signed.
    body = json.dumps({"intent": intent, "signatures": sigs}, indent=2, ensure_ascii=False)
    return {
        "name": name,
        "body": body,
        "message_text": message.decode("utf-8"),
        "message_hex": message.hex(),
        "replay_key_hex": hashlib.sha256(message).hexdigest(),
        "signers": [
            {
                "party_id": party,
                "seed_hex": seed,
                "public_key_b64": public_b64(seed),
                "signature_b64": s["signature"],
            }
            for (party, seed), s in zip(signers, sigs)
        ],
    }


def vectors() -> list:
    return [
        vector(
            "licence.revoke",
            {
                "type": "licence.revoke",
                "log": LOG,
                "nonce": "000102030405060708090a0b0c0d0e0f",
                "expires_at": "2026-03-01T12:00:00Z",
                "licence_id": LICENCE,
                # Non-ASCII, a quote and a newline: shows JCS string escaping
                # (only ", \ and control characters are escaped).
                "reason": 'Fee of 1 200 € unpaid; "clause 7.2" breached\nNotice sent 2026-02-01',
            },
            [(PARTY, SEED_A)],
        ),
        vector(
            "key.rotate",
            {
                "type": "key.rotate",
                "log": LOG,
                "nonce": "f0e1d2c3b4a5968778695a4b3c2d1e0f0123456789abcdef",
                "expires_at": "2026-03-01T12:00:00Z",
                "party_id": PARTY,
                "public_key": public_b64(SEED_B),
            },
            # Signed by the party's current key (A) and the new one (B).
            [(PARTY, SEED_A), (PARTY, SEED_B)],
        ),
        vector(
            "licence.grant",
            {
                "type": "licence.grant",
                "log": LOG,
                "nonce": "8f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99",
                "expires_at": "2026-03-02T09:30:00Z",
                "content_id": CONTENT,
                "licensee": LICENSEE,
                "territories": {"include": ["WORLD"], "exclude": ["US", "CA"]},
                "media": ["svod", "avod"],
                "term": {"start": "2026-04-01", "end": "2027-04-01"},
                "exclusive": True,
                "sublicensable": False,
                "fee_ref": "INV-2026-0042",
            },
            [(PARTY, SEED_A)],
        ),
    ]


def markdown(vs: list) -> str:
    out = []
    for v in vs:
        out.append(f"### `{v['name']}`\n")
        for s in v["signers"]:
            out.append(f"Signer `{s['party_id']}`:\n")
            out.append(f"- seed (hex): `{s['seed_hex']}`")
            out.append(f"- public key (base64): `{s['public_key_b64']}`")
            out.append(f"- signature (base64): `{s['signature_b64']}`\n")
        out.append("Request body:\n")
        out.append("```json\n" + v["body"] + "\n```\n")
        out.append(
            "Signed message as text (the first line is the prefix; the JSON "
            "after it has no trailing newline):\n"
        )
        out.append("```text\n" + v["message_text"] + "\n```\n")
        out.append("Signed message (hex):\n")
        out.append("```text\n" + v["message_hex"] + "\n```\n")
        out.append(f"Replay key, SHA-256 of the message (hex): `{v['replay_key_hex']}`\n")
    return "\n".join(out)


def rust(vs: list) -> str:
    def lit(s: str) -> str:
        assert '"###' not in s
        return 'r###"' + s + '"###'

    out = ["    const VECTORS: &[Vector] = &["]
    for v in vs:
        out.append("        Vector {")
        out.append(f"            name: {json.dumps(v['name'])},")
        out.append(f"            body: {lit(v['body'])},")
        out.append(f"            message_hex: {json.dumps(v['message_hex'])},")
        out.append(f"            replay_key_hex: {json.dumps(v['replay_key_hex'])},")
        out.append("            signers: &[")
        for s in v["signers"]:
            out.append("                Signer {")
            out.append(f"                    seed_hex: {json.dumps(s['seed_hex'])},")
            out.append(f"                    public_key_b64: {json.dumps(s['public_key_b64'])},")
            out.append(f"                    signature_b64: {json.dumps(s['signature_b64'])},")
            out.append("                },")
        out.append("            ],")
        out.append("        },")
    out.append("    ];")
    return "\n".join(out)


def main() -> None:
    vs = vectors()
    if "--markdown" in sys.argv:
        print(markdown(vs))
    elif "--rust" in sys.argv:
        print(rust(vs))
    else:
        print(json.dumps(vs, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
