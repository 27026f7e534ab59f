"""SEV certificate chains: an independent model, and a maker of chains.

Written for this project from the AMD SEV API specification (publication
55766: the AMD root key certificate of appendix B, the sev_cert of appendix
C) in Python 3 with python3-cryptography; checks/sevspec.py holds the
sev_cert layout this builds on.  Its uses:

* verify a real chain (ARK, ASK, CEK, OCA, PEK, PDH) independently of the C
  tool under test (tools/virt-qemu-sev-owner-cert.c);
* make chains in AMD's formats signed by roots of our own: a lab "AMD"
  (ARK and ASK, RSA-4096, RSASSA-PSS SHA-384 as AMD's since Rome) and, per
  platform, a CEK signed by that ASK, an OCA, a PEK signed by the CEK and
  the OCA and a PDH signed by the PEK.  The tests make chains that real
  data cannot give (a wrong usage, an old API version); the test lab can
  make its hosts' chains with it.

Formats, all integers little-endian (RSA moduli and signatures included):

* AMD root key certificate: version u32 (1), key_id[16], certifying_id[16],
  key_usage u32 (ARK 0x0, ASK 0x13), reserved[16], pub_exp_size u32 and
  modulus_size u32 (bits), pub_exp, modulus, signature (modulus_size).  The
  signature covers everything before it.  RSASSA-PSS, MGF1 with the same
  hash, salt as long as the hash: SHA-256 for 2048-bit keys (Naples),
  SHA-384 for 4096-bit keys (Rome and later).
* sev_cert (2084 bytes): the body (0x000-0x413: version, API major and
  minor, usage, algorithm, public key) and two signature slots (usage,
  algorithm, 512 bytes).  ECDSA signatures are r and s, 72 bytes each; the
  CEK's RSA signature by the ASK is as long as the ASK's modulus.
"""

import hashlib
import os
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

import sevspec
from sevspec import (ALGO_ECDH_SHA256, ALGO_ECDSA_SHA256, ALGO_ECDSA_SHA384,
                     ALGO_INVALID, ALGO_RSA_SHA256, ALGO_RSA_SHA384, CERT_SIZE,
                     EC_COORD_SIZE, OFF_SIG1, OFF_SIG1_USAGE, OFF_SIG2,
                     OFF_SIG2_USAGE, P384_SIZE, SevError, USAGE_ARK, USAGE_ASK,
                     USAGE_CEK, USAGE_INVALID, USAGE_OCA, USAGE_PDH, USAGE_PEK)

BODY_SIZE = 0x414
AMD_OFF_KEY_ID = 0x4
AMD_OFF_CERTIFYING_ID = 0x14
AMD_OFF_USAGE = 0x24
AMD_OFF_SIZES = 0x38
AMD_OFF_PUBEXP = 0x40

GENERATIONS = ("naples", "rome", "milan", "genoa", "turin")


# --- the AMD root key certificate (ARK, ASK) -----------------------------------

def _pss(bits):
    h = hashes.SHA256() if bits == 2048 else hashes.SHA384()
    return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h


def pack_amd_cert(pub, usage, key_id, certifying_id, signer):
    """An AMD root key certificate of RSA public key @pub, signed with the
    RSA private key @signer (the ARK's for itself and for the ASK)."""
    nums = pub.public_numbers()
    bits = pub.key_size
    nbytes = bits // 8
    body = bytearray(AMD_OFF_PUBEXP)
    struct.pack_into("<I", body, 0, 1)
    body[AMD_OFF_KEY_ID:AMD_OFF_KEY_ID + 16] = key_id
    body[AMD_OFF_CERTIFYING_ID:AMD_OFF_CERTIFYING_ID + 16] = certifying_id
    struct.pack_into("<I", body, AMD_OFF_USAGE, usage)
    struct.pack_into("<II", body, AMD_OFF_SIZES, bits, bits)
    body += nums.e.to_bytes(nbytes, "little")
    body += nums.n.to_bytes(nbytes, "little")
    pad, h = _pss(signer.key_size)
    sig = signer.sign(bytes(body), pad, h)
    return bytes(body) + sig[::-1]


