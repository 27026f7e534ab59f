"""An independent model of the AMD SEV (plain SEV, not SNP) launch formats.

Written for this project's tests from the AMD SEV API specification's
definitions (publication 55766: sev_cert format in appendix C, the key
derivation of chapter 2, LAUNCH_START / LAUNCH_MEASURE / LAUNCH_SECRET in
chapter 6), in Python 3 with python3-cryptography only.  It is used to check
the two C implementations of the project against the spec, never the other
way round: the guest owner's tool (tools/virt-qemu-sev-owner) and the
platform side of the QEMU stand-in (e2e/standin).

Details that the spec's prose leaves open were checked (read only) against
AMD's firmware sources (amd/AMD-ASPFW: sev_channel.c, nist_kdf.c, ecdh.c,
ecc.c), AMD's sev-tool and virtee's sev crate, which all agree:

* ECDH shared secret Z: the x coordinate of d*Q as 48 bytes BIG-endian (the
  usual SEC1 encoding, what OpenSSL's ECDH derive returns).  The firmware
  keeps curve numbers little-endian internally and byte-reverses x before
  the KDF.  Public key coordinates in a sev_cert are little-endian.
* KDF: NIST SP 800-108 counter mode, PRF HMAC-SHA256:
  K(i) = HMAC(key, le32(i) || label || 0x00 || context || le32(L)), i from 1,
  L = output length in BITS.  Every key here is 128 bits: master secret, KEK
  and KIK are 16 bytes each and L = 128.
  master_secret = KDF(Z[48], "sev-master-secret", nonce[16])
  KEK = KDF(master_secret[16], "sev-kek", "")
  KIK = KDF(master_secret[16], "sev-kik", "")
* session: wrap_tk = AES-128-CTR(KEK, wrap_iv, TEK || TIK),
  wrap_mac = HMAC-SHA256(KIK[16], wrap_tk),
  policy_mac = HMAC-SHA256(TIK, le32(policy)).
* measurement = HMAC-SHA256(TIK, 0x04 || api_major || api_minor || build_id
  || le32(policy) || LD[32] || mnonce[16]).
* LAUNCH_SECRET: mac = HMAC-SHA256(TIK, 0x01 || le32(flags) || iv ||
  le32(guest_len) || le32(trans_len) || data || measurement[32]).

Nothing here prints or logs key material.
"""

import hashlib
import hmac
import re
import struct
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class SevError(Exception):
    """A structure does not parse, or a MAC does not verify."""


# --- sev_cert (appendix C) ---------------------------------------------------

CERT_SIZE = 0x824
CERT_VERSION = 1

USAGE_ARK = 0x0
USAGE_ASK = 0x13
USAGE_INVALID = 0x1000
USAGE_OCA = 0x1001
USAGE_PEK = 0x1002
USAGE_PDH = 0x1003
USAGE_CEK = 0x1004

ALGO_INVALID = 0x0
ALGO_RSA_SHA256 = 0x1
ALGO_ECDSA_SHA256 = 0x2
ALGO_ECDH_SHA256 = 0x3
ALGO_RSA_SHA384 = 0x101
ALGO_ECDSA_SHA384 = 0x102
ALGO_ECDH_SHA384 = 0x103

CURVE_P256 = 1
CURVE_P384 = 2

OFF_VERSION = 0x0
OFF_API_MAJOR = 0x4
OFF_API_MINOR = 0x5
OFF_PUBKEY_USAGE = 0x8
OFF_PUBKEY_ALGO = 0xC
OFF_PUBKEY = 0x10
PUBKEY_SIZE = 1028
OFF_SIG1_USAGE = 0x414
OFF_SIG1_ALGO = 0x418
OFF_SIG1 = 0x41C
OFF_SIG2_USAGE = 0x61C
OFF_SIG2_ALGO = 0x620
OFF_SIG2 = 0x624
SIG_SIZE = 512

EC_COORD_SIZE = 72      # 576 bits, little-endian, zero padded
P384_SIZE = 48


def _le(value, size):
    return value.to_bytes(size, "little")


