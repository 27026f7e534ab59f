/*
 * confidential-migrate.c: migrate an AMD SEV guest confidentially, through
 *                         the public API only, and report its progress
 *
 * The migration (virDomainMigrateToURI3 with VIR_MIGRATE_CONFIDENTIAL, peer
 * to peer, live, over TLS) runs in a thread of its own, while the main
 * thread polls virDomainGetJobStats and prints how much data was processed
 * and how much remains, as virsh migrate --verbose does. Ctrl-C aborts the
 * migration (virDomainAbortJob). See kbase/confidential-migration.html.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Lesser General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * This library is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
 * Lesser General Public License for more details.
 *
 * You should have received a copy of the GNU Lesser General Public
 * License along with this library.  If not, see
 * <http://www.gnu.org/licenses/>.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIGRATE_FLAGS (VIR_MIGRATE_LIVE | \
                       VIR_MIGRATE_PEER2PEER | \
                       VIR_MIGRATE_TLS | \
                       VIR_MIGRATE_CONFIDENTIAL)

static volatile sig_atomic_t interrupted;

struct migration {
    virDomainPtr dom;
    const char *dest_uri;
    virTypedParameterPtr params;
    int nparams;
    unsigned int flags;

    /* set by the migration thread */
    int ret;
    char *error;          /* libvirt's error message if ret < 0 */
    pthread_mutex_t lock;
    bool done;
};

static void
print_usage(const char *progname)
{
    const char *name = strrchr(progname, '/');

    printf("\n%s [options] DOMAIN DEST-URI\n\n"
           "  options:\n"
           "    -h | --help              print this help\n"
           "    -c | --connect=URI       source hypervisor connection URI\n"
           "    -b | --bandwidth=MIB     migration bandwidth limit in MiB/s\n"
           "    -u | --migrate-uri=URI   migration URI (where QEMU connects)\n"
           "    -i | --interval=MS       progress report interval in "
           "milliseconds (default 500)\n"
           "\n"
           "Migrate the running AMD SEV guest DOMAIN confidentially to the\n"
           "host of DEST-URI (peer to peer, live, over TLS), with\n"
           "VIR_MIGRATE_CONFIDENTIAL, printing its progress. The guest needs\n"
           "<mirror/> and a migration helper that holds a transport key.\n"
           "Exit status 0 when the migration succeeded, 1 otherwise.\n",
           name ? name + 1 : progname);
}

static bool
parse_ulong(const char *str, unsigned long *val)
{
    char *end;

    errno = 0;
    *val = strtoul(str, &end, 10);
    return errno == 0 && end != str && *end == '\0' && str[0] != '-';
}