def parse_amd_cert(blob):
    """dict: version, key_id, certifying_id, usage, pubkey (RSA), signed
    (the bytes covered) and sig (big-endian, as cryptography takes it)."""
    if len(blob) < AMD_OFF_PUBEXP:
        raise SevError("AMD certificate too short")
    (version,) = struct.unpack_from("<I", blob, 0)
    (usage,) = struct.unpack_from("<I", blob, AMD_OFF_USAGE)
    ebits, mbits = struct.unpack_from("<II", blob, AMD_OFF_SIZES)
    eb, mb = ebits // 8, mbits // 8
    if len(blob) != AMD_OFF_PUBEXP + eb + 2 * mb:
        raise SevError("AMD certificate size does not match its key sizes")
    e = int.from_bytes(blob[AMD_OFF_PUBEXP:AMD_OFF_PUBEXP + eb], "little")
    off = AMD_OFF_PUBEXP + eb
    n = int.from_bytes(blob[off:off + mb], "little")
    off += mb
    return {"version": version,
            "key_id": blob[AMD_OFF_KEY_ID:AMD_OFF_KEY_ID + 16],
            "certifying_id":
                blob[AMD_OFF_CERTIFYING_ID:AMD_OFF_CERTIFYING_ID + 16],
            "usage": usage, "bits": mbits,
            "pubkey": rsa.RSAPublicNumbers(e, n).public_key(),
            "signed": blob[:off], "sig": blob[off:off + mb][::-1],
            "sig_offset": off}


def verify_amd_cert(cert, signer):
    """True if @cert (bytes) is signed by @signer (bytes, an ARK)."""
    c = parse_amd_cert(cert)
    s = parse_amd_cert(signer)
    pad, h = _pss(s["bits"])
    try:
        s["pubkey"].verify(c["sig"], c["signed"], pad, h)
    except InvalidSignature:
        return False
    return c["certifying_id"] == s["key_id"]


# --- sev_cert signatures ---------------------------------------------------------

def _slot_offsets(slot):
    return (OFF_SIG1_USAGE, OFF_SIG1) if slot == 0 else (OFF_SIG2_USAGE,
                                                          OFF_SIG2)


def sign_ecdsa(cert, slot, usage, signer, algo=ALGO_ECDSA_SHA256):
    """@cert with signature slot @slot (0 or 1) set: usage, algorithm and
    the ECDSA P-384 signature by @signer of its body."""
    h = hashes.SHA256() if algo == ALGO_ECDSA_SHA256 else hashes.SHA384()
    der = signer.sign(cert[:BODY_SIZE], ec.ECDSA(h))
    r, s = utils.decode_dss_signature(der)
    out = bytearray(cert)
    uoff, soff = _slot_offsets(slot)
    struct.pack_into("<II", out, uoff, usage, algo)
    sig = r.to_bytes(EC_COORD_SIZE, "little") + s.to_bytes(EC_COORD_SIZE,
                                                            "little")
    out[soff:soff + 512] = sig + bytes(512 - len(sig))
    return bytes(out)


def sign_rsa(cert, slot, signer):
    """@cert signed by the ASK's RSA private key @signer (usage ASK)."""
    pad, h = _pss(signer.key_size)
    algo = ALGO_RSA_SHA256 if signer.key_size == 2048 else ALGO_RSA_SHA384
    sig = signer.sign(cert[:BODY_SIZE], pad, h)[::-1]
    out = bytearray(cert)
    uoff, soff = _slot_offsets(slot)
    struct.pack_into("<II", out, uoff, USAGE_ASK, algo)
    out[soff:soff + 512] = sig + bytes(512 - len(sig))
    return bytes(out)


def slot(cert, usage):
    """(algo, 512 signature bytes, offset of the signature) of the slot of
    @usage, or None."""
    for uoff, soff in ((OFF_SIG1_USAGE, OFF_SIG1), (OFF_SIG2_USAGE, OFF_SIG2)):
        u, a = struct.unpack_from("<II", cert, uoff)
        if u == usage:
            return a, cert[soff:soff + 512], soff
    return None


def verify_ecdsa(cert, signer_cert, usage):
    found = slot(cert, usage)
    if not found:
        return False
    algo, sig, _ = found
    h = hashes.SHA256() if algo == ALGO_ECDSA_SHA256 else hashes.SHA384()
    r = int.from_bytes(sig[:EC_COORD_SIZE], "little")
    s = int.from_bytes(sig[EC_COORD_SIZE:2 * EC_COORD_SIZE], "little")
    pub = sevspec.parse_cert(signer_cert)["pubkey"]
    try:
        pub.verify(utils.encode_dss_signature(r, s), cert[:BODY_SIZE],
                   ec.ECDSA(h))
    except InvalidSignature:
        return False
    return True