def pack_cert(pubkey, usage=USAGE_PDH, algo=ALGO_ECDH_SHA256,
              api_major=0, api_minor=0):
    """sev_cert of a P-384 public key (ECDH/ECDSA), both signature
    slots unused (usage 0x1000, algo 0, zeros)."""
    if not isinstance(pubkey, ec.EllipticCurvePublicKey) or \
       not isinstance(pubkey.curve, ec.SECP384R1):
        raise SevError("only P-384 public keys are supported")
    nums = pubkey.public_numbers()
    cert = bytearray(CERT_SIZE)
    struct.pack_into("<IBB", cert, OFF_VERSION, CERT_VERSION,
                     api_major, api_minor)
    struct.pack_into("<II", cert, OFF_PUBKEY_USAGE, usage, algo)
    struct.pack_into("<I", cert, OFF_PUBKEY, CURVE_P384)
    cert[OFF_PUBKEY + 4:OFF_PUBKEY + 4 + EC_COORD_SIZE] = \
        _le(nums.x, EC_COORD_SIZE)
    cert[OFF_PUBKEY + 4 + EC_COORD_SIZE:
         OFF_PUBKEY + 4 + 2 * EC_COORD_SIZE] = _le(nums.y, EC_COORD_SIZE)
    struct.pack_into("<II", cert, OFF_SIG1_USAGE, USAGE_INVALID, ALGO_INVALID)
    struct.pack_into("<II", cert, OFF_SIG2_USAGE, USAGE_INVALID, ALGO_INVALID)
    return bytes(cert)


def parse_cert(blob):
    """Parse a sev_cert holding an EC P-384 public key.  Returns a dict with
    version, api_major, api_minor, usage, algo, curve, sig1_usage, sig1_algo,
    sig2_usage, sig2_algo and 'pubkey' (a cryptography public key object).
    Raises SevError on a bad size, version, curve, reserved bytes or a
    point not on the curve."""
    if len(blob) != CERT_SIZE:
        raise SevError("sev_cert must be %d bytes, got %d" %
                       (CERT_SIZE, len(blob)))
    version, api_major, api_minor = struct.unpack_from("<IBB", blob,
                                                       OFF_VERSION)
    usage, algo = struct.unpack_from("<II", blob, OFF_PUBKEY_USAGE)
    if version != CERT_VERSION:
        raise SevError("sev_cert version %d" % version)
    if algo not in (ALGO_ECDSA_SHA256, ALGO_ECDH_SHA256,
                    ALGO_ECDSA_SHA384, ALGO_ECDH_SHA384):
        raise SevError("sev_cert pubkey algo 0x%x is not EC" % algo)
    (curve,) = struct.unpack_from("<I", blob, OFF_PUBKEY)
    if curve != CURVE_P384:
        raise SevError("sev_cert curve %d is not P-384" % curve)
    qx = blob[OFF_PUBKEY + 4:OFF_PUBKEY + 4 + EC_COORD_SIZE]
    qy = blob[OFF_PUBKEY + 4 + EC_COORD_SIZE:
              OFF_PUBKEY + 4 + 2 * EC_COORD_SIZE]
    rest = blob[OFF_PUBKEY + 4 + 2 * EC_COORD_SIZE:OFF_PUBKEY + PUBKEY_SIZE]
    if any(rest):
        raise SevError("sev_cert reserved pubkey bytes are not zero")
    x = int.from_bytes(qx, "little")
    y = int.from_bytes(qy, "little")
    try:
        pub = ec.EllipticCurvePublicNumbers(x, y, ec.SECP384R1()).public_key()
    except ValueError as e:
        raise SevError("sev_cert public key is not a P-384 point: %s" % e)
    s1u, s1a = struct.unpack_from("<II", blob, OFF_SIG1_USAGE)
    s2u, s2a = struct.unpack_from("<II", blob, OFF_SIG2_USAGE)
    return {"version": version, "api_major": api_major,
            "api_minor": api_minor, "usage": usage, "algo": algo,
            "curve": curve, "pubkey": pub,
            "sig1_usage": s1u, "sig1_algo": s1a,
            "sig2_usage": s2u, "sig2_algo": s2a}


def cert_pubkey(cert_or_key):
    """A public key from a sev_cert (bytes) or a key object."""
    if isinstance(cert_or_key, (bytes, bytearray)):
        return parse_cert(bytes(cert_or_key))["pubkey"]
    if isinstance(cert_or_key, ec.EllipticCurvePrivateKey):
        return cert_or_key.public_key()
    return cert_or_key


