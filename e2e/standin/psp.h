/*
 * The simulated AMD secure processor's private parts, shared by psp.c (the
 * launch and its secret) and pspkey.c (the platform's PDH key).
 */

#pragma once

#include <gmp.h>
#include <nettle/ecc.h>

#include "standin.h"

#define CERT_SIZE 0x824
#define CERT_PUBKEY 0x10
#define USAGE_PDH 0x1003
#define ALGO_ECDH_SHA256 0x3
#define CURVE_P384 2
#define COORD_SIZE 72
#define P384_BYTES 48

typedef struct _PspPlatform PspPlatform;

/* pspkey.c */
void mpzToLe(mpz_t v, guint8 *out, size_t len);
bool pdhLoad(const StandinConf *conf, GError **err);
const struct ecc_scalar *pdhPrivate(void);
