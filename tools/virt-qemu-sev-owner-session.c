/*
 * virt-qemu-sev-owner-session.c: the LAUNCH_START session: made by the
 * guest owner, unwrapped as the firmware does
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <gmp.h>
#include <nettle/aes.h>
#include <nettle/bignum.h>
#include <nettle/ctr.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "virerror.h"
#include "virfile.h"
#include "virgettext.h"
#include "virjson.h"
#include "virsecureerase.h"
#include "virstring.h"

#include "virt-qemu-sev-owner-cert.h"
#include "virt-qemu-sev-owner-roots.h"
#include "virt-qemu-sev-owner-util.h"

#include "virt-qemu-sev-owner-session.h"

#define VIR_FROM_THIS VIR_FROM_NONE


static int
sevOwnerDeriveKEKKIK(const sevOwnerECKey *key,
                     const sevOwnerPubKey *peer,
                     const uint8_t nonce[SEV_NONCE_SIZE],
                     uint8_t kek[SEV_KEY_SIZE],
                     uint8_t kik[SEV_KEY_SIZE])
{
    uint8_t z[P384_SIZE];
    uint8_t master[SEV_KEY_SIZE];

    if (sevOwnerECDH(key, peer->x, peer->y, z) < 0)
        return -1;

    sevOwnerKDF(z, sizeof(z), "sev-master-secret", nonce, SEV_NONCE_SIZE, master);
    sevOwnerKDF(master, sizeof(master), "sev-kek", NULL, 0, kek);
    sevOwnerKDF(master, sizeof(master), "sev-kik", NULL, 0, kik);

    virSecureErase(z, sizeof(z));
    virSecureErase(master, sizeof(master));
    return 0;
}


/* The 128-byte LAUNCH_START session buffer for the platform key @pdh. */
int
sevOwnerMakeSession(const sevOwnerECKey *odh,
                    const sevOwnerPubKey *pdh,
                    uint32_t policy,
                    const sevOwnerTK *tk,
                    const uint8_t nonce[SEV_NONCE_SIZE],
                    const uint8_t iv[SEV_IV_SIZE],
                    uint8_t session[SEV_SESSION_SIZE])
{
    uint8_t kek[SEV_KEY_SIZE];
    uint8_t kik[SEV_KEY_SIZE];
    uint8_t policyLE[4];

    if (sevOwnerDeriveKEKKIK(odh, pdh, nonce, kek, kik) < 0)
        return -1;

    memset(session, 0, SEV_SESSION_SIZE);
    memcpy(session + SEV_SESSION_OFF_NONCE, nonce, SEV_NONCE_SIZE);
    memcpy(session + SEV_SESSION_OFF_WRAP_IV, iv, SEV_IV_SIZE);

    /* wrap_tk = AES-128-CTR(KEK, wrap_iv, TEK || TIK) */
    sevOwnerAESCTR(kek, iv, (const uint8_t *)tk, sizeof(*tk),
                   session + SEV_SESSION_OFF_WRAP_TK);
    /* wrap_mac = HMAC-SHA256(KIK, wrap_tk) */
    sevOwnerHMAC(kik, sizeof(kik), session + SEV_SESSION_OFF_WRAP_TK,
                 sizeof(*tk), session + SEV_SESSION_OFF_WRAP_MAC);
    /* policy_mac = HMAC-SHA256(TIK, policy) */
    sevOwnerPutLE32(policyLE, policy);
    sevOwnerHMAC(tk->tik, sizeof(tk->tik), policyLE, sizeof(policyLE),
                 session + SEV_SESSION_OFF_POLICY_MAC);

    virSecureErase(kek, sizeof(kek));
    virSecureErase(kik, sizeof(kik));
    return 0;
}



/* What SEV firmware does at LAUNCH_START, from either side of the key
 * exchange: @key is the owner's key and @peer the PDH, or @key the PDH
 * and @peer the owner's certificate. Returns -1 on error, otherwise a
 * sevOwnerUnwrapResult; @tk is filled only when it is OK. */
int
sevOwnerUnwrapSession(const sevOwnerECKey *key,
                      const sevOwnerPubKey *peer,
                      const uint8_t session[SEV_SESSION_SIZE],
                      uint32_t policy,
                      sevOwnerTK *tk)
{
    uint8_t kek[SEV_KEY_SIZE];
    uint8_t kik[SEV_KEY_SIZE];
    uint8_t mac[SEV_MAC_SIZE];
    uint8_t policyLE[4];
    g_auto(sevOwnerTK) tmp = { { 0 }, { 0 } };
    int ret = -1;

    if (sevOwnerDeriveKEKKIK(key, peer, session + SEV_SESSION_OFF_NONCE,
                             kek, kik) < 0)
        return -1;

    sevOwnerHMAC(kik, sizeof(kik), session + SEV_SESSION_OFF_WRAP_TK,
                 sizeof(tmp), mac);
    if (!memeql_sec(mac, session + SEV_SESSION_OFF_WRAP_MAC, SEV_MAC_SIZE)) {
        ret = SEV_OWNER_UNWRAP_BAD_WRAP_MAC;
        goto cleanup;
    }

    sevOwnerAESCTR(kek, session + SEV_SESSION_OFF_WRAP_IV,
                   session + SEV_SESSION_OFF_WRAP_TK, sizeof(tmp),
                   (uint8_t *)&tmp);

    sevOwnerPutLE32(policyLE, policy);
    sevOwnerHMAC(tmp.tik, sizeof(tmp.tik), policyLE, sizeof(policyLE), mac);
    if (!memeql_sec(mac, session + SEV_SESSION_OFF_POLICY_MAC, SEV_MAC_SIZE)) {
        ret = SEV_OWNER_UNWRAP_BAD_POLICY_MAC;
        goto cleanup;
    }

    memcpy(tk, &tmp, sizeof(tmp));
    ret = SEV_OWNER_UNWRAP_OK;

 cleanup:
    virSecureErase(kek, sizeof(kek));
    virSecureErase(kik, sizeof(kik));
    return ret;
}