# --- keys ----------------------------------------------------------------------

def generate_key():
    return ec.generate_private_key(ec.SECP384R1())


def key_from_scalar(d):
    """A P-384 private key from its integer scalar (known-answer tests)."""
    return ec.derive_private_key(d, ec.SECP384R1())


def key_to_pem(key, fmt="pkcs8"):
    """PEM of a private key: 'pkcs8' (BEGIN PRIVATE KEY) or 'sec1'
    (BEGIN EC PRIVATE KEY)."""
    f = {"pkcs8": serialization.PrivateFormat.PKCS8,
         "sec1": serialization.PrivateFormat.TraditionalOpenSSL}[fmt]
    return key.private_bytes(serialization.Encoding.PEM, f,
                             serialization.NoEncryption())


def key_from_pem(data):
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or \
       not isinstance(key.curve, ec.SECP384R1):
        raise SevError("not a P-384 private key")
    return key


def ecdh_z(priv, peer):
    """Shared secret Z: x coordinate of priv*peer, 48 bytes big-endian."""
    z = priv.exchange(ec.ECDH(), cert_pubkey(peer))
    assert len(z) == P384_SIZE
    return z


# --- key derivation (chapter 2) ------------------------------------------------

LABEL_MASTER = b"sev-master-secret"
LABEL_KEK = b"sev-kek"
LABEL_KIK = b"sev-kik"
KEY_SIZE = 16


def kdf(key, label, context=b"", length=KEY_SIZE):
    """NIST SP 800-108 KDF in counter mode, PRF HMAC-SHA256, counter and L
    as 32-bit little-endian, L in bits, a 0x00 between label and context."""
    out = b""
    i = 1
    lbits = _le(length * 8, 4)
    while len(out) < length:
        out += hmac.new(key, _le(i, 4) + label + b"\x00" + context + lbits,
                        hashlib.sha256).digest()
        i += 1
    return out[:length]


def master_secret(z, nonce):
    return kdf(z, LABEL_MASTER, nonce)


def kek_kik(master):
    return kdf(master, LABEL_KEK), kdf(master, LABEL_KIK)


def _hmac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def aes128_ctr(key, iv, data):
    if len(key) != 16 or len(iv) != 16:
        raise SevError("AES-128-CTR needs a 16-byte key and IV")
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


# --- LAUNCH_START session (chapter 6.2) -------------------------------------

SESSION_SIZE = 128


def pack_session(nonce, wrap_tk, wrap_iv, wrap_mac, policy_mac):
    s = nonce + wrap_tk + wrap_iv + wrap_mac + policy_mac
    if (len(nonce), len(wrap_tk), len(wrap_iv), len(wrap_mac),
            len(policy_mac)) != (16, 32, 16, 32, 32):
        raise SevError("bad session field sizes")
    return s


def parse_session(blob):
    if len(blob) != SESSION_SIZE:
        raise SevError("session must be %d bytes, got %d" %
                       (SESSION_SIZE, len(blob)))
    return {"nonce": blob[0:16], "wrap_tk": blob[16:48],
            "wrap_iv": blob[48:64], "wrap_mac": blob[64:96],
            "policy_mac": blob[96:128]}


def policy_mac(tik, policy):
    return _hmac(tik, _le(policy, 4))


def make_session(pdh, odh_priv, policy, nonce, tek, tik, wrap_iv):
    """The guest owner's side of LAUNCH_START.  pdh: the platform's PDH
    (sev_cert bytes or public key); odh_priv: the owner's P-384 private key.
    Returns (dh_cert, session) as bytes."""
    for name, v in (("nonce", nonce), ("tek", tek), ("tik", tik),
                    ("wrap_iv", wrap_iv)):
        if len(v) != 16:
            raise SevError("%s must be 16 bytes" % name)
    z = ecdh_z(odh_priv, pdh)
    kek, kik = kek_kik(master_secret(z, nonce))
    wrap_tk = aes128_ctr(kek, wrap_iv, tek + tik)
    session = pack_session(nonce, wrap_tk, wrap_iv, _hmac(kik, wrap_tk),
                           policy_mac(tik, policy))
    dh_cert = pack_cert(odh_priv.public_key(), USAGE_PDH, ALGO_ECDH_SHA256)
    return dh_cert, session


