/*
 * virt-qemu-sev-owner-cert.h: SEV certificates and the platform's
 * certificate chain (AMD SEV API, publication 55766, appendices B and C)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

/* The SEV certificate (sev_cert, appendix C), all integers
 * little-endian: version, API major and minor, the public key's usage and
 * algorithm, the key (1028 bytes) and two signature slots (usage,
 * algorithm, 512 bytes of signature). */
#define SEV_CERT_SIZE 0x824
#define SEV_CERT_OFF_VERSION 0x0
#define SEV_CERT_OFF_API_MAJOR 0x4
#define SEV_CERT_OFF_API_MINOR 0x5
#define SEV_CERT_OFF_PUBKEY_USAGE 0x8
#define SEV_CERT_OFF_PUBKEY_ALGO 0xC
#define SEV_CERT_OFF_PUBKEY 0x10
#define SEV_CERT_BODY_SIZE 0x414
#define SEV_CERT_OFF_SIG1_USAGE 0x414
#define SEV_CERT_OFF_SIG1_ALGO 0x418
#define SEV_CERT_OFF_SIG1 0x41C
#define SEV_CERT_OFF_SIG2_USAGE 0x61C
#define SEV_CERT_OFF_SIG2_ALGO 0x620
#define SEV_CERT_OFF_SIG2 0x624
#define SEV_CERT_SIG_SIZE 512

/* key usages (appendix B, table "Key Usage") */
#define SEV_USAGE_ARK 0x0
#define SEV_USAGE_ASK 0x13
#define SEV_USAGE_INVALID 0x1000
#define SEV_USAGE_OCA 0x1001
#define SEV_USAGE_PEK 0x1002
#define SEV_USAGE_PDH 0x1003
#define SEV_USAGE_CEK 0x1004

/* algorithms (appendix B, table "Algorithm") */
#define SEV_ALGO_INVALID 0x0
#define SEV_ALGO_RSA_SHA256 0x1
#define SEV_ALGO_ECDSA_SHA256 0x2
#define SEV_ALGO_ECDH_SHA256 0x3
#define SEV_ALGO_RSA_SHA384 0x101
#define SEV_ALGO_ECDSA_SHA384 0x102
#define SEV_ALGO_ECDH_SHA384 0x103

#define SEV_EC_P384 2

/* ECDSA and ECDH public keys in a sev_cert: curve u32, qx[72], qy[72];
 * ECDSA signatures: r[72], s[72] */
#define SEV_ECC_COORD_SIZE 72
#define P384_SIZE 48

/* a chip's identity: SHA-256 of its CEK's public key */
#define SEV_CHIP_ID_SIZE 32

/* A public P-384 point as a sev_cert carries it. */
typedef struct {
    uint8_t apiMajor;
    uint8_t apiMinor;
    uint8_t x[P384_SIZE];   /* big-endian */
    uint8_t y[P384_SIZE];
} sevOwnerPubKey;

void
sevOwnerBuildCert(const sevOwnerPubKey *pub,
                  uint8_t cert[SEV_CERT_SIZE]);

int
sevOwnerParseCert(const char *what,
                  const uint8_t *cert,
                  size_t len,
                  sevOwnerPubKey *pub);


/* A root of trust: an ARK and the ASK it signed, in the AMD root key
 * certificate format (appendix B). */
typedef struct {
    char *name;             /* "milan", or the ARK's file */
    uint8_t *ark;
    size_t arkLen;
    uint8_t *ask;
    size_t askLen;
} sevOwnerRoot;

/* What the guest owner accepts. */
typedef struct {
    sevOwnerRoot *roots;
    size_t nroots;
    uint8_t *chips;         /* nchips * SEV_CHIP_ID_SIZE */
    size_t nchips;
    bool minAPISet;
    unsigned int minAPIMajor;
    unsigned int minAPIMinor;
    bool minBuildSet;
    unsigned int minBuild;
} sevOwnerChainPolicy;

void
sevOwnerChainPolicyClear(sevOwnerChainPolicy *policy);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerChainPolicy, sevOwnerChainPolicyClear);

int
sevOwnerChainPolicyAddBuiltin(sevOwnerChainPolicy *policy,
                              const char *names);

int
sevOwnerChainPolicyAddRootFiles(sevOwnerChainPolicy *policy,
                                const char *ark,
                                const char *ask);

int
sevOwnerChainPolicyAddChips(sevOwnerChainPolicy *policy,
                            const char *list);

int
sevOwnerChainPolicySetMinAPI(sevOwnerChainPolicy *policy,
                             const char *str);

int
sevOwnerChainPolicySetMinBuild(sevOwnerChainPolicy *policy,
                               const char *str);

/* The platform's certificates. */
typedef struct {
    const uint8_t *pdh;
    size_t pdhLen;
    const uint8_t *pek;
    size_t pekLen;
    const uint8_t *oca;
    size_t ocaLen;
    const uint8_t *cek;
    size_t cekLen;
    bool buildSet;          /* the firmware build the platform reports */
    unsigned int build;
} sevOwnerChain;

typedef struct {
    const char *root;       /* the name of the root that signed the CEK */
    uint8_t chip[SEV_CHIP_ID_SIZE];
    sevOwnerPubKey pdh;     /* with the PDH's API version */
    uint8_t pekAPIMajor;
    uint8_t pekAPIMinor;
} sevOwnerChainResult;

int
sevOwnerSplitCertChain(const uint8_t *blob,
                       size_t len,
                       sevOwnerChain *chain,
                       char **reason);

int
sevOwnerChainChipId(const uint8_t *cek,
                    size_t len,
                    uint8_t chip[SEV_CHIP_ID_SIZE]);

int
sevOwnerVerifyChain(const sevOwnerChain *chain,
                    const sevOwnerChainPolicy *policy,
                    GString *log,
                    sevOwnerChainResult *res,
                    char **reason);
