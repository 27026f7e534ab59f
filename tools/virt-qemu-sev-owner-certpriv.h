/*
 * virt-qemu-sev-owner-certpriv.h: the certificate formats and signatures
 * that the chain verification (virt-qemu-sev-owner-chain.c) uses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef LIBVIRT_VIRT_QEMU_SEV_OWNER_CERTPRIV_H_ALLOW
# error "virt-qemu-sev-owner-certpriv.h may only be included by virt-qemu-sev-owner-cert.c and virt-qemu-sev-owner-chain.c"
#endif /* LIBVIRT_VIRT_QEMU_SEV_OWNER_CERTPRIV_H_ALLOW */

#pragma once

#include "virt-qemu-sev-owner-cert.h"

/* The AMD root key certificate (appendix B): version, key id, certifying
 * id, key usage, reserved, the sizes in bits of the public exponent and
 * of the modulus, the exponent, the modulus and the signature (as long as
 * the modulus), all little-endian. */
#define AMD_CERT_OFF_VERSION 0x0
#define AMD_CERT_OFF_KEY_ID 0x4
#define AMD_CERT_OFF_CERTIFYING_ID 0x14
#define AMD_CERT_OFF_KEY_USAGE 0x24
#define AMD_CERT_OFF_PUBEXP_SIZE 0x38
#define AMD_CERT_OFF_MODULUS_SIZE 0x3C
#define AMD_CERT_OFF_PUBEXP 0x40
#define AMD_CERT_ID_SIZE 16

typedef struct {
    const char *name;           /* "ARK", "ASK" */
    const char *root;           /* the root's name */
    uint8_t keyId[AMD_CERT_ID_SIZE];
    uint8_t certifyingId[AMD_CERT_ID_SIZE];
    const uint8_t *exp;         /* little-endian */
    size_t expSize;             /* bytes */
    const uint8_t *mod;         /* little-endian */
    size_t modSize;             /* bytes */
    const uint8_t *data;        /* the signed part: up to the signature */
    size_t signedLen;
    const uint8_t *sig;         /* little-endian, modSize bytes */
} sevOwnerAMDCert;

typedef struct {
    const char *name;           /* "PEK" */
    const uint8_t *data;        /* SEV_CERT_SIZE bytes */
    uint32_t usage;
    uint32_t algo;
    sevOwnerPubKey key;
} sevOwnerSEVCert;

int
sevOwnerRefusal(char **reason,
                const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

char *
sevOwnerHex(const uint8_t *data,
            size_t len);

void
sevOwnerLog(GString *log,
            const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

const char *
sevOwnerPSSName(const sevOwnerAMDCert *cert);

int
sevOwnerRootVerify(const sevOwnerRoot *root,
                   sevOwnerAMDCert *ark,
                   sevOwnerAMDCert *ask,
                   GString *log,
                   char **reason);

int
sevOwnerSEVCertParse(const char *name,
                     const uint8_t *data,
                     size_t len,
                     uint32_t usage,
                     sevOwnerSEVCert *cert,
                     char **reason);

const uint8_t *
sevOwnerSigSlot(const sevOwnerSEVCert *cert,
                uint32_t usage,
                uint32_t *algo);

int
sevOwnerCheckSignedBy(const sevOwnerSEVCert *cert,
                      const sevOwnerSEVCert *signer,
                      GString *log,
                      char **reason);

bool
sevOwnerCEKSignedByASK(const sevOwnerSEVCert *cek,
                       const sevOwnerAMDCert *ask);