def unwrap_session(pdh_priv, dh_cert, session, policy):
    """The platform's side of LAUNCH_START: check dh_cert, derive KEK/KIK,
    check wrap_mac, unwrap TEK/TIK, check policy_mac.  Returns (tek, tik);
    raises SevError when anything does not verify."""
    c = parse_cert(dh_cert)
    if c["usage"] != USAGE_PDH or c["algo"] != ALGO_ECDH_SHA256:
        raise SevError("dh_cert is not a PDH/ECDH-SHA256 sev_cert")
    s = parse_session(session)
    z = ecdh_z(pdh_priv, c["pubkey"])
    kek, kik = kek_kik(master_secret(z, s["nonce"]))
    if not hmac.compare_digest(_hmac(kik, s["wrap_tk"]), s["wrap_mac"]):
        raise SevError("wrap_mac does not verify")
    tk = aes128_ctr(kek, s["wrap_iv"], s["wrap_tk"])
    tek, tik = tk[:16], tk[16:]
    if not hmac.compare_digest(policy_mac(tik, policy), s["policy_mac"]):
        raise SevError("policy_mac does not verify")
    return tek, tik


# --- LAUNCH_MEASURE (chapter 6.5) ------------------------------------------

MEASURE_CTX = 0x04
SECRET_CTX = 0x01


class GUIDTable:
    """An OVMF GUID table: guid || total_len || entries, each entry
    guid || len (incl. its header) || data, lengths little-endian of
    lenlen bytes, then zero padding by 16 - (len % 16) bytes."""

    def __init__(self, guid, lenlen):
        self.guid = guid
        self.lenlen = lenlen
        self.items = []

    def add(self, guid, data):
        self.items.append((guid, bytes(data)))

    def build(self):
        if not self.items:
            return b""
        body = b""
        for guid, data in self.items:
            body += guid.bytes_le + _le(16 + self.lenlen + len(data),
                                        self.lenlen) + data
        total = 16 + self.lenlen + len(body)
        table = self.guid.bytes_le + _le(total, self.lenlen) + body
        return table + bytes(16 - (len(table) % 16))


KERNEL_TABLE_GUID = uuid.UUID("9438d606-4f22-4cc9-b479-a793d411fd21")
KERNEL_GUID = uuid.UUID("4de79437-abd2-427f-b835-d5b172d2045b")
INITRD_GUID = uuid.UUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
CMDLINE_GUID = uuid.UUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")


def kernel_hashes_table(kernel, initrd=b"", cmdline=""):
    """The table OVMF measures with kernel-hashes=on: SHA-256 of the
    command line (with its NUL), of the initrd and of the kernel."""
    t = GUIDTable(KERNEL_TABLE_GUID, 2)
    t.add(CMDLINE_GUID, hashlib.sha256(cmdline.encode() + b"\x00").digest())
    t.add(INITRD_GUID, hashlib.sha256(initrd).digest())
    t.add(KERNEL_GUID, hashlib.sha256(kernel).digest())
    return t.build()


def launch_digest(firmware, kernel=None, initrd=b"", cmdline=""):
    """LD: SHA-256 over the firmware (+ the kernel hashes table)."""
    data = firmware
    if kernel is not None:
        data += kernel_hashes_table(kernel, initrd, cmdline)
    return hashlib.sha256(data).digest()


def measurement(tik, api_major, api_minor, build_id, policy, digest, mnonce):
    """The 32-byte launch measurement."""
    if len(digest) != 32 or len(mnonce) != 16:
        raise SevError("digest must be 32 bytes and mnonce 16")
    msg = (bytes([MEASURE_CTX, api_major, api_minor, build_id]) +
           _le(policy, 4) + digest + mnonce)
    return _hmac(tik, msg)


def measure_blob(tik, api_major, api_minor, build_id, policy, digest, mnonce):
    """measurement || mnonce, 48 bytes (query-sev-launch-measure's data)."""
    return measurement(tik, api_major, api_minor, build_id, policy, digest,
                       mnonce) + mnonce


def verify_measurement(tik, api_major, api_minor, build_id, policy, digest,
                       blob):
    """True iff the 48-byte blob is the measurement of this launch."""
    if len(blob) != 48:
        return False
    want = measurement(tik, api_major, api_minor, build_id, policy, digest,
                       blob[32:])
    return hmac.compare_digest(want, blob[:32])