def verify_rsa(cert, ask):
    found = slot(cert, USAGE_ASK)
    if not found:
        return False
    _, sig, _ = found
    a = parse_amd_cert(ask)
    pad, h = _pss(a["bits"])
    try:
        a["pubkey"].verify(sig[:a["bits"] // 8][::-1], cert[:BODY_SIZE], pad, h)
    except InvalidSignature:
        return False
    return True


def verify_chain(ark, ask, cek, oca, pek, pdh):
    """The whole chain, independently of the tool: a list of the checks
    that failed (empty when it verifies)."""
    failed = []
    checks = [
        ("ARK self", lambda: verify_amd_cert(ark, ark)),
        ("ASK by ARK", lambda: verify_amd_cert(ask, ark)),
        ("CEK by ASK", lambda: verify_rsa(cek, ask)),
        ("OCA self", lambda: verify_ecdsa(oca, oca, USAGE_OCA)),
        ("PEK by CEK", lambda: verify_ecdsa(pek, cek, USAGE_CEK)),
        ("PEK by OCA", lambda: verify_ecdsa(pek, oca, USAGE_OCA)),
        ("PDH by PEK", lambda: verify_ecdsa(pdh, pek, USAGE_PEK)),
    ]
    for name, check in checks:
        if not check():
            failed.append(name)
    return failed


def chip_id(cek):
    """The chip's identity as the tool prints it: SHA-256 of the CEK's
    public key as an uncompressed SEC 1 point (0x04 || x || y)."""
    pub = sevspec.parse_cert(cek)["pubkey"]
    point = pub.public_bytes(serialization.Encoding.X962,
                             serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha256(point).hexdigest()


# --- making chains ---------------------------------------------------------------

class Root:
    """An "AMD" root of our own: ARK (self-signed) and ASK (signed by the
    ARK) in AMD's format.  4096-bit keys (RSASSA-PSS SHA-384, as AMD's
    since Rome) unless @bits is 2048 (SHA-256, as Naples)."""

    def __init__(self, bits=4096, ark_key=None, ask_key=None):
        self.ark_key = ark_key or rsa.generate_private_key(65537, bits)
        self.ask_key = ask_key or rsa.generate_private_key(65537, bits)
        ark_id = os.urandom(16)
        ask_id = os.urandom(16)
        self.ark = pack_amd_cert(self.ark_key.public_key(), USAGE_ARK,
                                 ark_id, ark_id, self.ark_key)
        self.ask = pack_amd_cert(self.ask_key.public_key(), USAGE_ASK,
                                 ask_id, ark_id, self.ark_key)


class Platform:
    """A platform's keys and certificates, signed down from @root: the CEK
    by the ASK, the OCA by itself, the PEK by the CEK and the OCA, the PDH
    by the PEK.  @api is the (major, minor) of the PEK, OCA and PDH; the
    CEK carries @cek_api, as the CEKs of AMD's key distribution service
    do.  @pdh_key is the platform's PDH private key (P-384) if it has one
    already.  @usages overrides a certificate's key usage (tests)."""

    def __init__(self, root, api=(1, 55), cek_api=(0, 14), usages=None,
                 pdh_key=None):
        usages = usages or {}
        self.root = root
        self.cek_key = sevspec.generate_key()
        self.oca_key = sevspec.generate_key()
        self.pek_key = sevspec.generate_key()
        self.pdh_key = pdh_key or sevspec.generate_key()

        def body(key, usage, algo, version):
            return sevspec.pack_cert(key.public_key(), usage=usage, algo=algo,
                                     api_major=version[0],
                                     api_minor=version[1])

        cek = body(self.cek_key, usages.get("cek", USAGE_CEK),
                   ALGO_ECDSA_SHA256, cek_api)
        self.cek = sign_rsa(cek, 0, root.ask_key)
        oca = body(self.oca_key, usages.get("oca", USAGE_OCA),
                   ALGO_ECDSA_SHA256, api)
        self.oca = sign_ecdsa(oca, 0, USAGE_OCA, self.oca_key)
        pek = body(self.pek_key, usages.get("pek", USAGE_PEK),
                   ALGO_ECDSA_SHA256, api)
        pek = sign_ecdsa(pek, 0, USAGE_OCA, self.oca_key)
        self.pek = sign_ecdsa(pek, 1, USAGE_CEK, self.cek_key)
        pdh = body(self.pdh_key, usages.get("pdh", USAGE_PDH),
                   ALGO_ECDH_SHA256, api)
        self.pdh = sign_ecdsa(pdh, 0, USAGE_PEK, self.pek_key)

    def cert_chain(self):
        """QEMU's cert-chain (query-sev-capabilities): PEK, OCA, CEK."""
        return self.pek + self.oca + self.cek

    def chip_id(self):
        return chip_id(self.cek)


def flip(blob, offset):
    """@blob with one bit of the byte at @offset changed."""
    out = bytearray(blob)
    out[offset] ^= 0x01
    return bytes(out)


__all__ = ["Root", "Platform", "GENERATIONS", "parse_amd_cert",
           "pack_amd_cert", "verify_amd_cert", "verify_chain", "chip_id",
           "sign_ecdsa", "sign_rsa", "slot", "flip", "BODY_SIZE",
           "CERT_SIZE", "USAGE_INVALID", "ALGO_INVALID", "P384_SIZE",
           "ALGO_ECDSA_SHA384", "ALGO_RSA_SHA256", "ALGO_RSA_SHA384"]