static void
on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* errors are reported once, by this program, with their context */
static void
silent_error(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

static void *
migrate_thread(void *opaque)
{
    struct migration *m = opaque;
    int ret;
    char *error = NULL;

    ret = virDomainMigrateToURI3(m->dom, m->dest_uri, m->params, m->nparams,
                                 m->flags);
    /* libvirt's errors are per thread: keep the message for main() */
    if (ret < 0) {
        const char *msg = virGetLastErrorMessage();
        error = strdup(msg ? msg : "unknown error");
    }

    pthread_mutex_lock(&m->lock);
    m->ret = ret;
    m->error = error;
    m->done = true;
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

static bool
migration_done(struct migration *m)
{
    bool done;

    pthread_mutex_lock(&m->lock);
    done = m->done;
    pthread_mutex_unlock(&m->lock);
    return done;
}

/* One progress line from the source's job statistics. Nothing is sent
 * before the target listens, which in a confidential migration is after
 * its migration helper has booted and shown a transport key (the target's
 * Prepare phase, up to mirror_helper_timeout in the target's qemu.conf). */
static void
report_progress(virDomainPtr dom)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type;
    unsigned long long processed = 0;
    unsigned long long remaining = 0;
    unsigned long long total = 0;
    unsigned long long elapsed = 0;

    if (virDomainGetJobStats(dom, &type, &params, &nparams, 0) < 0) {
        /* the job may just have ended; the thread reports the outcome */
        return;
    }

    if (type != VIR_DOMAIN_JOB_NONE) {
        virTypedParamsGetULLong(params, nparams,
                                VIR_DOMAIN_JOB_DATA_PROCESSED, &processed);
        virTypedParamsGetULLong(params, nparams,
                                VIR_DOMAIN_JOB_DATA_REMAINING, &remaining);
        virTypedParamsGetULLong(params, nparams,
                                VIR_DOMAIN_JOB_DATA_TOTAL, &total);
        virTypedParamsGetULLong(params, nparams,
                                VIR_DOMAIN_JOB_TIME_ELAPSED, &elapsed);
        printf("progress: %llu ms elapsed, data processed %llu KiB, "
               "remaining %llu KiB, total %llu KiB%s\n",
               elapsed, processed / 1024, remaining / 1024, total / 1024,
               total == 0 ? " (nothing sent yet)" : "");
        fflush(stdout);
    }

    virTypedParamsFree(params, nparams);
}

int
main(int argc, char *argv[])
{
    const char *src_uri = NULL;
    const char *migrate_uri = NULL;
    const char *dom_name;
    unsigned long bandwidth = 0;
    unsigned long interval = 500;
    unsigned long val;
    bool have_bandwidth = false;
    int maxparams = 0;
    int arg;
    int ret = EXIT_FAILURE;
    virConnectPtr conn = NULL;
    virDomainPtr dom = NULL;
    pthread_t thread;
    bool aborted = false;
    struct sigaction sa;
    struct timespec ts;
    struct migration m;
    struct option opt[] = {
        { "help", no_argument, NULL, 'h' },
        { "connect", required_argument, NULL, 'c' },
        { "bandwidth", required_argument, NULL, 'b' },
        { "migrate-uri", required_argument, NULL, 'u' },
        { "interval", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };

    virSetErrorFunc(NULL, silent_error);
    memset(&m, 0, sizeof(m));
    pthread_mutex_init(&m.lock, NULL);
    m.flags = MIGRATE_FLAGS;

    while ((arg = getopt_long(argc, argv, "+:hc:b:u:i:", opt, NULL)) != -1) {
        switch (arg) {
        case 'h':
            print_usage(argv[0]);
            return EXIT_SUCCESS;
        case 'c':
            src_uri = optarg;
            break;
        case 'b':
            if (!parse_ulong(optarg, &val)) {
                fprintf(stderr, "error: invalid bandwidth '%s'\n", optarg);
                return EXIT_FAILURE;
            }
            bandwidth = val;
            have_bandwidth = true;
            break;
        case 'u':
            migrate_uri = optarg;
            break;
        case 'i':
            if (!parse_ulong(optarg, &val) || val == 0 || val > 60000) {
                fprintf(stderr, "error: invalid interval '%s' "
                        "(1 to 60000 ms)\n", optarg);
                return EXIT_FAILURE;
            }
            interval = val;
            break;
        case ':':
            fprintf(stderr, "error: option '-%c' requires an argument\n",
                    optopt);
            return EXIT_FAILURE;
        case '?':
        default:
            if (optopt)
                fprintf(stderr, "error: unsupported option '-%c'. "
                        "See --help.\n", optopt);
            else
                fprintf(stderr, "error: unsupported option '%s'. "
                        "See --help.\n", argv[optind - 1]);
            return EXIT_FAILURE;
        }
    }

    if (argc - optind != 2) {
        fprintf(stderr, "error: expected DOMAIN and DEST-URI. See --help.\n");
        return EXIT_FAILURE;
    }
    dom_name = argv[optind];
    m.dest_uri = argv[optind + 1];

    if (!(conn = virConnectOpenAuth(src_uri, virConnectAuthPtrDefault, 0))) {
        fprintf(stderr, "error: cannot connect to the source hypervisor: %s\n",
                virGetLastErrorMessage());
        return EXIT_FAILURE;
    }

    if (!(dom = virDomainLookupByName(conn, dom_name))) {
        fprintf(stderr, "error: %s\n", virGetLastErrorMessage());
        goto cleanup;
    }

    if (have_bandwidth &&
        virTypedParamsAddULLong(&m.params, &m.nparams, &maxparams,
                                VIR_MIGRATE_PARAM_BANDWIDTH, bandwidth) < 0)
        goto param_error;
    if (migrate_uri &&
        virTypedParamsAddString(&m.params, &m.nparams, &maxparams,
                                VIR_MIGRATE_PARAM_URI, migrate_uri) < 0)
        goto param_error;

    /* Ctrl-C aborts the migration instead of leaving it running */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    m.dom = dom;
    printf("migrating %s confidentially to %s\n", dom_name, m.dest_uri);
    fflush(stdout);
    if (pthread_create(&thread, NULL, migrate_thread, &m) != 0) {
        fprintf(stderr, "error: cannot create the migration thread\n");
        goto cleanup;
    }

    ts.tv_sec = interval / 1000;
    ts.tv_nsec = (interval % 1000) * 1000 * 1000;
    while (!migration_done(&m)) {
        nanosleep(&ts, NULL);
        if (migration_done(&m))
            break;
        if (interrupted && !aborted) {
            aborted = true;
            fprintf(stderr, "interrupted: aborting the migration\n");
            if (virDomainAbortJob(dom) < 0)
                fprintf(stderr, "error: cannot abort the migration: %s\n",
                        virGetLastErrorMessage());
        }
        report_progress(dom);
    }

    pthread_join(thread, NULL);

    if (m.ret < 0) {
        fprintf(stderr, "error: migration of %s failed: %s\n",
                dom_name, m.error ? m.error : "out of memory");
        goto cleanup;
    }

    printf("migration of %s to %s completed\n", dom_name, m.dest_uri);
    ret = EXIT_SUCCESS;
    goto cleanup;

 param_error:
    fprintf(stderr, "error: %s\n", virGetLastErrorMessage());

 cleanup:
    free(m.error);
    virTypedParamsFree(m.params, m.nparams);
    pthread_mutex_destroy(&m.lock);
    if (dom)
        virDomainFree(dom);
    virConnectClose(conn);
    return ret;
}