# --- LAUNCH_SECRET (chapter 6.6) -------------------------------------------

HEADER_SIZE = 52


def _secret_mac(tik, flags, iv, guest_len, data, meas):
    msg = (bytes([SECRET_CTX]) + _le(flags, 4) + iv + _le(guest_len, 4) +
           _le(len(data), 4) + data + meas)
    return _hmac(tik, msg)


def build_secret(tek, tik, meas, plaintext, iv, flags=0):
    """(header[52], data) of a LAUNCH_SECRET packet.  meas: the 32-byte
    measurement (the first 32 bytes of the measure blob)."""
    if len(meas) == 48:
        meas = meas[:32]
    if len(meas) != 32 or len(iv) != 16:
        raise SevError("measurement must be 32 bytes and iv 16")
    data = aes128_ctr(tek, iv, plaintext)
    mac = _secret_mac(tik, flags, iv, len(plaintext), data, meas)
    return _le(flags, 4) + iv + mac, data


def open_secret(tek, tik, meas, header, data):
    """Verify a LAUNCH_SECRET packet's MAC against this launch's
    measurement and decrypt it.  Returns the plaintext; raises SevError."""
    if len(meas) == 48:
        meas = meas[:32]
    if len(header) != HEADER_SIZE:
        raise SevError("packet header must be %d bytes, got %d" %
                       (HEADER_SIZE, len(header)))
    flags = int.from_bytes(header[0:4], "little")
    iv, mac = header[4:20], header[20:52]
    if not hmac.compare_digest(_secret_mac(tik, flags, iv, len(data), data,
                                           meas), mac):
        raise SevError("secret header MAC does not verify")
    return aes128_ctr(tek, iv, data)


# --- the secret table (OVMF, this project's entries) ------------------------

SECRET_TABLE_GUID = uuid.UUID("1e74f542-71dd-4d66-963e-ef4287ff173b")
TRANSPORT_KEY_GUID = uuid.UUID("68777468-ccbb-4873-a893-0b2880592c67")
KEY_ID_GUID = uuid.UUID("20995426-ca45-47c7-8b08-dc1c7127134d")
KEY_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def build_secret_table(entries):
    """entries: a list of (uuid.UUID, bytes), in order."""
    t = GUIDTable(SECRET_TABLE_GUID, 4)
    for guid, data in entries:
        t.add(guid, data)
    return t.build()


def project_secret_table(transport_key, key_id):
    if len(transport_key) != 32:
        raise SevError("the transport key is 32 bytes")
    if not KEY_ID_RE.match(key_id):
        raise SevError("bad key id")
    return build_secret_table([(TRANSPORT_KEY_GUID, transport_key),
                               (KEY_ID_GUID, key_id.encode("ascii"))])


def parse_secret_table(table):
    """Returns a list of (uuid.UUID, bytes).  Raises SevError on a wrong
    table GUID, lengths that do not fit, or non-zero padding."""
    if len(table) < 20:
        raise SevError("secret table too short")
    if uuid.UUID(bytes_le=table[0:16]) != SECRET_TABLE_GUID:
        raise SevError("not a secret table (GUID)")
    total = int.from_bytes(table[16:20], "little")
    if total < 20 or total > len(table):
        raise SevError("secret table length %d does not fit" % total)
    if any(table[total:]):
        raise SevError("secret table padding is not zero")
    pos = 20
    out = []
    while pos < total:
        if total - pos < 20:
            raise SevError("truncated secret table entry")
        guid = uuid.UUID(bytes_le=table[pos:pos + 16])
        n = int.from_bytes(table[pos + 16:pos + 20], "little")
        if n < 20 or pos + n > total:
            raise SevError("secret table entry length %d does not fit" % n)
        out.append((guid, table[pos + 20:pos + n]))
        pos += n
    return out


def project_secret_entries(table):
    """(transport_key, key_id) from a secret table of this project."""
    ents = dict(parse_secret_table(table))
    key = ents.get(TRANSPORT_KEY_GUID)
    kid = ents.get(KEY_ID_GUID)
    if key is None or len(key) != 32:
        raise SevError("no 32-byte transport key entry")
    if kid is None or not KEY_ID_RE.match(kid.decode("ascii", "replace")):
        raise SevError("no valid key id entry")
    return key, kid.decode("ascii")
