#!/usr/bin/python3
#
# The SEV launch secret as the e2e tests build and look for it, written from
# the AMD SEV API specification (LAUNCH_SECRET, section 6.6) and OVMF's
# secret table, independently of virt-qemu-sev-owner (python3-cryptography):
#
#   table  = GUID 1e74f542-71dd-4d66-963e-ef4287ff173b (bytes_le) ||
#            total length (u32 le) || entries (GUID || u32 le length with
#            the 20-byte entry header || data), zero-padded by
#            16 - len % 16 bytes (as libvirt's virt-qemu-sev-validate);
#            this project's entries: the transport key (GUID
#            68777468-ccbb-4873-a893-0b2880592c67, 32 bytes) and its
#            identifier (GUID 20995426-ca45-47c7-8b08-dc1c7127134d, ASCII)
#   data   = AES-128-CTR(TEK, iv, table)
#   header = flags (u32 le, 0) || iv || HMAC-SHA256(TIK, 0x01 || flags ||
#            iv || len(table) || len(table) || data || measurement[32])

import hashlib
import hmac
import os
import struct
import uuid

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TABLE_GUID = uuid.UUID("1e74f542-71dd-4d66-963e-ef4287ff173b")
TRANSPORT_KEY_GUID = uuid.UUID("68777468-ccbb-4873-a893-0b2880592c67")
KEY_ID_GUID = uuid.UUID("20995426-ca45-47c7-8b08-dc1c7127134d")


def secret_table(key, key_id):
    """The plain secret table with the transport key @key (None: no such
    entry) and the identifier @key_id."""
    entries = b""
    for guid, data in ((TRANSPORT_KEY_GUID, key), (KEY_ID_GUID, key_id.encode())):
        if data is not None:
            entries += guid.bytes_le + struct.pack("<I", 20 + len(data)) + data
    table = TABLE_GUID.bytes_le + struct.pack("<I", 20 + len(entries)) + entries
    return table + bytes(16 - len(table) % 16)


def launch_secret(table, tek, tik, measurement, iv=None):
    """(header, data) of the LAUNCH_SECRET packet carrying @table for the
    launch whose measurement (32 bytes) is @measurement."""
    iv = iv or os.urandom(16)
    enc = Cipher(algorithms.AES(tek), modes.CTR(iv)).encryptor()
    data = enc.update(table) + enc.finalize()
    flags = struct.pack("<I", 0)
    mac = hmac.new(tik, b"\x01" + flags + iv + struct.pack("<II", len(table), len(table)) +
                   data + measurement, hashlib.sha256).digest()
    return flags + iv + mac, data
