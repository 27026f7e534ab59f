/*
 * virt-qemu-sev-owner-crypto.h: the SEV structures and the cryptography of
 * the guest owner's tool (random, KDF, HMAC, AES, ECDH, P-384 keys)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "virt-qemu-sev-owner-cert.h"
#include "virt-qemu-sev-owner-util.h"

#include <gmp.h>

/* ------------------------------------------------------------------ */
/* SEV structures (AMD SEV API, all integers little-endian)            */
/* ------------------------------------------------------------------ */

#define SEV_NONCE_SIZE 16
#define SEV_IV_SIZE 16
#define SEV_KEY_SIZE 16
#define SEV_MAC_SIZE 32

/* LAUNCH_START session buffer */
#define SEV_SESSION_SIZE 128
#define SEV_SESSION_OFF_NONCE 0
#define SEV_SESSION_OFF_WRAP_TK 16
#define SEV_SESSION_OFF_WRAP_IV 48
#define SEV_SESSION_OFF_WRAP_MAC 64
#define SEV_SESSION_OFF_POLICY_MAC 96

/* LAUNCH_MEASURE: measurement[32] || mnonce[16] */
#define SEV_MEASURE_SIZE 48
#define SEV_MEASURE_CTX 0x04

/* LAUNCH_SECRET packet header: flags u32, iv[16], mac[32] */
#define SEV_SECRET_HEADER_SIZE 52
#define SEV_SECRET_CTX 0x01

#define SEV_POLICY_ES (1U << 2)

#define TRANSPORT_KEY_SIZE 32
#define KEY_ID_MAX 64


typedef struct {
    uint8_t tek[SEV_KEY_SIZE];
    uint8_t tik[SEV_KEY_SIZE];
} sevOwnerTK;

void
sevOwnerTKClear(sevOwnerTK *tk);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerTK, sevOwnerTKClear);


typedef struct {
    uint8_t d[P384_SIZE];   /* private scalar, big-endian */
    uint8_t x[P384_SIZE];   /* public point, big-endian */
    uint8_t y[P384_SIZE];
} sevOwnerECKey;

void
sevOwnerECKeyClear(sevOwnerECKey *key);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerECKey, sevOwnerECKeyClear);


void
sevOwnerGUIDBytes(const char *str, uint8_t out[16]);

bool
sevOwnerKeyIdValid(const char *id);

int
sevOwnerRandom(gnutls_rnd_level_t level,
               uint8_t *out,
               size_t len);

void
sevOwnerKDF(const uint8_t *key,
            size_t keylen,
            const char *label,
            const uint8_t *context,
            size_t contextlen,
            uint8_t out[SEV_KEY_SIZE]);

void
sevOwnerHMAC(const uint8_t *key,
             size_t keylen,
             const uint8_t *data,
             size_t len,
             uint8_t out[SEV_MAC_SIZE]);

void
sevOwnerAESCTR(const uint8_t key[SEV_KEY_SIZE],
               const uint8_t iv[SEV_IV_SIZE],
               const uint8_t *src,
               size_t len,
               uint8_t *dst);

int
sevOwnerECDH(const sevOwnerECKey *key,
             const uint8_t qx[P384_SIZE],
             const uint8_t qy[P384_SIZE],
             uint8_t z[P384_SIZE]);

int
sevOwnerKeyFromGnutls(gnutls_x509_privkey_t pkey,
                      const char *path,
                      sevOwnerECKey *key);

int
sevOwnerLoadKey(const char *path,
                sevOwnerECKey *key);
